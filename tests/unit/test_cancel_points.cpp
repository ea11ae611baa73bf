// Cancellation injected at every await point of a connection handler: for k = 0, 1, 2, ... the handler
// is cancelled after k turns of the loop, until it finishes first. Whatever point the cancellation hits
// (a read, a drain, a TLS handshake step, wait_closed), nothing may leak: no fd, no coroutine frame, no
// task, timer or fd waiter, and the peer always finishes (it sees the end of the stream or an error).
#include <corio/net/connection.hpp>
#include <corio/net/socket.hpp>
#include <corio/net/stream_errors.hpp>
#include <corio/net/tls.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/testing/mock_clock.hpp>
#include <corio/timeout.hpp>

#include <sys/socket.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "leak_check.hpp"
#include "tls_certs.hpp"

using namespace std::chrono_literals;
using corio::task;

namespace {

const corio::testing::tls_certs& certs() {
  static const corio::testing::tls_certs c;
  return c;
}

constexpr int lines = 3;

const corio::tls_context& server_ctx() {
  static const corio::tls_context c = corio::tls_context::server(certs().server_cert_file, certs().server_key_file);
  return c;
}
const corio::tls_context& client_ctx() {
  static const corio::tls_context c = [] {
    auto ctx = corio::tls_context::client();
    ctx.load_verify_locations(certs().ca_file);
    return ctx;
  }();
  return c;
}

/// The handler under test: (optionally) a TLS handshake, then echo `lines` lines, then a graceful close.
task<> handler(corio::connection c, bool tls) {
  if (tls)
    co_await c.writer.start_tls(server_ctx(), {}, 0s);
  for (int i = 0; i < lines; ++i) {
    std::string line = co_await c.reader.readline();
    c.writer.write(std::move(line));
    co_await c.writer.drain();
  }
  c.writer.close();
  co_await c.writer.wait_closed();
}

/// The peer: sends its lines and reads the echoes; any error or early end of stream just ends it.
task<int> peer(corio::connection c, bool tls) {
  int echoed = 0;
  try {
    if (tls)
      co_await c.writer.start_tls(client_ctx(), "localhost", 0s);
    for (int i = 0; i < lines; ++i) {
      const std::string line = "line " + std::to_string(i) + std::string(2000, 'x') + "\n";
      c.writer.write(line);
      co_await c.writer.drain();
      if (co_await c.reader.readexactly(line.size()) == line)
        ++echoed;
    }
    co_await c.reader.read(); // the handler's close
  } catch (const corio::cancelled_error&) {
    throw;
  } catch (const std::exception&) {
    // the handler was cancelled: reset, end of stream or a TLS error, all fine here
  }
  c.writer.abort();
  co_return echoed;
}

/// One run, cancelling the handler after `k` loop turns. Returns true if the handler finished first.
bool run_once(int k, bool tls) {
  corio::testing::mock_clock clock;
  bool finished_first = false;
  corio::run(
      [](int k, bool tls, bool& first) -> task<> {
        auto& loop = *corio::event_loop::current();
        const std::size_t base_waiters = loop.io_waiter_count();
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
        auto deadline = corio::timeout(1min); // a lost wake-up fails the test instead of hanging it
        auto h = corio::spawn(handler(corio::make_streams(corio::socket::adopt(fds[0])), tls));
        auto p = corio::spawn(peer(corio::make_streams(corio::socket::adopt(fds[1])), tls));
        for (int i = 0; i < k && !h.done(); ++i)
          co_await corio::sleep(0s);
        first = !h.cancel();
        try {
          co_await h;
        } catch (const corio::cancelled_error&) {
          EXPECT_FALSE(first);
        }
        const int echoed = co_await p;
        if (first) {
          EXPECT_EQ(echoed, lines);
        }
        EXPECT_EQ(loop.task_count(), 1u) << "only this task is left";
        EXPECT_EQ(loop.timer_count(), 1u) << "only this task's deadline is left";
        EXPECT_EQ(loop.io_waiter_count(), base_waiters) << "fd waiters left";
      }(k, tls, finished_first),
      {.clock = &clock});
  return finished_first;
}

void cancel_at_every_point(bool tls) {
  (void)server_ctx(); // made before the leak checks (certificate files, contexts)
  (void)client_ctx();
  int k = 0;
  for (; k < 5000; ++k) {
    corio::testing::leak_check leaks;
    if (run_once(k, tls))
      break;
  }
  EXPECT_LT(k, 5000) << "the handler never finished";
  EXPECT_GT(k, tls ? 5 : 2) << "too few await points: the test proves little";
  std::printf("cancelled at %d different points before the handler finished first\n", k);
}

TEST(CancelPoints, PlainHandlerLeaksNothingWhereverItIsCancelled) { cancel_at_every_point(false); }

TEST(CancelPoints, TlsHandlerLeaksNothingWhereverItIsCancelled) { cancel_at_every_point(true); }

} // namespace
