// transport::start_tls (asyncio's loop.start_tls): a protocol connection upgraded to TLS in place, as
// STARTTLS protocols do — from a task while the pump waits in a read (its read is cancelled and nothing
// is lost), and eagerly from inside data_received; handshake failures; misuse. Every test runs in order
// and shuffled, and checks that no task, frame or fd is left.
#include <corio/net.hpp>
#include <corio/net/pipe.hpp>
#include <corio/net/protocol.hpp>
#include <corio/run.hpp>
#include <corio/spawn.hpp>
#include <corio/timeout.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <exception>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "callback_watch.hpp"
#include "leak_check.hpp"
#include "loop_fixture.hpp"
#include "net_helpers.hpp"
#include "tls_certs.hpp"

using corio::task;
using corio::testing::callback_watch;
using corio::testing::error_text;
using corio::testing::expect_only_main_task;

namespace {

const corio::testing::tls_certs& certs() {
  static const corio::testing::tls_certs c;
  return c;
}

corio::tls_context server_ctx() {
  return corio::tls_context::server(certs().server_cert_file, certs().server_key_file);
}

corio::tls_context client_ctx() {
  corio::tls_context c = corio::tls_context::client();
  c.load_verify_locations(certs().ca_file);
  return c;
}

/// No handshake timeout: a mock clock jumps to the next timer whenever every task waits for I/O.
constexpr corio::duration no_timeout = corio::duration::zero();

/// Records what arrives and how the connection ends.
struct recorder : corio::protocol {
  explicit recorder(callback_watch* wd) : w(wd) {}
  callback_watch* w;
  corio::transport* t = nullptr;
  std::string got;
  int lost = 0;
  std::exception_ptr error;

  void connection_made(corio::transport& tr) override { t = &tr; }
  void data_received(std::string_view d) override {
    got.append(d);
    w->poke();
  }
  void connection_lost(std::exception_ptr e) override {
    ++lost;
    error = std::move(e);
    t = nullptr;
    w->poke();
  }
};

/// The server side of a STARTTLS exchange: on "STARTTLS\n" it answers "GO\n" and upgrades at once, from
/// inside data_received (spawn_eager: start_tls runs until the handshake waits, so the pump reads no
/// plaintext after the command); after the upgrade it answers every chunk with "tls:" + the chunk.
struct starttls_server : recorder {
  using recorder::recorder;
  bool upgraded = false;
  std::exception_ptr upgrade_error;

  static task<> upgrade(std::shared_ptr<corio::transport> tr, starttls_server* self) {
    try {
      co_await tr->start_tls(server_ctx(), std::string(), no_timeout);
      self->upgraded = true;
    } catch (...) {
      self->upgrade_error = std::current_exception();
    }
    self->w->poke();
  }

