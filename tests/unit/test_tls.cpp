// TLS over corio's streams: tls_context, open_connection/start_server with TLS, start_tls, verification
// failures, SNI, ALPN, close_notify, timeouts and cancellation. Certificates are made at run time
// (tls_certs.hpp); loopback only.
//
// Most tests run on the real clock: with the mock clock every moment all tasks wait on the socket (a
// TLS flight in the kernel) would let virtual time jump to the 60 s handshake deadline. The timeout and
// cancellation tests use the mock clock on purpose; the others that do set tls_handshake_timeout = 0.
#include <corio/net.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/event.hpp>
#include <corio/timeout.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <gtest/gtest.h>
#include <thread>

#include <cstdlib>

#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "leak_check.hpp"
#include "loop_fixture.hpp"
#include "net_helpers.hpp"
#include "tls_certs.hpp"

using namespace std::chrono_literals;
using corio::address;
using corio::connection;
using corio::stream_reader;
using corio::stream_writer;
using corio::task;
using corio::tls_context;
using corio::tls_errc;
using corio::tls_error;
using corio::testing::expect_only_main_task;
using corio::testing::run_mock;
using corio::testing::unread_bytes;

namespace {

const corio::testing::tls_certs& certs() {
  static const corio::testing::tls_certs c; // removed at exit
  return c;
}

tls_context server_ctx() { return tls_context::server(certs().server_cert_file, certs().server_key_file); }

tls_context client_ctx() {
  tls_context c = tls_context::client();
  c.load_verify_locations(certs().ca_file);
  return c;
}

std::size_t base_io_waiters = 0;

/// Runs body() on a loop with the real clock (see the file comment).
template <class F> void run_real(F body) {
  corio::run([](F b) -> task<> {
    base_io_waiters = corio::event_loop::current()->io_waiter_count(); // the loop's own (its wakeup fd)
    co_await b();
  }(std::move(body)));
}

/// At the end of a run_real body: nothing but the main task, no timer, no fd waiter of ours.
void expect_clean() {
  corio::event_loop& loop = *corio::event_loop::current();
  EXPECT_EQ(loop.task_count(), 1u) << "tasks left";
  EXPECT_EQ(loop.timer_count(), 0u) << "timers left";
  EXPECT_EQ(loop.io_waiter_count(), base_io_waiters) << "fd waiters left";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string pattern(std::size_t n, std::size_t seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (i * 31 + i / 251 + seed) % 26);
  return s;
}

task<> echo_lines(stream_reader r, stream_writer w) {
  for (;;) {
    std::string line = co_await r.readline();
    if (line.empty())
      co_return;
    w.write(line);
    co_await w.drain();
  }
}

corio::server_options tls_server(tls_context ctx = server_ctx()) {
  corio::server_options o;
  o.tls = std::move(ctx);
  return o;
}

/// The options of a TLS client checking the name "localhost".
corio::stream_options tls_client(tls_context ctx = client_ctx()) {
  corio::stream_options o;
  o.tls = std::move(ctx);
  o.server_hostname = "localhost";
  return o;
}

/// Connects with `opts` and expects a tls_error; returns it.
task<tls_error> expect_tls_error(address where, corio::stream_options opts) {
  try {
    connection c = co_await corio::open_connection(where, opts);
    ADD_FAILURE() << "the handshake succeeded";
  } catch (const tls_error& e) {
    co_return e;
  }
  co_return tls_error(tls_errc::handshake_failed, "none");
}

/// What awaiting `t` raised: the text of a std::invalid_argument, "accepted" if it did not raise.
template <class T> task<std::string> refusal_of(task<T> t) {
  try {
    (void)co_await std::move(t);
  } catch (const std::invalid_argument& e) {
    co_return std::string(e.what());
  } catch (const std::exception& e) {
    co_return std::string("another error: ") + e.what();
  }
  co_return std::string("accepted");
}

TEST(Tls, RoundTripWithVerification) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    corio::server_options so_default = tls_server();
    std::optional<corio::tls_info> seen;
    corio::server srv = co_await corio::start_server(
        [&seen](stream_reader r, stream_writer w) -> task<> {
          seen = w.tls_info();
          co_await echo_lines(r, w);
        },
        "127.0.0.1", 0, so_default);
    // By name (SNI + DNS name check), and by IP address (checked against the IP SAN, no SNI).
    corio::stream_options by_name{.tls = client_ctx()}; // named: g++ 12 and braced temporaries (HAZARDS 2)
    auto [r, w] = co_await corio::open_connection("localhost", srv.port(), by_name);
    w.write("hello over tls\n");
    EXPECT_EQ(co_await r.readline(), "hello over tls\n");
    auto info = w.tls_info();
    EXPECT_TRUE(info.has_value());
    if (info) {
      EXPECT_EQ(info->version, "TLSv1.3");
      EXPECT_FALSE(info->cipher.empty());
      EXPECT_EQ(info->peer_subject, "CN=localhost");
      EXPECT_TRUE(info->peer_verified);
      EXPECT_FALSE(info->server_side);
    }
    EXPECT_TRUE(seen.has_value());
    if (seen) {
      EXPECT_EQ(seen->server_name, "localhost");
      EXPECT_TRUE(seen->server_side);
      EXPECT_EQ(seen->peer_subject, ""); // no client certificate asked for
    }
    w.close();
    co_await w.wait_closed();

    corio::stream_options by_ip{.tls = client_ctx()};
    auto c2 = co_await corio::open_connection(srv.addresses().front(), by_ip);
    c2.writer.writelines({"a", "b", "\n"});
    EXPECT_EQ(co_await c2.reader.readline(), "ab\n");
    EXPECT_EQ(c2.writer.tls_info()->server_name, "");
    c2.writer.close();
    co_await c2.writer.wait_closed();
    EXPECT_FALSE(corio::connection{}.writer.valid());
    srv.close();
    co_await srv.wait_closed();
    EXPECT_EQ(srv.tls_handshake_errors(), 0u);
    expect_clean();
  });
}

