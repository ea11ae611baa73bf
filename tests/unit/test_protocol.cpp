// corio::protocol / corio::transport, create_connection and create_server (asyncio's protocols and
// transports). Loopback only; every test checks that no task, frame or fd is left, in order and shuffled.
#include <corio/net.hpp>
#include <corio/net/protocol.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/event.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "callback_watch.hpp"
#include "leak_check.hpp"
#include "loop_fixture.hpp"
#include "net_helpers.hpp"
#include "tls_certs.hpp"

using namespace std::chrono_literals;
using corio::address;
using corio::task;
using corio::testing::error_code;
using corio::testing::error_text;
using corio::testing::expect_only_main_task;
using corio::testing::pattern;
using corio::testing::spin;
using corio::testing::unread_bytes;

namespace {

constexpr std::size_t mib = 1 << 20;

struct recorder;

/// What the test shares with its protocols: every callback pokes it (callback_watch: a wait bounded in
/// real time), the server's protocols and how to set them up.
struct world : corio::testing::callback_watch {
  std::vector<std::shared_ptr<recorder>> servers; // the server's protocols, in accept order
  std::function<void(recorder&)> server_setup;    // applied to each server protocol before it runs
};

/// Waits until a protocol callback ran (call it in a loop around the condition); raises once the
/// watchdog expired.
task<> changed(world* w) { co_await w->next("a protocol callback"); }

/// A protocol that records its callbacks and, as configured, echoes, pauses, throws or answers EOF.
struct recorder : corio::protocol {
  explicit recorder(world* wd) : w(wd) {}
  world* w;
  corio::transport* t = nullptr; // valid from connection_made until connection_lost
  std::string got;
  int made = 0, data_calls = 0, eofs = 0, lost = 0, pauses = 0, resumes = 0;
  std::exception_ptr error;
  std::size_t queued_at_lost = 12345;
  // Behaviour.
  bool echo = false;             // write back what comes
  bool flow = false;             // echo: stop reading while paused for writing (asyncio's pattern)
  bool keep_open = false;        // eof_received's answer
  bool pause_in_made = false;    // pause_reading() in connection_made
  bool pause_after_data = false; // pause_reading() after the first data_received
  std::string throw_on;          // data_received raises once the data has this in it
  int small_sndbuf = 0;          // SO_SNDBUF in connection_made

  void connection_made(corio::transport& tr) override {
    EXPECT_EQ(made, 0);
    t = &tr;
    ++made;
    if (small_sndbuf != 0) {
      EXPECT_EQ(::setsockopt(tr.fd(), SOL_SOCKET, SO_SNDBUF, &small_sndbuf, sizeof small_sndbuf), 0);
    }
    if (pause_in_made)
      tr.pause_reading();
    w->poke();
  }
  void data_received(std::string_view d) override {
    EXPECT_EQ(lost, 0);
    EXPECT_TRUE(t->is_reading()) << "data_received while reading is paused";
    EXPECT_FALSE(d.empty());
    ++data_calls;
    got.append(d);
    w->poke();
    if (!throw_on.empty() && got.find(throw_on) != std::string::npos)
      throw std::runtime_error("boom: " + throw_on);
    if (echo)
      t->write(d);
    if (pause_after_data) {
      pause_after_data = false;
      t->pause_reading();
    }
  }
  bool eof_received() override {
    EXPECT_EQ(eofs, 0);
    ++eofs;
    w->poke();
    return keep_open;
  }
  void connection_lost(std::exception_ptr e) override {
    EXPECT_EQ(made, 1);
    ++lost;
    error = e;
    queued_at_lost = t->get_write_buffer_size();
    EXPECT_TRUE(t->is_closing());
    t = nullptr;
    w->poke();
  }
  void pause_writing() override {
    EXPECT_EQ(pauses, resumes) << "pause_writing twice";
    EXPECT_GT(t->get_write_buffer_size(), t->get_write_buffer_limits().high);
    ++pauses;
    if (flow)
      t->pause_reading();
    w->poke();
  }
  void resume_writing() override {
    EXPECT_EQ(pauses, resumes + 1) << "resume_writing without pause_writing";
    EXPECT_LE(t->get_write_buffer_size(), t->get_write_buffer_limits().low);
    ++resumes;
    if (flow)
      t->resume_reading();
    w->poke();
  }
};

/// A factory of server protocols, kept in the world.
auto server_factory(world* w) {
  return [w] {
    auto p = std::make_shared<recorder>(w);
    if (w->server_setup)
      w->server_setup(*p);
    w->servers.push_back(p);
    return p;
  };
}

/// A large send buffer again once the test has what it needed from a small one: a small one makes the
/// transfer crawl (a segment in flight at a time, each waiting for a delayed ACK).
void widen_sndbuf(int fd) {
  int big = 4 << 20;
  EXPECT_EQ(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big), 0);
}

/// Until the kernel holds n unread bytes for fd (bounded).
task<bool> until_unread(int fd, int n) {
  for (int i = 0; i < 10000 && unread_bytes(fd) < n; ++i)
    co_await corio::sleep(0ms);
  co_return unread_bytes(fd) == n;
}

class Protocol : public corio::testing::ordered_and_shuffled {};

