// Guide, step 8: networking (an echo server with an idle timeout and its client), threads and signals.
// Runs on a mock clock over loopback, so the 5 s idle timeout takes no real time and prints exactly.
#include <corio/corio.hpp>
#include <corio/testing/mock_clock.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;

// Outside the anonymous namespace: clang 14 crashes ("Cannot select: intrinsic %llvm.coro.size") on a
// coroutine with internal linkage that is never called, as serve() is here.
// [snippet: echo]
// Each connection gets its bytes back, and is closed after 5 s without any.
corio::task<> echo(corio::stream_reader reader, corio::stream_writer writer) {
  for (;;) {
    std::string data;
    try {
      auto idle = corio::timeout(5s);
      data = co_await reader.read(64 * 1024); // what has arrived, up to 64 KiB
    } catch (const corio::timeout_error&) {
      co_return; // idle too long: the server closes the connection
    }
    if (data.empty())
      co_return; // the client closed its side
    writer.write(std::move(data));
    co_await writer.drain(); // wait while the client is slow to take its echo
  }
}

corio::task<> serve() {
  corio::server server = co_await corio::start_server(echo, "127.0.0.1", 8888);
  co_await server.serve_forever();
}
// [end snippet]

namespace {

long long seconds_since(corio::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(corio::event_loop::current()->time() - t).count();
}

// [snippet: client]
corio::task<> client(std::uint16_t port) {
  auto [reader, writer] = co_await corio::open_connection("127.0.0.1", port);
  writer.write("hello\n");
  std::string line = co_await reader.readline();
  std::printf("client got: %s", line.c_str());

  const corio::time_point quiet_since = corio::event_loop::current()->time();
  std::string rest = co_await reader.read(); // everything until end of stream
  std::printf("server closed the connection after %lld s of silence (%zu more bytes)\n", seconds_since(quiet_since),
              rest.size());
  writer.close();
  co_await writer.wait_closed();
}
// [end snippet]

corio::task<> echo_demo() {
  // [snippet: echo-use]
  corio::server server = co_await corio::start_server(echo, "127.0.0.1", 0); // port 0: any free port
  co_await client(server.port());
  server.close();                // stop accepting
  co_await server.wait_closed(); // and wait for the handlers to finish
  // [end snippet]
}

// [snippet: to-thread]
long long blocking_sum(long long n) { // a plain blocking function: it would stall the loop
  long long s = 0;
  for (long long i = 1; i <= n; ++i)
    s += i;
  return s;
}

corio::task<> thread_demo() {
  long long s = co_await corio::to_thread(blocking_sum, 1000000); // runs on the loop's thread pool
  std::printf("to_thread: %lld\n", s);
}
// [end snippet]

// [snippet: signals]
corio::task<> signal_demo() {
  corio::event_loop& loop = *corio::event_loop::current();
  corio::event got_signal;
  corio::add_signal_handler(loop, SIGUSR1, [&got_signal] { got_signal.set(); });
  std::raise(SIGUSR1); // as if `kill -USR1 <pid>`: the handler runs on the loop, as a callback
  co_await got_signal.wait();
  std::printf("SIGUSR1 handled on the loop\n");
  corio::remove_signal_handler(loop, SIGUSR1);
}
// [end snippet]

corio::task<> main_task() {
  co_await echo_demo();
  co_await thread_demo();
  co_await signal_demo();
}

} // namespace

int main() {
  corio::testing::mock_clock clock;
  corio::run(main_task(), {.clock = &clock});
}