TEST(Tls, ReadHelpersAndLargeTransfersBothWays) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    corio::server_options so_default = tls_server();
    const std::size_t size = 6 * 1024 * 1024;
    corio::server srv = co_await corio::start_server(
        [](stream_reader r, stream_writer w) -> task<> {
          std::string head = co_await r.readuntil("\r\n\r\n");
          std::string exact = co_await r.readexactly(5);
          w.write(head + exact);
          // Echo in chunks while the client is still sending: both directions full at once.
          for (;;) {
            std::string chunk = co_await r.read(64 * 1024);
            if (chunk.empty())
              break;
            w.write(std::move(chunk));
            co_await w.drain();
          }
        },
        "127.0.0.1", 0, so_default);
    corio::stream_options opts = tls_client();
    auto c = co_await corio::open_connection(srv.addresses().front(), opts);
    c.writer.write("HEAD\r\nX: y\r\n\r\n12345");
    EXPECT_EQ(co_await c.reader.readuntil("\r\n\r\n"), "HEAD\r\nX: y\r\n\r\n");
    EXPECT_EQ(co_await c.reader.readexactly(5), "12345");
    const std::string big = pattern(size, 7);
    auto sender = corio::spawn([](stream_writer w, const std::string* data) -> task<> {
      for (std::size_t off = 0; off < data->size(); off += 1000 * 1000) {
        w.write(std::string_view(*data).substr(off, 1000 * 1000));
        co_await w.drain(); // backpressure: the queue stays near the high watermark
        EXPECT_LE(w.buffer_size(), 2u * 1024 * 1024);
      }
      w.write_eof(); // close_notify: the server's read() ends, its handler returns
    }(c.writer, &big));
    std::string back = co_await c.reader.readexactly(size);
    EXPECT_TRUE(back == big) << "echoed data differs";
    co_await sender;
    EXPECT_EQ(co_await c.reader.read(), ""); // the server closed: close_notify, then EOF
    EXPECT_TRUE(c.reader.at_eof());
    c.writer.close();
    co_await c.writer.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    expect_clean();
  });
}

TEST(Tls, UntrustedCertificateFailsWithAClearError) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    corio::server_options self_signed =
        tls_server(tls_context::server(certs().self_signed_file, certs().self_signed_key_file));
    corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0, self_signed);
    address where = srv.addresses().front();
    corio::stream_options opts = tls_client();
    tls_error e = co_await expect_tls_error(where, opts);
    EXPECT_EQ(e.code(), tls_errc::certificate_verify_failed);
    EXPECT_TRUE(contains(e.what(), "corio: TLS handshake with " + where.to_string() +
                                       " failed: certificate verify "
                                       "failed (self-signed "
                                       "certificate)"))
        << e.what();
    // The system CAs do not know our CA either: verification is on by default.
    corio::stream_options defaults{.tls = tls_context::client(), .server_hostname = "localhost"};
    tls_error e2 = co_await expect_tls_error(where, defaults);
    EXPECT_EQ(e2.code(), tls_errc::certificate_verify_failed) << e2.what();
    srv.close();
    co_await srv.wait_closed();
    EXPECT_EQ(srv.tls_handshake_errors(), 2u); // the server saw the client's alert
    expect_clean();
  });
}

TEST(Tls, HostnameMismatch) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    corio::server_options so_default = tls_server();
    corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0, so_default);
    address where = srv.addresses().front();
    corio::stream_options o = tls_client();
    o.server_hostname = "example.com";
    tls_error e = co_await expect_tls_error(where, o);
    EXPECT_EQ(e.code(), tls_errc::hostname_mismatch);
    EXPECT_TRUE(contains(e.what(), "hostname mismatch")) << e.what();
    o.server_hostname = "127.0.0.2"; // an IP address is checked against the IP SANs
    tls_error e2 = co_await expect_tls_error(where, o);
    EXPECT_EQ(e2.code(), tls_errc::hostname_mismatch);
    EXPECT_TRUE(contains(e2.what(), "IP address mismatch")) << e2.what();
    // A tls_error is a std::system_error: code catching connection errors catches it too.
    EXPECT_TRUE((std::is_base_of_v<std::system_error, tls_error>));
    srv.close();
    co_await srv.wait_closed();
    expect_clean();
  });
}

TEST(Tls, VerificationOffMustBeExplicit) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    corio::server_options self_signed =
        tls_server(tls_context::server(certs().self_signed_file, certs().self_signed_key_file));
    corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0, self_signed);
    tls_context insecure = tls_context::client();
    EXPECT_TRUE(insecure.verify());
    insecure.set_verify(false);
    EXPECT_FALSE(insecure.verify());
    corio::stream_options opts{.tls = insecure, .server_hostname = "x.invalid"};
    auto c = co_await corio::open_connection(srv.addresses().front(), opts);
    c.writer.write("unverified\n");
    EXPECT_EQ(co_await c.reader.readline(), "unverified\n");
    EXPECT_FALSE(c.writer.tls_info()->peer_verified);
    EXPECT_EQ(c.writer.tls_info()->peer_subject, "CN=localhost");
    c.writer.close();
    co_await c.writer.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    expect_clean();
  });
}

