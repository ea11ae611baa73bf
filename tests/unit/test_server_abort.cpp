// server::abort_clients (asyncio 3.13's Server.abort_clients): every current connection is reset at once
// (the peer reads ECONNRESET, queued data is dropped) and its handler cancelled; the server goes on
// serving. Loopback only; every test checks no task, frame or fd is left.
#include <corio/net.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/event.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstddef>
#include <string>
#include <system_error>
#include <vector>

#include "leak_check.hpp"
#include "loop_fixture.hpp"
#include "net_helpers.hpp"

using namespace std::chrono_literals;
using corio::address;
using corio::stream_reader;
using corio::stream_writer;
using corio::task;
using corio::testing::expect_only_main_task;

namespace {

constexpr std::size_t flood_size = 4 << 20; // far more than the small socket buffers hold

/// What the handlers did, shared with the test.
struct record {
  int started = 0;
  int cancelled = 0;
  int finished = 0;
  int ready = 0;                   // handlers that reached the point the test waits for
  std::vector<std::size_t> queued; // a flooding handler's unsent bytes after its write
  corio::event changed;            // set whenever `ready` grows
  corio::event never;              // never set
  corio::server* abort_on_start{}; // the first handler to start calls abort_clients() on it
  corio::server* close_on_start{}; // the first handler to start calls close_clients() on it
};

void mark_ready(record* rec) {
  ++rec->ready;
  rec->changed.set();
}

/// The first line says what to do: "flood" writes flood_size bytes through a small send buffer and waits
/// in drain() (the client does not read); "flood-return" writes them and returns, leaving the server to
/// flush them; "close" closes its connection and then waits; "idle" waits; anything else is echoed.
task<> serve(record* rec, stream_reader r, stream_writer w) {
  ++rec->started;
  try {
    if (corio::server* s = rec->abort_on_start) {
      rec->abort_on_start = nullptr;
      s->abort_clients(); // ours too: cancelled at the next await
      mark_ready(rec);
      co_await rec->never.wait();
    }
    if (corio::server* s = rec->close_on_start) {
      rec->close_on_start = nullptr;
      s->close_clients(); // cancels ours too, and the handlers not started yet
      mark_ready(rec);
      co_await rec->never.wait();
    }
    std::string cmd = co_await r.readline();
    if (cmd == "flood\n" || cmd == "flood-return\n") {
      int small = 4096;
      EXPECT_EQ(::setsockopt(w.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
      w.write(std::string(flood_size, 'x'));
      rec->queued.push_back(w.buffer_size());
      mark_ready(rec);
      if (cmd == "flood\n")
        co_await w.drain(); // never returns: nothing is read
    } else if (cmd == "close\n") {
      w.close();
      co_await w.wait_closed();
      mark_ready(rec);
      co_await rec->never.wait();
    } else if (cmd == "idle\n") {
      mark_ready(rec);
      co_await rec->never.wait();
    } else {
      while (!cmd.empty()) {
        w.write(cmd);
        co_await w.drain();
        cmd = co_await r.readline();
      }
    }
    ++rec->finished;
  } catch (const corio::cancelled_error&) {
    ++rec->cancelled;
    throw;
  }
}

corio::connection_handler handler_for(record* rec) {
  return [rec](stream_reader r, stream_writer w) { return serve(rec, std::move(r), std::move(w)); };
}

task<> wait_ready(record* rec, int n) {
  while (rec->ready < n) {
    rec->changed.clear();
    co_await rec->changed.wait();
  }
}

/// A client whose receive buffer is small (set before connecting, so the window stays small).
task<corio::connection> small_client(address to) {
  corio::socket s = corio::socket::open(to.family(), corio::socket_type::stream);
  s.set_receive_buffer(4096);
  co_await corio::sock_connect(s, to);
  co_return corio::make_streams(std::move(s), to);
}

/// Reads until the stream fails or ends: the error's code (0 at end of stream: a FIN, not a reset).
task<int> read_until_error(stream_reader r, std::size_t* got) {
  for (std::size_t reads = 0; reads < flood_size; ++reads) { // each read takes at least one byte
    std::string s;
    try {
      s = co_await r.read(64 * 1024);
    } catch (const std::system_error& e) {
      co_return e.code().value();
    }
    if (s.empty())
      co_return 0;
    *got += s.size();
  }
  co_return -1;
}

/// Yields until the server has `n` connections (accepted: handler running or about to run); bounded.
task<bool> wait_connections(const corio::server& srv, std::size_t n) {
  for (int i = 0; i < 10000 && srv.active_connections() != n; ++i)
    co_await corio::sleep(0ms);
  co_return srv.active_connections() == n;
}

task<> expect_echo(address to) {
  auto [r, w] = co_await corio::open_connection(to);
  w.write("after\n");
  EXPECT_EQ(co_await r.readline(), "after\n");
  w.close();
  co_await w.wait_closed();
}

class AbortClients : public corio::testing::ordered_and_shuffled {};

TEST_P(AbortClients, ResetsEveryConnectionDroppingQueuedData) {
  run([]() -> task<> {
    record rec;
    corio::server srv = co_await corio::start_server(handler_for(&rec), "127.0.0.1", 0);
    address to = srv.addresses().front();
    // Two handlers wait in drain() with megabytes queued, one returned with megabytes still queued (the
    // server flushes them), one closed its connection itself, one waits for a line; one connection
    // finished before the abort (nothing of it may be touched).
    std::vector<corio::connection> clients;
    const char* const cmds[] = {"flood\n", "flood\n", "flood-return\n", "close\n"};
    for (const char* cmd : cmds) {
      corio::connection c = co_await small_client(to);
      c.writer.write(cmd);
      clients.push_back(std::move(c));
    }
    corio::connection idle = co_await small_client(to);
    co_await expect_echo(to);
    co_await wait_ready(&rec, 4);
    EXPECT_TRUE(co_await wait_connections(srv, 5));
    EXPECT_EQ(rec.queued.size(), 3u);
    for (std::size_t q : rec.queued)
      EXPECT_GT(q, flood_size / 2) << "the data was not queued in the server";

    srv.abort_clients();

    for (int i = 0; i < 3; ++i) { // the flooders: part of the data, then a reset
      std::size_t got = 0;
      EXPECT_EQ(co_await read_until_error(clients[i].reader, &got), ECONNRESET) << "client " << i;
      EXPECT_LT(got, flood_size) << "client " << i << ": the queued data was sent, not dropped";
    }
    std::size_t got = 0;
    EXPECT_EQ(co_await read_until_error(clients[3].reader, &got), 0); // closed by its handler: a FIN
    EXPECT_EQ(co_await read_until_error(idle.reader, &got), ECONNRESET);
    EXPECT_EQ(got, 0u);
    EXPECT_TRUE(co_await wait_connections(srv, 0));
    EXPECT_EQ(rec.cancelled, 4); // flood, flood, close, idle: the returned one had finished
    EXPECT_EQ(rec.finished, 2);  // flood-return and the echo before
    EXPECT_TRUE(srv.is_serving());

    co_await expect_echo(to); // accepted afterwards: served as usual
    EXPECT_TRUE(co_await wait_connections(srv, 0));
    EXPECT_EQ(rec.finished, 3);
    srv.abort_clients(); // nothing left to abort
    srv.close();
    co_await srv.wait_closed();
    for (corio::connection& c : clients)
      c.writer.abort();
    idle.writer.abort();
    expect_only_main_task();
  });
}

// Connections accepted but whose task has not started yet are reset too, and their handler never runs:
// several connections wait in the backlog, the accept loop takes them in one go, and the first handler
// to run calls abort_clients() while the others are only scheduled.
TEST_P(AbortClients, ResetsConnectionsWhoseHandlerHasNotStarted) {
  run([]() -> task<> {
    record rec;
    corio::server srv = co_await corio::start_server(handler_for(&rec), "127.0.0.1", 0);
    rec.abort_on_start = &srv;
    address to = srv.addresses().front();
    constexpr int n = 4;
    std::vector<corio::socket> clients;
    for (int i = 0; i < n; ++i) { // blocking connects: all queued in the backlog before the loop runs
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      EXPECT_EQ(::connect(fd, static_cast<const sockaddr*>(to.data()), static_cast<socklen_t>(to.size())), 0);
      clients.emplace_back(fd); // made non-blocking
    }
    co_await wait_ready(&rec, 1);
    for (int i = 0; i < n; ++i) {
      char b = 0;
      int code = 0;
      try {
        std::size_t got = co_await corio::sock_recv(clients[i], std::span<char>(&b, 1));
        EXPECT_EQ(got, 1u) << "client " << i << ": end of stream (a FIN) instead of a reset";
      } catch (const std::system_error& e) {
        code = e.code().value();
      }
      EXPECT_EQ(code, ECONNRESET) << "client " << i;
    }
    EXPECT_TRUE(co_await wait_connections(srv, 0));
    EXPECT_EQ(rec.started, 1) << "a handler ran for a connection aborted before its task started";
    EXPECT_EQ(rec.cancelled, 1);
    co_await expect_echo(to);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}
// close_clients() cancels the handlers; one whose task has not started yet never runs (asyncio never
// starts a task cancelled before its first step), and its connection is closed (the client reads end of
// stream). As above, the first handler to run makes the call while the others are only scheduled.
TEST_P(AbortClients, CloseClientsBeforeTheHandlersStartedRunsNone) {
  run([]() -> task<> {
    record rec;
    corio::server srv = co_await corio::start_server(handler_for(&rec), "127.0.0.1", 0);
    rec.close_on_start = &srv;
    address to = srv.addresses().front();
    constexpr int n = 4;
    std::vector<corio::socket> clients;
    for (int i = 0; i < n; ++i) { // blocking connects: all queued in the backlog before the loop runs
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      EXPECT_EQ(::connect(fd, static_cast<const sockaddr*>(to.data()), static_cast<socklen_t>(to.size())), 0);
      clients.emplace_back(fd); // made non-blocking
    }
    co_await wait_ready(&rec, 1);
    for (int i = 0; i < n; ++i) {
      char b = 0;
      std::size_t got = 1;
      try {
        got = co_await corio::sock_recv(clients[i], std::span<char>(&b, 1));
      } catch (const std::system_error& e) {
        ADD_FAILURE() << "client " << i << ": " << e.what();
      }
      EXPECT_EQ(got, 0u) << "client " << i;
    }
    EXPECT_TRUE(co_await wait_connections(srv, 0));
    EXPECT_EQ(rec.started, 1) << "a handler ran though close_clients() came before its task started";
    EXPECT_EQ(rec.cancelled, 1);
    co_await expect_echo(to);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

INSTANTIATE_TEST_SUITE_P(Orders, AbortClients, corio::testing::ready_orders());

TEST(AbortClientsFds, NoFdIsLeftAfterAbortAndDestruction) {
  corio::testing::leak_check leaks; // fds and frames: the same counts at the end
  corio::testing::run_mock([](auto*) -> task<> {
    record rec;
    {
      corio::server srv = co_await corio::start_server(handler_for(&rec), "127.0.0.1", 0);
      address to = srv.addresses().front();
      std::vector<corio::connection> clients;
      for (int i = 0; i < 8; ++i) {
        corio::connection c = co_await small_client(to);
        c.writer.write(i % 2 == 0 ? "flood\n" : "idle\n");
        clients.push_back(std::move(c));
      }
      co_await wait_ready(&rec, 8);
      int during = corio::testing::open_fd_count();
      srv.abort_clients();
      for (corio::connection& c : clients) {
        std::size_t got = 0;
        EXPECT_EQ(co_await read_until_error(c.reader, &got), ECONNRESET);
      }
      EXPECT_TRUE(co_await wait_connections(srv, 0));
      // The server's 8 connection sockets are closed (the clients' 8 remain until they go).
      EXPECT_EQ(corio::testing::open_fd_count(), during - 8);
      EXPECT_EQ(rec.cancelled, 8);
      // The server is dropped while still serving: its destructor closes it.
    }
    corio::event_loop& loop = *corio::event_loop::current();
    for (int i = 0; i < 1000 && loop.task_count() > 1; ++i)
      co_await corio::sleep(0ms);
    expect_only_main_task();
  });
}

} // namespace