  void data_received(std::string_view d) override {
    if (!upgraded && d == "STARTTLS\n") {
      t->write("GO\n");
      (void)corio::spawn_eager(upgrade(t->shared_from_this(), this));
      return;
    }
    recorder::data_received(d);
    if (upgraded)
      t->write("tls:" + std::string(d));
  }
};

template <class F> task<> until(callback_watch* w, F done) {
  while (!done())
    co_await w->next("a protocol callback");
}

class ProtocolStartTls : public corio::testing::ordered_and_shuffled {};

// Both sides upgrade: the server from inside data_received, the client from the test's task while its
// pump waits in a read. Afterwards data_received gets the decrypted bytes on both sides, tls_info says
// what was negotiated, and a second start_tls is refused.
TEST_P(ProtocolStartTls, BothSidesUpgradeAndTalkTls) {
  run([]() -> task<> {
    callback_watch w;
    std::shared_ptr<starttls_server> srv_p;
    auto server_factory = [&w, &srv_p] {
      srv_p = std::make_shared<starttls_server>(&w);
      return srv_p;
    };
    corio::server srv = co_await corio::create_server(server_factory, "127.0.0.1", 0);
    auto client_factory = [&w] { return std::make_shared<recorder>(&w); };
    auto made = co_await corio::create_connection(client_factory, srv.addresses().front());
    std::shared_ptr<corio::transport> t = made.transport;
    std::shared_ptr<recorder> p = made.protocol;
    EXPECT_FALSE(t->tls_info().has_value());
    t->write("STARTTLS\n");
    co_await until(&w, [&] { return p->got == "GO\n"; });
    co_await t->start_tls(client_ctx(), "localhost", no_timeout);
    EXPECT_TRUE(t->tls_info().has_value());
    co_await until(&w, [&] { return srv_p && (srv_p->upgraded || srv_p->upgrade_error); });
    EXPECT_TRUE(srv_p->upgraded) << error_text(srv_p->upgrade_error);
    EXPECT_TRUE(srv_p->t != nullptr && srv_p->t->tls_info().has_value());
    p->got.clear();
    t->write("hello");
    co_await until(&w, [&] { return p->got.size() >= 9 || p->lost != 0; });
    EXPECT_EQ(p->got, "tls:hello");
    EXPECT_EQ(srv_p->got, "hello");
    bool refused = false;
    try {
      co_await t->start_tls(client_ctx(), "localhost", no_timeout);
    } catch (const corio::invalid_state_error&) {
      refused = true;
    }
    EXPECT_TRUE(refused) << "a second start_tls was accepted";
    t->close();
    co_await until(&w, [&] { return p->lost != 0 && srv_p->lost != 0; });
    EXPECT_EQ(p->error, nullptr) << error_text(p->error);
    EXPECT_EQ(srv_p->error, nullptr) << error_text(srv_p->error);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// A client that does not trust the server's certificate: start_tls raises tls_error, and the connection
// ends with it (connection_lost receives the same error). The server's side ends too.
TEST_P(ProtocolStartTls, AFailedHandshakeEndsTheConnection) {
  run([]() -> task<> {
    callback_watch w;
    std::shared_ptr<starttls_server> srv_p;
    auto server_factory = [&w, &srv_p] {
      srv_p = std::make_shared<starttls_server>(&w);
      return srv_p;
    };
    corio::server srv = co_await corio::create_server(server_factory, "127.0.0.1", 0);
    auto client_factory = [&w] { return std::make_shared<recorder>(&w); };
    auto made = co_await corio::create_connection(client_factory, srv.addresses().front());
    std::shared_ptr<corio::transport> t = made.transport;
    std::shared_ptr<recorder> p = made.protocol;
    t->write("STARTTLS\n");
    co_await until(&w, [&] { return p->got == "GO\n"; });
    bool failed = false;
    try {
      co_await t->start_tls(corio::tls_context::client(), "localhost", no_timeout); // the test CA is not loaded
    } catch (const corio::tls_error&) {
      failed = true;
    }
    EXPECT_TRUE(failed);
    co_await until(&w, [&] { return p->lost != 0; });
    EXPECT_NE(p->error, nullptr);
    EXPECT_TRUE(t->is_closing());
    EXPECT_NO_THROW(t->write("x")) << "after a failure writes are dropped (asyncio's rule)";
    co_await until(&w, [&] { return srv_p && srv_p->lost != 0; });
    EXPECT_FALSE(srv_p->upgraded);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// Misuse is refused before anything changes: an empty context, a pipe's transport, writing while the
// handshake runs, a transport already closed. The connection still works after the refused calls.
TEST_P(ProtocolStartTls, MisuseIsRefused) {
  run([]() -> task<> {
    callback_watch w;
    auto factory = [&w] { return std::make_shared<recorder>(&w); };
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    auto made = co_await corio::connect_accepted_socket(factory, corio::socket(sv[0]));
    std::shared_ptr<corio::transport> t = made.transport;
    std::shared_ptr<recorder> p = made.protocol;
    corio::socket peer(sv[1]);
    bool empty_refused = false;
    try {
      co_await t->start_tls(corio::tls_context());
    } catch (const std::invalid_argument&) {
      empty_refused = true;
    }
    EXPECT_TRUE(empty_refused);
    // A handshake that waits (the peer says nothing): writes are refused meanwhile; then the peer goes.
    auto upgrading = corio::spawn(t->start_tls(client_ctx(), "localhost", no_timeout));
    co_await corio::testing::spin(3);
    EXPECT_THROW(t->write("plain"), corio::invalid_state_error);
    bool second_refused = false;
    try {
      co_await t->start_tls(client_ctx(), "localhost", no_timeout);
    } catch (const corio::invalid_state_error&) {
      second_refused = true;
    }
    EXPECT_TRUE(second_refused);
    peer.close();
    bool failed = false;
    try {
      co_await upgrading;
    } catch (const std::exception&) {
      failed = true;
    }
    EXPECT_TRUE(failed) << "the handshake with a peer that left succeeded";
    co_await until(&w, [&] { return p->lost != 0; });
    bool closed_refused = false;
    try {
      co_await t->start_tls(client_ctx());
    } catch (const corio::invalid_state_error&) {
      closed_refused = true;
    }
    EXPECT_TRUE(closed_refused);

    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    auto piped = co_await corio::connect_read_pipe(factory, fds[0]);
    bool pipe_refused = false;
    try {
      co_await piped.transport->start_tls(client_ctx());
    } catch (const corio::invalid_state_error&) {
      pipe_refused = true;
    }
    EXPECT_TRUE(pipe_refused);
    ::close(fds[1]);
    co_await until(&w, [&] { return piped.protocol->lost != 0; });
    expect_only_main_task();
  });
}

/// What `t->start_tls(ctx, name, timeout)` raised ("accepted" if it did not), bounded by a timeout (the
/// peer never answers a handshake); `t` must be open afterwards when it was refused.
task<std::string> start_tls_refusal(std::shared_ptr<corio::transport> t, std::string name, corio::duration timeout) {
  std::string what = "accepted";
  try {
    auto bounded = corio::timeout(std::chrono::seconds(5));
    co_await t->start_tls(client_ctx(), std::move(name), timeout);
  } catch (const std::invalid_argument& e) {
    what = e.what();
    EXPECT_FALSE(t->is_closing()) << "refused, but the connection was changed";
  } catch (const std::exception& e) {
    what = std::string("another error: ") + e.what();
  }
  co_return what;
}

// A server_hostname with a NUL byte (OpenSSL would send and check only what comes before it) and a
// negative handshake timeout are refused before anything changes: the connection goes on in plaintext.
TEST_P(ProtocolStartTls, BadTlsArgumentsAreRefusedBeforeAnythingChanges) {
  run([]() -> task<> {
    callback_watch w;
    auto factory = [&w] { return std::make_shared<recorder>(&w); };
    const std::string evil("localhost\0.evil.example", 23);
    const std::string shown = "the host name \"localhost\\0.evil.example\" contains a NUL byte";
    for (int i = 0; i < 3; ++i) {
      int sv[2];
      EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
      corio::socket peer(sv[1]);
      std::string what;
      if (i < 2) {
        auto made = co_await corio::connect_accepted_socket(factory, corio::socket(sv[0]));
        std::shared_ptr<corio::transport> t = made.transport;
        if (i == 0) {
          what = co_await start_tls_refusal(t, evil, no_timeout);
          EXPECT_EQ(what, "corio: transport.start_tls(): " + shown);
        } else {
          what = co_await start_tls_refusal(t, "localhost", -std::chrono::seconds(1));
          EXPECT_EQ(what, "corio: transport.start_tls(): the TLS handshake timeout must not be negative (-1000 ms; "
                          "zero: no limit)");
        }
        t->write("plain");
        char got[8] = {};
        std::span<char> buf(got);
        EXPECT_EQ(co_await corio::sock_recv(peer, buf), 5u);
        t->close();
        co_await until(&w, [&] { return made.protocol->lost != 0; });
        continue;
      }
      // connect_accepted_socket with TLS options: refused before the socket is used.
      corio::stream_options named;
      named.tls = client_ctx();
      named.server_hostname = evil;
      try {
        auto bounded = corio::timeout(std::chrono::seconds(5));
        auto c = co_await corio::connect_accepted_socket(factory, corio::socket(sv[0]), named);
        what = "accepted";
      } catch (const std::invalid_argument& e) {
        what = e.what();
      } catch (const std::exception& e) {
        what = std::string("another error: ") + e.what();
      }
      EXPECT_EQ(what, "corio: connect_accepted_socket(): " + shown);
    }
    expect_only_main_task();
  });
}

// Cancelling the task awaiting start_tls during the handshake aborts the connection:
// connection_lost(nullptr), nothing left behind.
TEST_P(ProtocolStartTls, CancellingTheUpgradeAbortsTheConnection) {
  run([]() -> task<> {
    callback_watch w;
    auto factory = [&w] { return std::make_shared<recorder>(&w); };
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    auto made = co_await corio::connect_accepted_socket(factory, corio::socket(sv[0]));
    std::shared_ptr<corio::transport> t = made.transport;
    std::shared_ptr<recorder> p = made.protocol;
    corio::socket peer(sv[1]);
    auto upgrading = corio::spawn(t->start_tls(client_ctx(), "localhost", no_timeout));
    co_await corio::testing::spin(3);
    upgrading.cancel();
    bool cancelled = false;
    try {
      co_await upgrading;
    } catch (const corio::cancelled_error&) {
      cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    co_await until(&w, [&] { return p->lost != 0; });
    EXPECT_EQ(p->error, nullptr) << error_text(p->error);
    expect_only_main_task();
  });
}

INSTANTIATE_TEST_SUITE_P(Orders, ProtocolStartTls, corio::testing::ready_orders());

} // namespace