TEST(Tls, SniAndAlpn) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    std::vector<corio::tls_info> seen;
    tls_context sctx = server_ctx();
    sctx.set_alpn_protocols({"http/1.1", "corio/1"});
    corio::server_options so_sctx = tls_server(sctx);
    corio::server srv = co_await corio::start_server(
        [&seen](stream_reader r, stream_writer w) -> task<> {
          seen.push_back(*w.tls_info());
          co_await echo_lines(r, w);
        },
        "127.0.0.1", 0, so_sctx);
    address where = srv.addresses().front();
    for (int round = 0; round < 2; ++round) {
      tls_context cctx = client_ctx();
      if (round == 0)
        cctx.set_alpn_protocols({"h2", "corio/1"});
      else
        cctx.set_alpn_protocols({"h2"}); // no overlap: no ALPN, the handshake goes on
      corio::stream_options opts = tls_client(cctx);
      auto c = co_await corio::open_connection(where, opts);
      c.writer.write("x\n");
      EXPECT_EQ(co_await c.reader.readline(), "x\n");
      EXPECT_EQ(c.writer.tls_info()->alpn, round == 0 ? "corio/1" : "");
      c.writer.close();
      co_await c.writer.wait_closed();
    }
    srv.close();
    co_await srv.wait_closed();
    EXPECT_EQ(seen.size(), 2u);
    for (std::size_t i = 0; i < seen.size(); ++i) {
      EXPECT_EQ(seen[i].server_name, "localhost");
      EXPECT_EQ(seen[i].alpn, i == 0 ? "corio/1" : "");
    }
    EXPECT_THROW(sctx.set_alpn_protocols({""}), std::invalid_argument);
    expect_clean();
  });
}

TEST(Tls, StartTlsAfterAPlaintextExchange) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    corio::server srv = co_await corio::start_server(
        [](stream_reader r, stream_writer w) -> task<> {
          EXPECT_EQ(co_await r.readline(), "HELLO\n");
          w.write("250 hi\n");
          EXPECT_EQ(co_await r.readline(), "STARTTLS\n");
          w.write("220 go ahead\n");
          co_await w.start_tls(server_ctx());
          EXPECT_TRUE(w.tls_info().has_value());
          co_await echo_lines(r, w);
        },
        "127.0.0.1", 0);
    auto [r, w] = co_await corio::open_connection(srv.addresses().front());
    EXPECT_FALSE(w.tls_info().has_value());
    w.write("HELLO\n");
    EXPECT_EQ(co_await r.readline(), "250 hi\n");
    w.write("STARTTLS\n");
    EXPECT_EQ(co_await r.readline(), "220 go ahead\n");
    co_await w.start_tls(client_ctx(), "localhost");
    EXPECT_EQ(w.tls_info()->peer_subject, "CN=localhost");
    w.write("secret\n");
    EXPECT_EQ(co_await r.readline(), "secret\n"); // the reader speaks TLS too
    EXPECT_THROW(co_await w.start_tls(client_ctx(), "localhost"), corio::invalid_state_error);
    w.close();
    co_await w.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    expect_clean();
  });
}

// The server cancels a plaintext read just as the client's hello arrives. On io_uring the kernel may have
// taken the hello for that read already (it is stashed for the fd): start_tls must hand it to TLS.
TEST(Tls, StartTlsAfterACancelledReadSeesTheHello) {
  corio::testing::leak_check leaks;
  corio::socket listener = corio::listen_on(address::parse("127.0.0.1:0"));
  const address where = listener.local_address();
  std::atomic<bool> go{false};
  std::thread client([&] {
    try {
      corio::run([](address a, std::atomic<bool>& g) -> task<> {
        auto [r, w] = co_await corio::open_connection(a);
        while (!g.load())
          co_await corio::sleep(1ms);
        co_await w.start_tls(client_ctx(), "localhost", 5s);
        w.write("ping\n");
        EXPECT_EQ(co_await r.readline(), "ping\n");
        w.close();
        co_await w.wait_closed();
      }(where, go));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "client: " << e.what();
    }
  });
  run_real([&]() -> task<> {
    corio::accepted a = co_await corio::sock_accept(listener);
    auto [r, w] = corio::make_streams(std::move(a.conn), a.peer);
    auto probe = corio::spawn([](stream_reader& rd) -> task<std::string> { co_return co_await rd.read(100); }(r));
    co_await corio::sleep(10ms); // the probe's read is in flight
    go = true;
    std::this_thread::sleep_for(200ms); // the hello arrives; the loop does not run meanwhile
    probe.cancel();
    EXPECT_TRUE(co_await corio::testing::was_cancelled(probe));
    co_await w.start_tls(server_ctx(), {}, 5s);
    EXPECT_EQ(co_await r.readline(), "ping\n");
    w.write("ping\n");
    EXPECT_EQ(co_await r.read(10), ""); // the client closes
    w.close();
    co_await w.wait_closed();
  });
  client.join();
}

TEST(Tls, PlaintextPeersFailTheHandshakeAndTheServerGoesOn) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    corio::server_options so_default = tls_server();
    int handled = 0;
    corio::server srv = co_await corio::start_server(
        [&handled](stream_reader r, stream_writer w) -> task<> {
          ++handled;
          co_await echo_lines(r, w);
        },
        "127.0.0.1", 0, so_default);
    address where = srv.addresses().front();
    // A plaintext client talking HTTP to the TLS server: its connection is closed, nothing else happens.
    auto plain = co_await corio::open_connection(where);
    plain.writer.write("GET / HTTP/1.0\r\n\r\n");
    std::string answer;
    try {
      answer = co_await plain.reader.read(); // an alert at most, then the end
    } catch (const std::system_error&) {
      // or a reset
    }
    EXPECT_LT(answer.size(), 64u);
    plain.writer.close();
    co_await plain.writer.wait_closed();
    // A TLS client connecting to a plaintext server that answers with text.
    corio::server text = co_await corio::start_server(
        [](stream_reader, stream_writer w) -> task<> {
          w.write("HTTP/1.0 400 Bad Request\r\n\r\nnot TLS at all\n");
          co_return;
        },
        "127.0.0.1", 0);
    corio::stream_options opts = tls_client();
    tls_error e = co_await expect_tls_error(text.addresses().front(), opts);
    EXPECT_TRUE(e.code() == tls_errc::handshake_failed || e.code() == tls_errc::closed_in_handshake) << e.what();
    EXPECT_TRUE(contains(e.what(), "corio: TLS handshake with ")) << e.what();
    // The TLS server still serves a real client.
    auto good = co_await corio::open_connection(where, opts);
    good.writer.write("still serving\n");
    EXPECT_EQ(co_await good.reader.readline(), "still serving\n");
    good.writer.close();
    co_await good.writer.wait_closed();
    srv.close();
    text.close();
    co_await srv.wait_closed();
    co_await text.wait_closed();
    EXPECT_EQ(srv.tls_handshake_errors(), 1u);
    EXPECT_EQ(handled, 1);
    expect_clean();
  });
}