// Order and every byte, both ways, with writes, moved-in strings and writelines; close() by the client:
// the server reads end of file and closes (eof_received false); connection_lost(nullptr) once each.
TEST_P(Protocol, EchoExchangesDataInOrder) {
  run([]() -> task<> {
    world w;
    w.server_setup = [](recorder& r) { r.echo = true; };
    auto factory = server_factory(&w);
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0);
    auto client_factory = [&w] { return std::make_unique<recorder>(&w); };
    auto [t, c] = co_await corio::create_connection(client_factory, "127.0.0.1", srv.port());
    EXPECT_EQ(c->made, 1) << "connection_made before create_connection returns";
    EXPECT_EQ(c->t, t.get());
    EXPECT_EQ(t->get_protocol(), c);
    EXPECT_EQ(t->peername(), srv.addresses().front());
    EXPECT_NE(t->sockname().port(), 0);
    std::string sent;
    for (std::size_t i = 0; i < 300; ++i) {
      std::string piece = pattern(1 + (i * 977) % 6000, i);
      sent += piece;
      if (i % 3 == 0) {
        t->write(piece);
      } else if (i % 3 == 1) {
        t->write(std::move(piece));
      } else {
        std::string_view a(piece), b = a.substr(a.size() / 2);
        a = a.substr(0, a.size() / 2);
        t->writelines({a, b});
      }
    }
    while (c->got.size() < sent.size() && c->lost == 0)
      co_await changed(&w);
    EXPECT_TRUE(c->got == sent) << "the echo differs (" << c->got.size() << " of " << sent.size() << " bytes)";
    EXPECT_EQ(w.servers.size(), 1u);
    recorder& s = *w.servers.at(0);
    EXPECT_TRUE(s.got == sent);
    EXPECT_EQ(s.t->peername(), t->sockname());

    t->close();
    EXPECT_TRUE(t->is_closing());
    EXPECT_FALSE(t->is_reading());
    EXPECT_EQ(c->lost, 0) << "connection_lost inside close()";
    while (c->lost == 0 || s.lost == 0)
      co_await changed(&w);
    co_await spin(5);
    EXPECT_EQ(c->lost, 1);
    EXPECT_EQ(s.lost, 1);
    EXPECT_EQ(c->error, nullptr);
    EXPECT_EQ(s.error, nullptr);
    EXPECT_EQ(s.eofs, 1);
    EXPECT_EQ(c->eofs, 0); // closing: no more reading
    EXPECT_TRUE(t->is_closed());
    EXPECT_EQ(t->get_protocol(), nullptr);
    EXPECT_EQ(t->fd(), -1);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// A 4 MiB write through small socket buffers: the client is paused for writing and resumed once the
// queue is down to the low-water mark; the server echoes with flow control (it stops reading while its
// own writes are paused). Every byte comes back in order.
TEST_P(Protocol, FourMiBWritePausesAndResumesWriting) {
  run([]() -> task<> {
    world w;
    w.server_setup = [](recorder& r) {
      r.echo = r.flow = true;
      r.small_sndbuf = 4096;
    };
    auto factory = server_factory(&w);
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0);
    auto client_factory = [&w] {
      auto r = std::make_shared<recorder>(&w);
      r->small_sndbuf = 4096;
      r->pause_in_made = true; // until the server's echo is paused too
      return r;
    };
    auto [t, c] = co_await corio::create_connection(client_factory, srv.addresses().front());
    EXPECT_EQ(t->get_write_buffer_limits().low, 16u * 1024);
    EXPECT_EQ(t->get_write_buffer_limits().high, 64u * 1024);
    const std::string sent = pattern(4 * mib, 7);
    t->write(sent);
    EXPECT_GT(t->get_write_buffer_size(), 1 * mib) << "the kernel took most of it: nothing to pause for";
    EXPECT_EQ(c->pauses, 1) << "pause_writing inside write()";
    EXPECT_EQ(c->resumes, 0);
    // The client reads nothing yet: the server's echo fills the kernel's buffers, then its own queue, and
    // it stops reading (flow control).
    while (w.servers.empty() || w.servers[0]->pauses == 0)
      co_await changed(&w);
    recorder& s = *w.servers[0];
    EXPECT_FALSE(s.t->is_reading());
    EXPECT_EQ(c->data_calls, 0);
    t->resume_reading();
    while (c->got.size() < sent.size() && c->lost == 0)
      co_await changed(&w);
    EXPECT_TRUE(c->got == sent) << "the echo differs (" << c->got.size() << " of " << sent.size() << " bytes)";
    EXPECT_EQ(c->pauses, 1);
    EXPECT_EQ(c->resumes, 1);
    EXPECT_EQ(t->get_write_buffer_size(), 0u);
    EXPECT_EQ(s.pauses, s.resumes);
    EXPECT_TRUE(s.got == sent);
    t->close();
    while (c->lost == 0 || s.lost == 0)
      co_await changed(&w);
    EXPECT_EQ(c->error, nullptr);
    EXPECT_EQ(s.error, nullptr);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// eof_received() false (the default): the transport closes itself. write() after write_eof() raises.
TEST_P(Protocol, EofReceivedFalseClosesTheTransport) {
  run([]() -> task<> {
    world w;
    auto factory = server_factory(&w);
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0);
    auto client_factory = [&w] { return std::make_shared<recorder>(&w); };
    auto [t, c] = co_await corio::create_connection(client_factory, srv.addresses().front());
    EXPECT_TRUE(t->can_write_eof());
    t->write("abc");
    t->write_eof();
    EXPECT_FALSE(t->is_closing());
    EXPECT_THROW(t->write("more"), corio::invalid_state_error);
    t->write_eof(); // again: nothing
    while (w.servers.empty() || w.servers[0]->lost == 0)
      co_await changed(&w);
    recorder& s = *w.servers[0];
    EXPECT_EQ(s.got, "abc");
    EXPECT_EQ(s.eofs, 1);
    EXPECT_EQ(s.error, nullptr);
    // The server closed: the client reads end of file, and closes too.
    while (c->lost == 0)
      co_await changed(&w);
    EXPECT_EQ(c->eofs, 1);
    EXPECT_EQ(c->error, nullptr);
    EXPECT_TRUE(c->got.empty());
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// eof_received() true: the connection stays open for writing (half-close); the server answers after
// the client's end of file, from the test's task, and then closes.
TEST_P(Protocol, EofReceivedTrueKeepsWritingPossible) {
  run([]() -> task<> {
    world w;
    w.server_setup = [](recorder& r) { r.keep_open = true; };
    auto factory = server_factory(&w);
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0);
    auto client_factory = [&w] { return std::make_shared<recorder>(&w); };
    auto [t, c] = co_await corio::create_connection(client_factory, srv.addresses().front());
    t->write("question");
    t->write_eof();
    while (w.servers.empty() || w.servers[0]->eofs == 0)
      co_await changed(&w);
    recorder& s = *w.servers[0];
    co_await spin(20);
    EXPECT_EQ(s.lost, 0) << "closed although eof_received returned true";
    if (s.t == nullptr) {
      ADD_FAILURE() << "the server's connection ended";
      co_return;
    }
    EXPECT_FALSE(s.t->is_closing());
    const std::string answer = "answer to " + s.got + ": " + pattern(300 * 1024, 3);
    s.t->write(answer);
    s.t->close();
    while (c->lost == 0 || s.lost == 0)
      co_await changed(&w);
    EXPECT_TRUE(c->got == answer);
    EXPECT_EQ(c->eofs, 1);
    EXPECT_EQ(c->error, nullptr);
    EXPECT_EQ(s.error, nullptr);
    EXPECT_EQ(s.queued_at_lost, 0u);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// pause_reading() (in connection_made, and from data_received): no data_received until resume_reading(),
// nothing is read meanwhile (the bytes wait in the kernel), then everything arrives in order.
TEST_P(Protocol, PauseReadingStopsDataReceived) {
  run([]() -> task<> {
    world w;
    auto factory = server_factory(&w);
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0);
    auto client_factory = [&w] {
      auto r = std::make_shared<recorder>(&w);
      r->pause_in_made = true;
      return r;
    };
    auto [t, c] = co_await corio::create_connection(client_factory, srv.addresses().front());
    EXPECT_FALSE(t->is_reading());
    while (w.servers.empty())
      co_await changed(&w);
    recorder& s = *w.servers[0];
    const std::string first = pattern(10000, 1);
    s.t->write(first);
    EXPECT_TRUE(co_await until_unread(t->fd(), 10000));
    co_await spin(50);
    EXPECT_EQ(c->data_calls, 0);
    EXPECT_EQ(unread_bytes(t->fd()), 10000) << "read while paused";
    c->pause_after_data = true; // pauses again after the next data_received
    t->resume_reading();
    EXPECT_TRUE(t->is_reading());
    while (c->got.size() < first.size())
      co_await changed(&w);
    EXPECT_TRUE(c->got == first);
    EXPECT_FALSE(t->is_reading()); // paused from data_received
    const int calls = c->data_calls;
    s.t->write("second");
    EXPECT_TRUE(co_await until_unread(t->fd(), 6));
    co_await spin(50);
    EXPECT_EQ(c->data_calls, calls);
    EXPECT_EQ(c->got.size(), first.size());
    t->pause_reading(); // already paused: nothing
    t->resume_reading();
    while (c->got.size() < first.size() + 6)
      co_await changed(&w);
    EXPECT_TRUE(c->got == first + "second");
    // close() while paused: the reading task wakes and the connection ends.
    t->pause_reading();
    t->close();
    while (c->lost == 0 || s.lost == 0)
      co_await changed(&w);
    EXPECT_EQ(c->error, nullptr);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// close() with megabytes queued: nothing is lost, connection_lost(nullptr) comes once, after the flush;
// the handle stays safe afterwards (write raises, close/abort do nothing).
TEST_P(Protocol, CloseFlushesThenConnectionLostOnce) {
  run([]() -> task<> {
    world w;
    w.server_setup = [](recorder& r) { r.pause_in_made = true; }; // nothing drains until resumed
    auto factory = server_factory(&w);
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0);
    auto client_factory = [&w] {
      auto r = std::make_shared<recorder>(&w);
      r->small_sndbuf = 4096;
      return r;
    };
    auto [t, c] = co_await corio::create_connection(client_factory, srv.addresses().front());
    const std::string sent = pattern(2 * mib, 5);
    t->write(sent);
    EXPECT_GT(t->get_write_buffer_size(), 512u * 1024);
    t->close();
    t->close();
    EXPECT_THROW(t->write("late"), corio::invalid_state_error);
    EXPECT_THROW(t->writelines({"a", "b"}), corio::invalid_state_error);
    co_await spin(20);
    EXPECT_EQ(c->lost, 0) << "lost before the queue was flushed";
    EXPECT_GT(t->get_write_buffer_size(), 512u * 1024);
    widen_sndbuf(t->fd());
    while (w.servers.empty())
      co_await changed(&w);
    recorder& s = *w.servers[0];
    s.t->resume_reading();
    while (c->lost == 0 || s.lost == 0)
      co_await changed(&w);
    co_await spin(5);
    EXPECT_EQ(c->lost, 1);
    EXPECT_EQ(c->error, nullptr);
    EXPECT_EQ(c->queued_at_lost, 0u);
    EXPECT_TRUE(s.got == sent) << s.got.size() << " of " << sent.size() << " bytes";
    EXPECT_EQ(s.eofs, 1);
    // The handle after the end.
    EXPECT_TRUE(t->is_closed());
    EXPECT_THROW(t->write("x"), corio::invalid_state_error);
    t->close();
    t->abort();
    t->pause_reading();
    t->resume_reading();
    t->write_eof();
    EXPECT_EQ(t->get_write_buffer_size(), 0u);
    EXPECT_EQ(t->peername(), srv.addresses().front());
    co_await spin(5);
    EXPECT_EQ(c->lost, 1);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// close() with bytes received and unread (reading paused): they are dropped, so the connection ends with
// a FIN; the peer gets everything and then end of file. (Linux resets a connection closed with unread
// bytes: the peer lost the end of the data and had connection_lost(ECONNRESET).)
TEST_P(Protocol, CloseWithUnreadBytesStillDeliversEverything) {
  run([]() -> task<> {
    world w;
    auto factory = server_factory(&w);
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0);
    auto client_factory = [&w] {
      auto r = std::make_shared<recorder>(&w);
      r->pause_in_made = true; // never reads
      return r;
    };
    auto [t, c] = co_await corio::create_connection(client_factory, srv.addresses().front());
    while (w.servers.empty())
      co_await changed(&w);
    recorder& s = *w.servers[0];
    s.t->write("unread");
    EXPECT_TRUE(co_await until_unread(t->fd(), 6));
    const std::string sent = pattern(mib, 9);
    t->write(sent);
    t->close(); // flushes, then closes
    while (c->lost == 0 || s.lost == 0)
      co_await changed(&w);
    EXPECT_EQ(c->error, nullptr);
    EXPECT_EQ(error_text(s.error), "(none)");
    EXPECT_EQ(s.eofs, 1);
    EXPECT_TRUE(s.got == sent) << s.got.size() << " of " << sent.size() << " bytes";
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// abort(): the queue is dropped now; connection_lost(nullptr) follows (not inside abort()); the peer gets
// part of the data and then end of file or a reset.
TEST_P(Protocol, AbortDropsTheQueue) {
  run([]() -> task<> {
    world w;
    w.server_setup = [](recorder& r) { r.pause_in_made = true; };
    auto factory = server_factory(&w);
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0);
    auto client_factory = [&w] {
      auto r = std::make_shared<recorder>(&w);
      r->small_sndbuf = 4096;
      return r;
    };
    auto [t, c] = co_await corio::create_connection(client_factory, srv.addresses().front());
    const std::string sent = pattern(4 * mib, 9);
    t->write(sent);
    EXPECT_GT(t->get_write_buffer_size(), 2 * mib);
    t->abort();
    EXPECT_EQ(t->get_write_buffer_size(), 0u);
    EXPECT_TRUE(t->is_closing());
    EXPECT_EQ(c->lost, 0) << "connection_lost inside abort()";
    t->abort();
    t->close();
    while (c->lost == 0)
      co_await changed(&w);
    EXPECT_EQ(c->error, nullptr);
    EXPECT_EQ(c->resumes, 0) << "resume_writing after abort()";
    while (w.servers.empty())
      co_await changed(&w);
    recorder& s = *w.servers[0];
    s.t->resume_reading();
    while (s.lost == 0)
      co_await changed(&w);
    EXPECT_LT(s.got.size(), sent.size()) << "the queued data was sent";
    EXPECT_TRUE(sent.compare(0, s.got.size(), s.got) == 0) << "what came is not a prefix of what was written";
    if (s.error != nullptr) {
      EXPECT_EQ(error_code(s.error), ECONNRESET) << error_text(s.error);
    } else {
      EXPECT_EQ(s.eofs, 1);
    }
    EXPECT_EQ(c->lost, 1);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// A peer that resets the connection: connection_lost gets a std::system_error naming ECONNRESET.
TEST_P(Protocol, PeerResetGivesConnectionLostWithTheError) {
  run([]() -> task<> {
    world w;
    auto factory = server_factory(&w);
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0);
    address to = srv.addresses().front();
    corio::socket raw = corio::socket::open(to.family(), corio::socket_type::stream);
    co_await corio::sock_connect(raw, to);
    co_await corio::sock_sendall(raw, "hi");
    while (w.servers.empty() || w.servers[0]->got != "hi")
      co_await changed(&w);
    raw.set_linger_reset();
    raw.close();
    recorder& s = *w.servers[0];
    while (s.lost == 0)
      co_await changed(&w);
    EXPECT_EQ(error_code(s.error), ECONNRESET) << error_text(s.error);
    EXPECT_NE(error_text(s.error).find("127.0.0.1"), std::string::npos) << error_text(s.error);
    EXPECT_EQ(s.eofs, 0);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// A data_received that raises: reported to the loop's exception handler, that connection is aborted
// (connection_lost gets the exception), the server goes on serving the others.
TEST_P(Protocol, ThrowingDataReceivedIsReportedAndAbortsTheConnection) {
  run([]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    std::vector<corio::exception_context> reports;
    auto handler = [&reports](corio::event_loop&, const corio::exception_context& c) { reports.push_back(c); };
    loop.set_exception_handler(handler);
    world w;
    w.server_setup = [](recorder& r) {
      r.echo = true;
      r.throw_on = "boom";
    };
    auto factory = server_factory(&w);
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0);
    auto client_factory = [&w] { return std::make_shared<recorder>(&w); };
    auto [good_t, good] = co_await corio::create_connection(client_factory, srv.addresses().front());
    auto [bad_t, bad] = co_await corio::create_connection(client_factory, srv.addresses().front());
    good_t->write("hello");
    while (good->got != "hello")
      co_await changed(&w);
    bad_t->write("boom");
    while (bad->lost == 0)
      co_await changed(&w);
    EXPECT_TRUE(bad->got.empty());
    EXPECT_EQ(w.servers.size(), 2u);
    if (w.servers.size() != 2)
      co_return;
    recorder& failed = *w.servers[1];
    while (failed.lost == 0)
      co_await changed(&w);
    EXPECT_EQ(error_text(failed.error), "boom: boom");
    EXPECT_EQ(reports.size(), 1u);
    if (reports.empty())
      co_return;
    EXPECT_NE(reports[0].message.find("data_received"), std::string::npos) << reports[0].message;
    EXPECT_EQ(reports[0].message.rfind("corio:", 0), std::string::npos) << reports[0].message; // the default adds it
    EXPECT_EQ(error_text(reports[0].exception), "boom: boom");
    // The others go on: the first connection, and a new one.
    good_t->write(" again");
    while (good->got != "hello again")
      co_await changed(&w);
    auto [late_t, late] = co_await corio::create_connection(client_factory, srv.addresses().front());
    late_t->write("late");
    while (late->got != "late")
      co_await changed(&w);
    EXPECT_EQ(w.servers[0]->lost, 0);
    good_t->close();
    late_t->close();
    while (good->lost == 0 || late->lost == 0 || w.servers[0]->lost == 0 || w.servers[2]->lost == 0)
      co_await changed(&w);
    EXPECT_EQ(reports.size(), 1u);
    loop.set_exception_handler({});
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// A refused connect raises std::system_error (ECONNREFUSED) and makes no protocol; no fd is left.
TEST_P(Protocol, ConnectRefusedMakesNoProtocol) {
  run([]() -> task<> {
    // A port bound but not listening: connecting to it is refused, and nobody else can take it meanwhile.
    corio::socket holder = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
    holder.bind(address::loopback_ipv4(0));
    const std::uint16_t port = holder.local_address().port();
    const int fds = corio::testing::open_fd_count();
    int made = 0;
    world w;
    auto factory = [&made, &w] {
      ++made;
      return std::make_shared<recorder>(&w);
    };
    int code = 0;
    try {
      auto r = co_await corio::create_connection(factory, "127.0.0.1", port);
      ADD_FAILURE() << "connected to a port nobody listens on";
    } catch (const std::system_error& e) {
      code = e.code().value();
    }
    EXPECT_EQ(code, ECONNREFUSED);
    EXPECT_EQ(made, 0);
    EXPECT_EQ(corio::testing::open_fd_count(), fds);
    expect_only_main_task();
  });
}

// close_clients(): every live connection is closed and its protocol gets connection_lost(nullptr) once;
// the clients read end of file and end too.
TEST_P(Protocol, CloseClientsCallsConnectionLostForEachConnection) {
  run([]() -> task<> {
    world w;
    w.server_setup = [](recorder& r) { r.echo = true; };
    auto factory = server_factory(&w);
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0);
    auto client_factory = [&w] { return std::make_shared<recorder>(&w); };
    std::vector<corio::protocol_connection<recorder>> clients;
    for (int i = 0; i < 3; ++i) {
      auto pc = co_await corio::create_connection(client_factory, srv.addresses().front());
      pc.transport->write("ping");
      clients.push_back(std::move(pc));
    }
    for (auto& pc : clients)
      while (pc.protocol->got != "ping")
        co_await changed(&w);
    EXPECT_EQ(srv.active_connections(), 3u);
    srv.close_clients();
    for (auto& pc : clients)
      while (pc.protocol->lost == 0)
        co_await changed(&w);
    for (auto& s : w.servers) {
      EXPECT_EQ(s->lost, 1);
      EXPECT_EQ(s->error, nullptr);
    }
    for (auto& pc : clients)
      if (pc.protocol->error != nullptr) {
        EXPECT_EQ(error_code(pc.protocol->error), ECONNRESET) << error_text(pc.protocol->error);
      }
    for (int i = 0; i < 1000 && srv.active_connections() != 0; ++i)
      co_await corio::sleep(0ms);
    EXPECT_EQ(srv.active_connections(), 0u);
    co_await spin(5);
    for (auto& s : w.servers)
      EXPECT_EQ(s->lost, 1);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// close_clients() closes a protocol's transport as asyncio's Server.close_clients does: what the server
// queued (16 MiB a client is not reading yet) still goes out, then the connection closes and the server's
// protocol gets connection_lost(nullptr). abort_clients() afterwards has nothing left to reset.
TEST_P(Protocol, CloseClientsFlushesWhatIsQueued) {
  run([]() -> task<> {
    world w;
    auto factory = server_factory(&w);
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0);
    auto client_factory = [&w] {
      auto r = std::make_shared<recorder>(&w);
      r->pause_in_made = true; // reads nothing until resumed: the server's writes queue
      return r;
    };
    auto pc = co_await corio::create_connection(client_factory, srv.addresses().front());
    while (w.servers.empty() || w.servers[0]->t == nullptr)
      co_await changed(&w);
    const std::string sent = pattern(16 * mib, 21); // more than loopback's socket buffers hold
    w.servers[0]->t->write(sent);
    EXPECT_GT(w.servers[0]->t->get_write_buffer_size(), 0u) << "nothing queued: the test shows nothing";
    srv.close_clients();
    EXPECT_TRUE(w.servers[0]->t->is_closing());
    EXPECT_EQ(w.servers[0]->lost, 0) << "closed before what was queued went out";
    pc.transport->resume_reading();
    while (pc.protocol->lost == 0)
      co_await changed(&w);
    EXPECT_EQ(pc.protocol->got.size(), sent.size());
    EXPECT_TRUE(pc.protocol->got == sent) << "the bytes differ";
    EXPECT_EQ(pc.protocol->eofs, 1);
    EXPECT_EQ(pc.protocol->error, nullptr) << error_text(pc.protocol->error);
    while (w.servers[0]->lost == 0)
      co_await changed(&w);
    EXPECT_EQ(w.servers[0]->error, nullptr) << error_text(w.servers[0]->error);
    for (int i = 0; i < 1000 && srv.active_connections() != 0; ++i)
      co_await corio::sleep(0ms);
    EXPECT_EQ(srv.active_connections(), 0u);
    srv.abort_clients();
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// abort_clients() on a protocol server drops what is queued: the client sees a reset (or the end),
// never the whole 16 MiB, and the server's protocol gets connection_lost(nullptr).
TEST_P(Protocol, AbortClientsDropsWhatIsQueued) {
  run([]() -> task<> {
    world w;
    auto factory = server_factory(&w);
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0);
    auto client_factory = [&w] {
      auto r = std::make_shared<recorder>(&w);
      r->pause_in_made = true;
      return r;
    };
    auto pc = co_await corio::create_connection(client_factory, srv.addresses().front());
    while (w.servers.empty() || w.servers[0]->t == nullptr)
      co_await changed(&w);
    const std::string sent = pattern(16 * mib, 22);
    w.servers[0]->t->write(sent);
    srv.abort_clients();
    pc.transport->resume_reading();
    while (pc.protocol->lost == 0 || w.servers[0]->lost == 0)
      co_await changed(&w);
    EXPECT_LT(pc.protocol->got.size(), sent.size());
    EXPECT_EQ(w.servers[0]->error, nullptr) << error_text(w.servers[0]->error);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// create_server on a listening socket made elsewhere (loop.create_server(factory, sock=...)).
TEST_P(Protocol, CreateServerOnASocketMadeElsewhere) {
  run([]() -> task<> {
    world w;
    w.server_setup = [](recorder& r) { r.echo = true; };
    auto factory = server_factory(&w);
    corio::socket listening = corio::listen_on(corio::address::loopback_ipv4());
    corio::server srv = corio::create_server(factory, std::move(listening));
    auto client_factory = [&w] { return std::make_shared<recorder>(&w); };
    auto pc = co_await corio::create_connection(client_factory, srv.addresses().front());
    pc.transport->write("over a given socket");
    while (pc.protocol->got.size() < 19)
      co_await changed(&w);
    EXPECT_EQ(pc.protocol->got, "over a given socket");
    pc.transport->close();
    while (pc.protocol->lost == 0 || w.servers.empty() || w.servers[0]->lost == 0)
      co_await changed(&w);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// Unix-domain sockets: the same echo.
TEST_P(Protocol, UnixSocketEcho) {
  run([]() -> task<> {
    world w;
    w.server_setup = [](recorder& r) { r.echo = true; };
    auto factory = server_factory(&w);
    const std::string path = corio::testing::unique_socket_path("proto");
    corio::server srv = co_await corio::create_unix_server(factory, path);
    auto client_factory = [&w] { return std::make_shared<recorder>(&w); };
    auto [t, c] = co_await corio::create_unix_connection(client_factory, path);
    const std::string sent = pattern(200 * 1024, 11);
    t->write(sent);
    while (c->got.size() < sent.size())
      co_await changed(&w);
    EXPECT_TRUE(c->got == sent);
    t->close();
    while (c->lost == 0 || w.servers.at(0)->lost == 0)
      co_await changed(&w);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// Over TLS (server_options::tls, stream_options::tls): the same transports, encrypted; half a megabyte
// each way and a clean close. No handshake timeout, so the mock clock cannot end it early.
TEST_P(Protocol, TlsEcho) {
  run([]() -> task<> {
    static const corio::testing::tls_certs certs; // removed at exit
    world w;
    w.server_setup = [](recorder& r) { r.echo = true; };
    auto factory = server_factory(&w);
    corio::server_options so;
    so.tls = corio::tls_context::server(certs.server_cert_file, certs.server_key_file);
    so.tls_handshake_timeout = corio::duration::zero();
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0, so);
    corio::stream_options co;
    co.tls = corio::tls_context::client();
    co.tls.load_verify_locations(certs.ca_file);
    co.server_hostname = "localhost";
    co.tls_handshake_timeout = corio::duration::zero();
    auto client_factory = [&w] { return std::make_shared<recorder>(&w); };
    auto [t, c] = co_await corio::create_connection(client_factory, srv.addresses().front(), co);
    const std::string sent = pattern(512 * 1024, 17);
    t->write(sent);
    while (c->got.size() < sent.size() && c->lost == 0)
      co_await changed(&w);
    EXPECT_TRUE(c->got == sent) << c->got.size() << " of " << sent.size() << " bytes";
    t->close();
    while (c->lost == 0 || w.servers.at(0)->lost == 0)
      co_await changed(&w);
    EXPECT_EQ(c->error, nullptr) << error_text(c->error);
    EXPECT_EQ(w.servers[0]->error, nullptr) << error_text(w.servers[0]->error);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// set_write_buffer_limits follows asyncio's defaults; stream_options' watermarks are the initial ones;
// lowering the high-water mark under what is queued pauses the protocol.
TEST_P(Protocol, WriteBufferLimits) {
  run([]() -> task<> {
    world w;
    w.server_setup = [](recorder& r) { r.pause_in_made = true; };
    auto factory = server_factory(&w);
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0);
    auto client_factory = [&w] {
      auto r = std::make_shared<recorder>(&w);
      r->small_sndbuf = 4096;
      return r;
    };
    corio::stream_options o;
    o.high_water = 8 * mib;
    o.low_water = 1000;
    auto [t, c] = co_await corio::create_connection(client_factory, srv.addresses().front(), o);
    EXPECT_EQ(t->get_write_buffer_limits().high, 8 * mib);
    EXPECT_EQ(t->get_write_buffer_limits().low, 1000u);
    t->set_write_buffer_limits(1000);
    EXPECT_EQ(t->get_write_buffer_limits().high, 1000u);
    EXPECT_EQ(t->get_write_buffer_limits().low, 250u);
    t->set_write_buffer_limits(std::nullopt, 100);
    EXPECT_EQ(t->get_write_buffer_limits().high, 400u);
    EXPECT_EQ(t->get_write_buffer_limits().low, 100u);
    EXPECT_THROW(t->set_write_buffer_limits(10, 20), std::invalid_argument);
    EXPECT_EQ(t->get_write_buffer_limits().high, 400u);
    t->set_write_buffer_limits(8 * mib, 1000);
    const std::string sent = pattern(4 * mib, 13);
    t->write(sent);
    EXPECT_GT(t->get_write_buffer_size(), 64u * 1024);
    EXPECT_EQ(c->pauses, 0) << "under the high-water mark";
    t->set_write_buffer_limits(64 * 1024); // now above it
    EXPECT_EQ(c->pauses, 1);
    widen_sndbuf(t->fd());
    while (w.servers.empty())
      co_await changed(&w);
    recorder& s = *w.servers[0];
    s.t->resume_reading();
    while (c->resumes == 0)
      co_await changed(&w);
    while (s.got.size() < sent.size())
      co_await changed(&w);
    EXPECT_TRUE(s.got == sent);
    t->set_write_buffer_limits(); // back to 64 KiB / 16 KiB
    EXPECT_EQ(t->get_write_buffer_limits().high, 64u * 1024);
    EXPECT_EQ(t->get_write_buffer_limits().low, 16u * 1024);
    t->close();
    while (c->lost == 0 || s.lost == 0)
      co_await changed(&w);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

INSTANTIATE_TEST_SUITE_P(Orders, Protocol, corio::testing::ready_orders());

// The loop ends with connections open: every protocol, client and server side, gets connection_lost
// (nullptr) exactly once, and no fd, frame or memory is left.
TEST(ProtocolLoopEnd, EveryLiveConnectionIsLostOnce) {
  corio::testing::leak_check leaks;
  world w;
  w.server_setup = [](recorder& r) { r.echo = true; };
  std::optional<corio::server> keep; // outlives the loop: only the loop's end closes the connections
  std::vector<std::shared_ptr<recorder>> clients;
  corio::testing::run_mock([&](auto*) -> task<> {
    auto factory = server_factory(&w);
    keep = co_await corio::create_server(factory, "127.0.0.1", 0);
    auto client_factory = [&w] { return std::make_shared<recorder>(&w); };
    for (int i = 0; i < 2; ++i) {
      auto [t, c] = co_await corio::create_connection(client_factory, keep->addresses().front());
      t->write("x");
      clients.push_back(c);
    }
    for (auto& c : clients)
      while (c->got != "x")
        co_await changed(&w);
  });
  ASSERT_EQ(w.servers.size(), 2u);
  for (auto& p : clients) {
    EXPECT_EQ(p->lost, 1);
    EXPECT_EQ(p->error, nullptr);
  }
  for (auto& p : w.servers) {
    EXPECT_EQ(p->lost, 1);
    EXPECT_EQ(p->error, nullptr);
  }
  keep.reset();
}

// Exceptions from connection_made (fatal: the connection is aborted, connection_lost gets it) and from
// a server's factory (reported; that connection is closed, the server goes on).
TEST_P(Protocol, ConnectionMadeAndFactoryErrors) {
  run([]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    std::vector<std::string> reports;
    auto handler = [&reports](corio::event_loop&, const corio::exception_context& c) {
      reports.push_back(c.message + " / " + error_text(c.exception));
    };
    loop.set_exception_handler(handler);
    world w;
    int factory_calls = 0;
    auto factory = [&w, &factory_calls]() -> std::shared_ptr<recorder> {
      if (++factory_calls == 1)
        throw std::runtime_error("no protocol today");
      auto p = std::make_shared<recorder>(&w);
      p->echo = true;
      w.servers.push_back(p);
      return p;
    };
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0);
    struct refusing : recorder {
      using recorder::recorder;
      void connection_made(corio::transport& tr) override {
        recorder::connection_made(tr);
        throw std::runtime_error("not made");
      }
    };
    auto refusing_factory = [&w] { return std::make_shared<refusing>(&w); };
    auto [rt, r] = co_await corio::create_connection(refusing_factory, srv.addresses().front());
    EXPECT_TRUE(rt->is_closing());
    EXPECT_NO_THROW(rt->write("x")); // failed: dropped (asyncio's rule), connection_lost has the error
    while (r->lost == 0)
      co_await changed(&w);
    EXPECT_EQ(error_text(r->error), "not made");
    auto client_factory = [&w] { return std::make_shared<recorder>(&w); };
    auto [t, c] = co_await corio::create_connection(client_factory, srv.addresses().front());
    t->write("still serving");
    while (c->got != "still serving")
      co_await changed(&w);
    t->close();
    while (c->lost == 0 || w.servers.at(0)->lost == 0)
      co_await changed(&w);
    EXPECT_EQ(reports.size(), 2u);
    if (reports.size() != 2)
      co_return;
    std::sort(reports.begin(), reports.end());
    EXPECT_NE(reports[0].find("connection_made() raised"), std::string::npos) << reports[0];
    EXPECT_NE(reports[0].find("not made"), std::string::npos) << reports[0];
    EXPECT_NE(reports[1].find("factory() raised"), std::string::npos) << reports[1];
    EXPECT_NE(reports[1].find("no protocol today"), std::string::npos) << reports[1];
    loop.set_exception_handler({});
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

/// A buffered protocol that reads into its own storage, `chunk` bytes at a time (0: an empty buffer,
/// which is an error), and echoes what lands there.
struct filler : corio::buffered_protocol {
  filler(world* wd, std::size_t c) : w(wd), chunk(c) {}
  world* w;
  std::size_t chunk;
  corio::transport* t = nullptr;
  std::string storage;
  std::size_t filled = 0, offered = 0;
  int buffers = 0, updates = 0, eofs = 0, lost = 0;
  std::exception_ptr error;

  void connection_made(corio::transport& tr) override { t = &tr; }
  std::span<char> get_buffer(std::size_t sizehint) override {
    EXPECT_EQ(sizehint, 64u * 1024);
    EXPECT_EQ(offered, 0u) << "get_buffer twice without buffer_updated";
    ++buffers;
    storage.resize(filled + chunk);
    offered = chunk;
    return {storage.data() + filled, chunk};
  }
  void buffer_updated(std::size_t n) override {
    EXPECT_GT(n, 0u);
    EXPECT_LE(n, offered);
    ++updates;
    t->write(std::string_view(storage.data() + filled, n));
    filled += n;
    offered = 0;
    w->poke();
  }
  void data_received(std::string_view) override { ADD_FAILURE() << "data_received on a buffered protocol"; }
  bool eof_received() override {
    ++eofs;
    w->poke();
    return false;
  }
  void connection_lost(std::exception_ptr e) override {
    ++lost;
    error = e;
    w->poke();
  }
};

// A buffered protocol gets every byte in its own buffer, 7 bytes per read here, in order, and never
// data_received; an empty buffer is a fatal error, reported, and only that connection ends.
TEST_P(Protocol, BufferedProtocolReadsIntoItsOwnBuffer) {
  run([]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    std::vector<std::string> reports;
    auto handler = [&reports](corio::event_loop&, const corio::exception_context& c) {
      reports.push_back(c.message + " / " + error_text(c.exception));
    };
    loop.set_exception_handler(handler);
    world w;
    std::vector<std::shared_ptr<filler>> fillers;
    auto factory = [&w, &fillers] {
      auto f = std::make_shared<filler>(&w, fillers.empty() ? 7 : 0); // the second one offers nothing
      fillers.push_back(f);
      return f;
    };
    corio::server srv = co_await corio::create_server(factory, "127.0.0.1", 0);
    auto client_factory = [&w] { return std::make_shared<recorder>(&w); };
    auto [t, c] = co_await corio::create_connection(client_factory, srv.addresses().front());
    const std::string sent = pattern(20000, 3);
    t->write(sent);
    while (c->got.size() < sent.size() && c->lost == 0)
      co_await changed(&w);
    EXPECT_TRUE(c->got == sent) << "the echo differs (" << c->got.size() << " of " << sent.size() << " bytes)";
    EXPECT_EQ(fillers.size(), 1u);
    if (fillers.size() != 1)
      co_return;
    filler& f = *fillers[0];
    EXPECT_EQ(f.filled, sent.size());
    EXPECT_TRUE(f.storage.substr(0, f.filled) == sent);
    EXPECT_GE(f.updates, static_cast<int>(sent.size() / 7));
    EXPECT_EQ(f.buffers, f.updates + 1); // one buffer offered for the read in progress

    auto [bad_t, bad] = co_await corio::create_connection(client_factory, srv.addresses().front());
    bad_t->write("x");
    while (fillers.size() < 2 || fillers[1]->lost == 0)
      co_await changed(&w);
    EXPECT_NE(error_text(fillers[1]->error).find("empty buffer"), std::string::npos) << error_text(fillers[1]->error);
    EXPECT_EQ(fillers[1]->updates, 0);
    while (bad->lost == 0)
      co_await changed(&w);

    t->close();
    while (c->lost == 0 || f.lost == 0)
      co_await changed(&w);
    EXPECT_EQ(f.eofs, 1);
    EXPECT_EQ(f.error, nullptr);
    EXPECT_EQ(c->error, nullptr);
    EXPECT_EQ(reports.size(), 1u);
    if (!reports.empty()) {
      EXPECT_NE(reports[0].find("get_buffer() raised"), std::string::npos) << reports[0];
    }
    loop.set_exception_handler({});
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

} // namespace