TEST(Tls, PeerClosingMidHandshake) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    // Reads the client's hello, then hangs up: with unread data (a reset) and without (a FIN).
    corio::stream_options opts = tls_client();
    for (bool drain_first : {false, true}) {
      // Named first: a copy-capturing lambda in a co_await expression (HAZARDS 2).
      auto hang_up = [drain_first](stream_reader r, stream_writer w) -> task<> {
        (void)co_await r.read(drain_first ? 64 * 1024 : 1);
        (void)w;
      };
      corio::server srv = co_await corio::start_server(hang_up, "127.0.0.1", 0);
      tls_error e = co_await expect_tls_error(srv.addresses().front(), opts);
      EXPECT_TRUE(contains(e.what(), "corio: TLS handshake with ")) << e.what();
      if (drain_first) {
        EXPECT_EQ(e.code(), tls_errc::closed_in_handshake) << e.what();
      }
      srv.close();
      co_await srv.wait_closed();
    }
    expect_clean();
  });
}

TEST(Tls, HandshakeTimeoutOnBothSides) {
  corio::testing::leak_check leaks;
  run_mock([](corio::testing::mock_clock* clock) -> task<> {
    // Client side: the server accepts and never answers.
    corio::server mute = co_await corio::start_server(
        [](stream_reader r, stream_writer) -> task<> { (void)co_await r.readexactly(1 << 20); }, "127.0.0.1", 0);
    corio::stream_options o = tls_client();
    o.tls_handshake_timeout = 5s;
    auto start = clock->now();
    tls_error e = co_await expect_tls_error(mute.addresses().front(), o);
    EXPECT_EQ(e.code(), tls_errc::handshake_timeout);
    EXPECT_TRUE(contains(e.what(), "timed out after 5000 ms")) << e.what();
    EXPECT_EQ(clock->now() - start, 5s);
    mute.close();
    mute.close_clients();
    co_await mute.wait_closed();
    // Server side: a client connects and sends nothing; the server gives up after its timeout.
    corio::server_options so = tls_server();
    so.tls_handshake_timeout = 2s;
    corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0, so);
    start = clock->now();
    auto silent = co_await corio::open_connection(srv.addresses().front());
    EXPECT_EQ(co_await silent.reader.read(), ""); // closed by the server
    EXPECT_EQ(clock->now() - start, 2s);
    silent.writer.close();
    srv.close();
    co_await srv.wait_closed();
    EXPECT_EQ(srv.tls_handshake_errors(), 1u);
    expect_only_main_task();
  });
}

// A limit below a millisecond is printed as it was given, not as "0 ms".
TEST(Tls, HandshakeTimeoutsBelowAMillisecondArePrintedExactly) {
  corio::testing::leak_check leaks;
  run_mock([](corio::testing::mock_clock* clock) -> task<> {
    corio::server mute = co_await corio::start_server(
        [](stream_reader r, stream_writer) -> task<> { (void)co_await r.readexactly(1 << 20); }, "127.0.0.1", 0);
    corio::stream_options o = tls_client();
    o.tls_handshake_timeout = 250us;
    auto start = clock->now();
    tls_error e = co_await expect_tls_error(mute.addresses().front(), o);
    EXPECT_EQ(e.code(), tls_errc::handshake_timeout);
    EXPECT_TRUE(contains(e.what(), "timed out after 250 us")) << e.what();
    EXPECT_EQ(clock->now() - start, 250us);
    o.tls_handshake_timeout = 7ns;
    tls_error e2 = co_await expect_tls_error(mute.addresses().front(), o);
    EXPECT_TRUE(contains(e2.what(), "timed out after 7 ns")) << e2.what();
    mute.close();
    mute.close_clients();
    co_await mute.wait_closed();
    expect_only_main_task();
  });
}

// A negative handshake timeout is refused where it is given, before anything connects or listens
// (asyncio: ValueError); zero still means no limit.
TEST(Tls, NegativeHandshakeTimeoutsAreRefused) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0, tls_server());
    const address where = srv.addresses().front();
    corio::stream_options o = tls_client();
    o.tls_handshake_timeout = -1ms;
    const std::string negative = ": the TLS handshake timeout must not be negative (";
    EXPECT_EQ(co_await refusal_of(corio::open_connection(where, o)),
              "corio: open_connection()" + negative + "-1 ms; zero: no limit)");
    EXPECT_EQ(co_await refusal_of(corio::open_connection("localhost", srv.port(), o)),
              "corio: open_connection()" + negative + "-1 ms; zero: no limit)");
    std::vector<address> candidates{where};
    EXPECT_EQ(co_await refusal_of(corio::open_connection(candidates, o)),
              "corio: open_connection()" + negative + "-1 ms; zero: no limit)");
    corio::server_options so = tls_server();
    so.tls_handshake_timeout = -1ns;
    EXPECT_EQ(co_await refusal_of(corio::start_server(echo_lines, "127.0.0.1", 0, so)),
              "corio: start_server()" + negative + "-1 ns; zero: no limit)");
    std::string sync_refusal = "accepted";
    try {
      corio::server s = corio::start_server(echo_lines, std::vector<address>{address::loopback_ipv4(0)}, so);
    } catch (const std::invalid_argument& e) {
      sync_refusal = e.what();
    }
    EXPECT_EQ(sync_refusal, "corio: start_server()" + negative + "-1 ns; zero: no limit)");
    // start_tls: refused before the stream is touched; the handshake then works with a good timeout.
    connection c = co_await corio::open_connection(where);
    const std::string refused = co_await refusal_of(c.writer.start_tls(client_ctx(), "localhost", -5us));
    EXPECT_EQ(refused, "corio: start_tls()" + negative + "-5 us; zero: no limit)");
    if (refused != "accepted")
      co_await c.writer.start_tls(client_ctx(), "localhost", 0s); // zero: no limit
    c.writer.write("over tls\n");
    EXPECT_EQ(co_await c.reader.readline(), "over tls\n");
    c.writer.close();
    co_await c.writer.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    EXPECT_EQ(srv.tls_handshake_errors(), 0u);
    expect_clean();
  });
}

// OpenSSL sends and checks only what comes before a NUL byte: "localhost\0.evil.example" would verify
// against a certificate for localhost (and go out as SNI "localhost"). Refused wherever a TLS name is
// given, before anything connects.
TEST(Tls, HostNamesWithANulByteAreRefused) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0, tls_server());
    const address where = srv.addresses().front();
    const std::string evil("localhost\0.evil.example", 23);
    const std::string shown = ": the host name \"localhost\\0.evil.example\" contains a NUL byte";
    corio::stream_options named = tls_client();
    named.server_hostname = evil;
    EXPECT_EQ(co_await refusal_of(corio::open_connection("127.0.0.1", srv.port(), named)),
              "corio: open_connection()" + shown);
    EXPECT_EQ(co_await refusal_of(corio::open_connection(where, named)), "corio: open_connection()" + shown);
    corio::stream_options by_host{.tls = client_ctx()};
    EXPECT_EQ(co_await refusal_of(corio::open_connection(evil, srv.port(), by_host)),
              "corio: open_connection()" + shown);
    // start_tls: refused before the stream is touched; the handshake then works with a good name.
    connection c = co_await corio::open_connection(where);
    const std::string refused = co_await refusal_of(c.writer.start_tls(client_ctx(), evil));
    EXPECT_EQ(refused, "corio: start_tls()" + shown);
    if (refused != "accepted")
      co_await c.writer.start_tls(client_ctx(), "localhost");
    c.writer.write("over tls\n");
    EXPECT_EQ(co_await c.reader.readline(), "over tls\n");
    c.writer.close();
    co_await c.writer.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    EXPECT_EQ(srv.tls_handshake_errors(), 0u);
    expect_clean();
  });
}

/// A TLS 1.2 server made with OpenSSL's own API (corio refuses renegotiation, so it cannot be the side
/// that asks): accepts one connection on the blocking `listener`, sends "hello\n", then asks for a
/// renegotiation (HelloRequest) and waits for the answer. Every wait is bounded (SO_RCVTIMEO).
void renegotiating_server(int listener) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, certs().server_cert_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, certs().server_key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    ADD_FAILURE() << "cannot load the server's certificate";
  int fd = ::accept(listener, nullptr, nullptr);
  if (fd >= 0) {
    timeval limit{10, 0};
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    char buf[64];
    // SSL_do_handshake() sends the HelloRequest; the read takes the client's no_renegotiation warning,
    // which OpenSSL answers with a fatal handshake_failure alert.
    if (SSL_accept(ssl) == 1 && SSL_write(ssl, "hello\n", 6) == 6 && SSL_renegotiate(ssl) == 1 &&
        SSL_do_handshake(ssl) == 1)
      (void)SSL_read(ssl, buf, sizeof buf);
    SSL_free(ssl);
    ::close(fd);
  }
  SSL_CTX_free(ctx);
}

// Renegotiation is refused (docs/security.md). When the peer asks for one, the errors that follow say
// so instead of only relaying OpenSSL's "sslv3 alert handshake failure".
TEST(Tls, ARefusedRenegotiationIsNamedInTheError) {
  corio::testing::leak_check leaks;
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&sin), &len), 0);
  timeval limit{10, 0};
  ASSERT_EQ(::setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit), 0); // bounds accept()
  std::thread peer(renegotiating_server, listener);
  const std::uint16_t port = ntohs(sin.sin_port);
  run_real([port]() -> task<> {
    corio::stream_options o = tls_client();
    o.tls_handshake_timeout = 10s;
    connection c = co_await corio::open_connection(address::loopback_ipv4(port), o);
    EXPECT_EQ(c.writer.tls_info()->version, "TLSv1.2");
    EXPECT_EQ(co_await c.reader.readline(), "hello\n");
    std::string read_error = "the read returned";
    try {
      auto bounded = corio::timeout(10s);
      (void)co_await c.reader.read();
    } catch (const tls_error& e) {
      read_error = e.what();
    }
    const std::string why = ": the peer asked for a TLS renegotiation, which corio refuses (see docs/security.md): ";
    EXPECT_TRUE(contains(read_error, "corio: TLS read from 127.0.0.1:" + std::to_string(port) + why)) << read_error;
    std::string write_error = "the write went through";
    try {
      c.writer.write("more\n");
    } catch (const std::exception& e) {
      write_error = e.what();
    }
    EXPECT_TRUE(contains(write_error, "corio: TLS write to 127.0.0.1:" + std::to_string(port) + why)) << write_error;
    c.writer.abort();
    co_await c.writer.wait_closed();
    expect_clean();
  });
  peer.join();
  ::close(listener);
}

TEST(Tls, CancellationDuringHandshakeAndReads) {
  corio::testing::leak_check leaks;
  run_mock([](corio::testing::mock_clock*) -> task<> {
    corio::server mute = co_await corio::start_server(
        [](stream_reader r, stream_writer) -> task<> { (void)co_await r.readexactly(1 << 20); }, "127.0.0.1", 0);
    // The caller's own timeout: a timeout_error (a cancellation), not a tls_error; the socket is gone.
    try {
      auto limit = corio::timeout(1s);
      corio::stream_options opts = tls_client();
      connection c = co_await corio::open_connection(mute.addresses().front(), opts);
      ADD_FAILURE();
    } catch (const corio::timeout_error&) {
    }
    // A spawned connect cancelled mid-handshake.
    auto h = corio::spawn(corio::open_connection(mute.addresses().front(), tls_client()));
    co_await corio::sleep(1s);
    h.cancel();
    EXPECT_TRUE(co_await corio::testing::was_cancelled(h));
    mute.close();
    mute.close_clients();
    co_await mute.wait_closed();

    // Reads over TLS cancelled by a timeout lose nothing.
    corio::server_options so = tls_server();
    so.tls_handshake_timeout = corio::duration::zero();
    corio::server srv = co_await corio::start_server(
        [](stream_reader r, stream_writer w) -> task<> {
          std::string cmd = co_await r.readline();
          co_await corio::sleep(10s);
          w.write("late " + cmd);
          co_await echo_lines(r, w);
        },
        "127.0.0.1", 0, so);
    corio::stream_options co = tls_client();
    co.tls_handshake_timeout = corio::duration::zero();
    auto c = co_await corio::open_connection(srv.addresses().front(), co);
    c.writer.write("ping\n");
    try {
      auto limit = corio::timeout(3s);
      (void)co_await c.reader.readline();
      ADD_FAILURE();
    } catch (const corio::timeout_error&) {
    }
    EXPECT_EQ(co_await c.reader.readline(), "late ping\n");
    c.writer.close();
    co_await c.writer.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

/// What write() (or writelines(), `lines`) raises on `w`: its std::system_error code and message, or
/// another exception's message.
std::pair<int, std::string> write_error_of(stream_writer w, bool lines = false) {
  try {
    if (lines)
      w.writelines({"a", "b"});
    else
      w.write("x");
  } catch (const std::system_error& e) {
    return {e.code().value(), e.what()};
  } catch (const std::exception& e) {
    return {-1, e.what()};
  }
  return {0, "(no error)"};
}

// A start_tls() that was cancelled or failed aborts the connection: a write after it raises what a
// write to any aborted stream raises (EPIPE, "stream closed"), not "during its TLS handshake".
TEST(Tls, WriteAfterACancelledOrFailedStartTlsIsAWriteToAClosedStream) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    corio::socket listener = corio::listen_on(address::loopback_ipv4());
    // The reference: a plaintext stream aborted by hand.
    connection plain = co_await corio::open_connection(listener.local_address());
    corio::accepted plain_peer = co_await corio::sock_accept(listener);
    plain.writer.abort();
    const auto expected = write_error_of(plain.writer);
    EXPECT_EQ(expected.first, EPIPE) << expected.second;
    EXPECT_TRUE(contains(expected.second, "stream closed")) << expected.second;
    for (bool cancelled : {true, false}) {
      connection c = co_await corio::open_connection(listener.local_address());
      corio::accepted peer = co_await corio::sock_accept(listener); // never answers the hello
      if (cancelled) {
        auto upgrade = [](stream_writer w) -> task<> { co_await w.start_tls(client_ctx(), "localhost"); };
        auto h = corio::spawn(upgrade(c.writer));
        co_await corio::sleep(1s);
        h.cancel();
        EXPECT_TRUE(co_await corio::testing::was_cancelled(h));
      } else {
        co_await corio::sock_sendall(peer.conn, "this is not TLS at all\r\n\r\n"); // the handshake fails
        EXPECT_THROW(co_await c.writer.start_tls(client_ctx(), "localhost"), tls_error);
      }
      EXPECT_TRUE(c.writer.is_closing());
      for (bool lines : {false, true}) {
        const auto got = write_error_of(c.writer, lines);
        EXPECT_EQ(got.first, EPIPE) << (cancelled ? "cancelled: " : "failed: ") << got.second;
        EXPECT_EQ(got.second, expected.second) << (cancelled ? "cancelled" : "failed");
      }
      EXPECT_EQ(co_await c.reader.read(), ""); // reading: the end, as on any aborted stream
    }
    expect_only_main_task();
  });
}

TEST(Tls, CloseSendsCloseNotifyAndHalfCloseWorks) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    corio::server_options so_default = tls_server();
    corio::server srv = co_await corio::start_server(
        [](stream_reader r, stream_writer w) -> task<> {
          std::string all = co_await r.read(); // to the client's close_notify
          EXPECT_TRUE(r.at_eof());
          w.write("got " + std::to_string(all.size()));
        },
        "127.0.0.1", 0, so_default);
    corio::stream_options opts = tls_client();
    auto [r, w] = co_await corio::open_connection(srv.addresses().front(), opts);
    w.write(std::string(100000, 'z'));
    w.write_eof(); // TLS 1.3 half-close: the server still answers
    EXPECT_THROW(w.write("more"), std::system_error);
    EXPECT_EQ(co_await r.read(), "got 100000");
    EXPECT_TRUE(r.at_eof());
    w.close();
    co_await w.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    expect_clean();
  });
}

/// writer.sendfile over TLS: the file is read in chunks and encrypted (sendfile(2) cannot be used), in order
/// with the writes before it, the writes other tasks make while it runs, and the ones after it.
TEST(Tls, SendfileIsReadAndEncryptedInOrder) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    corio::server_options so_default = tls_server();
    corio::server srv = co_await corio::start_server(
        [](stream_reader r, stream_writer w) -> task<> {
          for (;;) { // echo in chunks while the client still sends
            std::string chunk = co_await r.read(64 * 1024);
            if (chunk.empty())
              break;
            w.write(std::move(chunk));
            co_await w.drain();
          }
        },
        "127.0.0.1", 0, so_default);
    corio::stream_options opts = tls_client();
    auto c = co_await corio::open_connection(srv.addresses().front(), opts);
    const int small = 16384; // the sendfile must wait for room, so that other writes come while it runs
    ::setsockopt(c.writer.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    const std::string data = pattern((3 << 20) + 17, 5);
    char name[] = "/tmp/corio-tls-sendfile-XXXXXX";
    const int fd = ::mkstemp(name);
    ::unlink(name);
    for (std::size_t off = 0; off < data.size();)
      off += static_cast<std::size_t>(::write(fd, data.data() + off, data.size() - off));
    const std::string expected =
        "head;" + data.substr(1000, data.size() - 1000) + "while;" + "tail;" + data.substr(data.size() - 10) + "end";
    auto reader = corio::spawn(c.reader.readexactly(expected.size()));
    c.writer.write("head;");
    auto sending = corio::spawn([](stream_writer w, int f) -> task<std::uint64_t> {
      std::uint64_t n = co_await w.sendfile(f, 1000);
      co_return n;
    }(c.writer, fd));
    co_await corio::sleep(0s); // the sendfile starts and waits for room
    EXPECT_FALSE(sending.done());
    c.writer.write("while;"); // held until the sendfile is done
    EXPECT_EQ(co_await sending, data.size() - 1000);
    c.writer.write("tail;");
    EXPECT_EQ(co_await c.writer.sendfile(fd, data.size() - 10, 100), 10u); // beyond the end: what there is
    EXPECT_EQ(co_await c.writer.sendfile(fd, 0, 0), 0u);
    c.writer.write("end");
    std::string got = co_await reader;
    EXPECT_EQ(got.size(), expected.size());
    EXPECT_TRUE(got == expected) << "data corrupted or reordered";
    ::close(fd);
    c.writer.close();
    co_await c.writer.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    expect_clean();
  });
}

// A TLS 1.3 client that only writes never reads the session tickets the server sends after the handshake.
// Closing with them unread must not reset the connection (Linux does, for a socket closed with unread
// bytes): the server reads everything, then end of stream. It read part, then ECONNRESET.
TEST(Tls, AClientThatOnlyWritesDeliversEverythingOnClose) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    const std::string data = pattern(1 << 20, 3);
    corio::event handler_started, handler_done;
    std::string got, error;
    corio::server_options so_default = tls_server();
    corio::server srv = co_await corio::start_server(
        [&](stream_reader r, stream_writer) -> task<> {
          handler_started.set(); // after the server's handshake, which sent the tickets
          try {
            got = co_await r.read(); // to end of stream
          } catch (const std::exception& e) {
            error = e.what();
          }
          handler_done.set();
        },
        "127.0.0.1", 0, so_default);
    corio::stream_options opts = tls_client();
    auto [r, w] = co_await corio::open_connection(srv.addresses().front(), opts);
    co_await handler_started.wait();
    pollfd p{w.fd(), POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 5000), 1); // the tickets are here, and nobody reads them
    EXPECT_GT(unread_bytes(w.fd()), 0);
    w.write(data);
    co_await w.drain();
    w.close();
    co_await w.wait_closed();
    co_await handler_done.wait();
    EXPECT_EQ(error, "");
    EXPECT_TRUE(got == data) << got.size();
    srv.close();
    co_await srv.wait_closed();
    expect_clean();
  });
}

// A read waiting from right after the handshake is woken by the session tickets the server sends then,
// takes them in (nothing for the reader) and waits on: the socket is left with nothing unread. (An audit
// saw 510 unread bytes at close() with such a read spawned; that read had not started yet: its spawner
// never suspended before close().)
TEST(Tls, AWaitingReadTakesTheSessionTicketsIn) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    corio::event handler_started, reader_started, may_end;
    corio::server_options so_default = tls_server();
    corio::server srv = co_await corio::start_server(
        [&](stream_reader, stream_writer) -> task<> {
          handler_started.set();
          co_await may_end.wait();
        },
        "127.0.0.1", 0, so_default);
    corio::stream_options opts = tls_client();
    auto [r, w] = co_await corio::open_connection(srv.addresses().front(), opts);
    auto reader = corio::spawn([](stream_reader rd, corio::event* started) -> task<std::string> {
      started->set();
      std::string all = co_await rd.read(); // to end of stream
      co_return all;
    }(r, &reader_started));
    co_await reader_started.wait();
    co_await handler_started.wait();
    int left = unread_bytes(w.fd());
    for (int i = 0; i < 5000 && left != 0; ++i) { // no event says "OpenSSL took them": look, 5 s at most
      co_await corio::sleep(1ms);
      left = unread_bytes(w.fd());
    }
    EXPECT_EQ(left, 0);
    EXPECT_FALSE(reader.done());
    may_end.set(); // the server closes: the read ends
    EXPECT_EQ(co_await reader, "");
    w.close();
    co_await w.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    expect_clean();
  });
}

TEST(Tls, EofWithoutCloseNotifyReadsAsEndOfStream) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    corio::server_options so_default = tls_server();
    corio::server srv = co_await corio::start_server(
        [](stream_reader r, stream_writer w) -> task<> {
          EXPECT_EQ(co_await r.readline(), "go\n");
          w.write("last words");
          w.abort(); // the socket closes without close_notify (a crashed or careless peer)
        },
        "127.0.0.1", 0, so_default);
    corio::stream_options opts = tls_client();
    auto [r, w] = co_await corio::open_connection(srv.addresses().front(), opts);
    w.write("go\n");
    EXPECT_EQ(co_await r.read(), "last words"); // then end of stream, as asyncio reads it
    EXPECT_TRUE(r.at_eof());
    w.close();
    co_await w.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    expect_clean();
  });
}

TEST(Tls, ClientCertificates) {
  corio::testing::leak_check leaks;
  run_real([]() -> task<> {
    tls_context sctx = server_ctx();
    sctx.load_verify_locations(certs().ca_file);
    sctx.set_verify(true); // require a client certificate signed by the CA
    corio::server_options so_sctx = tls_server(sctx);
    std::string subject;
    corio::server srv = co_await corio::start_server(
        [&subject](stream_reader r, stream_writer w) -> task<> {
          subject = w.tls_info()->peer_subject;
          co_await echo_lines(r, w);
        },
        "127.0.0.1", 0, so_sctx);
    tls_context with_cert = client_ctx();
    with_cert.load_cert_chain(certs().client_cert_file, certs().client_key_file);
    corio::stream_options opts = tls_client(with_cert);
    auto c = co_await corio::open_connection(srv.addresses().front(), opts);
    c.writer.write("me\n");
    EXPECT_EQ(co_await c.reader.readline(), "me\n");
    EXPECT_EQ(subject, "CN=corio test client");
    c.writer.close();
    co_await c.writer.wait_closed();
    // Without one: TLS 1.3 reports the refusal after the client's handshake, on its first read.
    corio::stream_options bare_opts = tls_client();
    auto bare = co_await corio::open_connection(srv.addresses().front(), bare_opts);
    bare.writer.write("me\n");
    EXPECT_THROW((void)co_await bare.reader.readline(), tls_error);
    bare.writer.abort();
    srv.close();
    co_await srv.wait_closed();
    EXPECT_EQ(srv.tls_handshake_errors(), 1u);
    expect_clean();
  });
}

// The ready queue in order and shuffled (mock clock, so the handshake deadline is off: see the top).
class TlsOrders : public corio::testing::ordered_and_shuffled {};

TEST_P(TlsOrders, ManyClientsAtOnce) {
  run([]() -> task<> {
    corio::server_options so = tls_server();
    so.tls_handshake_timeout = corio::duration::zero();
    corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0, so);
    corio::stream_options opts = tls_client();
    opts.tls_handshake_timeout = corio::duration::zero();
    std::vector<corio::join_handle<std::string>> clients;
    for (int i = 0; i < 8; ++i) {
      auto client = [](address where, corio::stream_options o, int n) -> task<std::string> {
        auto c = co_await corio::open_connection(where, o);
        std::string line = "client " + std::to_string(n) + "\n";
        c.writer.write(line);
        std::string back = co_await c.reader.readline();
        c.writer.close();
        co_await c.writer.wait_closed();
        co_return back;
      };
      clients.push_back(corio::spawn(client(srv.addresses().front(), opts, i)));
    }
    for (int i = 0; i < 8; ++i)
      EXPECT_EQ(co_await clients[static_cast<std::size_t>(i)], "client " + std::to_string(i) + "\n");
    srv.close();
    co_await srv.wait_closed();
    EXPECT_EQ(srv.tls_handshake_errors(), 0u);
    corio::testing::expect_only_main_task();
  });
}

INSTANTIATE_TEST_SUITE_P(Seeds, TlsOrders, corio::testing::ready_orders());

TEST(Tls, BadConfigurationAndMisuse) {
  corio::testing::leak_check leaks;
  try {
    (void)tls_context::server("/nonexistent/cert.pem", certs().server_key_file);
    ADD_FAILURE();
  } catch (const tls_error& e) {
    EXPECT_EQ(e.code(), tls_errc::bad_configuration);
    EXPECT_TRUE(contains(e.what(), "'/nonexistent/cert.pem'")) << e.what();
  }
  EXPECT_THROW((void)tls_context::server(certs().server_cert_file, certs().self_signed_key_file), tls_error);
  // A NUL byte in a file name: OpenSSL would load the file named by what comes before it.
  const std::string nul("\0.old", 5);
  auto refusal = [](auto load) {
    try {
      load();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(refusal([&] { client_ctx().load_verify_locations(certs().ca_file + nul); }),
            "corio: TLS: load_verify_locations: the file \"" + certs().ca_file + "\\0.old\" contains a NUL byte");
  EXPECT_EQ(refusal([&] { (void)tls_context::server(certs().server_cert_file + nul, certs().server_key_file); }),
            "corio: TLS: load_cert_chain: the certificate chain file \"" + certs().server_cert_file +
                "\\0.old\" contains a NUL byte");
  EXPECT_EQ(refusal([&] { (void)tls_context::server(certs().server_cert_file, certs().server_key_file + nul); }),
            "corio: TLS: load_cert_chain: the key file \"" + certs().server_key_file + "\\0.old\" contains a NUL byte");
  EXPECT_THROW(client_ctx().set_ciphers("NO-SUCH-CIPHER"), tls_error);
  EXPECT_THROW(tls_context().set_verify(true), corio::invalid_state_error);
  run_real([]() -> task<> {
    corio::server_options client_side = tls_server(client_ctx());
    EXPECT_THROW((void)co_await corio::start_server(echo_lines, "127.0.0.1", 0, client_side), std::invalid_argument);
    corio::server_options wrong;
    wrong.streams.tls = client_ctx();
    EXPECT_THROW((void)co_await corio::start_server(echo_lines, "127.0.0.1", 0, wrong), std::invalid_argument);
    expect_clean();
  });
}

} // namespace
