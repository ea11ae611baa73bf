// No heap allocation per request on the hot paths (issue 5): the HTTP server's plaintext route (keep-alive
// and pipelined) and the echo server, both the examples' real handlers (examples/http_server.cpp and
// examples/echo_server.cpp, included without their main()), driven over loopback by a client task on the
// same loop. Every global operator new (plain, array, nothrow, aligned, in every combination) is replaced
// by a counting one; only the loop thread's allocations are counted, and the client's own code allocates
// nothing after warm-up (fixed buffers, pooled frames), so what is counted is the server's and the loop's.
//
// CORIO_ALLOC_TRACE=1 prints a backtrace of each allocation inside a measured window (to find them). The
// frames of static functions print as offsets; addr2line names them:
//   CORIO_ALLOC_TRACE=1 build/release/tests/test_zero_alloc 2>&1 | grep -o '(+0x[0-9a-f]*)' | tr -d '()+' |
//     addr2line -f -C -i -e build/release/tests/test_zero_alloc
#include <corio/corio.hpp>
#include <corio/detail/frame_pool.hpp>
#include <corio/testing/mock_clock.hpp>

#include <gtest/gtest.h>

#include <execinfo.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "leak_check.hpp"

#if __has_include(<http_parser.h>)
#define CORIO_ZERO_ALLOC_HTTP 1
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function" // the server's accept loop and argument parsing
#define CORIO_HTTP_SERVER_NO_MAIN
#include "../../examples/http_server.cpp"
#pragma GCC diagnostic pop
#endif

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#define ECHO_SERVER_NO_MAIN
#include "../../examples/echo_server.cpp"
#pragma GCC diagnostic pop

// ---- the counting allocator -------------------------------------------------------------------------

namespace alloc_count {
// Per thread: the loop (and so the server) runs on the test's thread; another thread's allocations
// (there should be none) are not the server's. Zero-initialised thread_locals: no constructor runs in
// operator new.
thread_local std::size_t count = 0;
thread_local bool tracing = false; // inside a measured window with CORIO_ALLOC_TRACE set
thread_local bool in_trace = false;

void note(std::size_t n) noexcept {
  ++count;
  if (!tracing || in_trace)
    return;
  in_trace = true; // backtrace() may allocate the first time (it loads the unwinder)
  char head[64];
  const int len = std::snprintf(head, sizeof head, "--- allocation of %zu bytes:\n", n);
  (void)!::write(2, head, static_cast<std::size_t>(len));
  void* frames[32];
  const int depth = ::backtrace(frames, 32);
  ::backtrace_symbols_fd(frames, depth, 2);
  in_trace = false;
}

void* allocate(std::size_t n) noexcept {
  note(n);
  return std::malloc(n != 0 ? n : 1);
}
void* allocate(std::size_t n, std::align_val_t a) noexcept {
  note(n);
  const auto align = static_cast<std::size_t>(a);
  const std::size_t rounded = (n + align - 1) / align * align; // aligned_alloc wants a multiple
  return std::aligned_alloc(align, rounded != 0 ? rounded : align);
}
// Out of line: g++ would otherwise see free() applied to what "operator new" returned once both are
// inlined into a caller, and warn (-Wmismatched-new-delete) about what is, here, the matching pair.
[[gnu::noinline]] void release(void* p) noexcept { std::free(p); }
void* or_throw(void* p) {
  if (p == nullptr)
    throw std::bad_alloc();
  return p;
}
} // namespace alloc_count

void* operator new(std::size_t n) { return alloc_count::or_throw(alloc_count::allocate(n)); }
void* operator new[](std::size_t n) { return alloc_count::or_throw(alloc_count::allocate(n)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return alloc_count::allocate(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return alloc_count::allocate(n); }
void* operator new(std::size_t n, std::align_val_t a) { return alloc_count::or_throw(alloc_count::allocate(n, a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return alloc_count::or_throw(alloc_count::allocate(n, a)); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return alloc_count::allocate(n, a);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return alloc_count::allocate(n, a);
}
void operator delete(void* p) noexcept { alloc_count::release(p); }
void operator delete[](void* p) noexcept { alloc_count::release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { alloc_count::release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { alloc_count::release(p); }
void operator delete(void* p, std::align_val_t) noexcept { alloc_count::release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { alloc_count::release(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { alloc_count::release(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { alloc_count::release(p); }
#if defined(__cpp_sized_deallocation)
void operator delete(void* p, std::size_t) noexcept { alloc_count::release(p); }
void operator delete[](void* p, std::size_t) noexcept { alloc_count::release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { alloc_count::release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { alloc_count::release(p); }
#endif

namespace {

using namespace std::chrono_literals;
using corio::task;

/// Allocations made by this thread while it lives (tracing them when CORIO_ALLOC_TRACE is set).
class window {
public:
  explicit window(bool trace = true) : start_(alloc_count::count) {
    alloc_count::tracing = trace && std::getenv("CORIO_ALLOC_TRACE") != nullptr;
  }
  window(const window&) = delete;
  window& operator=(const window&) = delete;
  ~window() { alloc_count::tracing = false; }
  [[nodiscard]] std::size_t allocations() const noexcept { return alloc_count::count - start_; }

private:
  std::size_t start_;
};

/// Whether the replacement is the operator new this build calls (a sanitizer runtime could take over).
bool counting_works() {
  const std::size_t before = alloc_count::count;
  void* (*volatile allocate)(std::size_t) = &::operator new; // not elided: a real call
  void* p = allocate(24);
  ::operator delete(p);
  auto owned = std::make_unique<std::vector<int>>(100);
  return alloc_count::count - before == 3; // the call, the vector object, its elements
}

/// Sends `batch` and reads until exactly `expected` came back, into `buf` (sized for it): no allocation.
/// False if the server closed early or answered something else.
task<bool> exchange(corio::socket& client, std::string_view batch, std::string_view expected, std::span<char> buf) {
  co_await corio::sock_sendall(client, batch);
  std::size_t got = 0;
  while (got < expected.size()) { // bounded: every pass receives at least one byte or returns
    const std::size_t n = co_await corio::sock_recv(client, buf.subspan(got, expected.size() - got));
    if (n == 0)
      co_return false;
    got += n;
  }
  co_return std::string_view(buf.data(), got) == expected;
}

struct phase_result {
  std::size_t warm_up_allocations = 0;
  std::size_t allocations = 0; // over the measured rounds
  std::size_t failed_rounds = 0;
};

/// `warm_up` rounds, then `rounds` counted ones, of sending `batch` and reading `expected` back.
task<phase_result> measure(corio::socket& client, std::string batch, std::string expected, int warm_up, int rounds) {
  phase_result r;
  std::vector<char> buf(expected.size());
  {
    window w(/*trace=*/false);
    for (int i = 0; i < warm_up; ++i)
      r.failed_rounds += co_await exchange(client, batch, expected, buf) ? 0 : 1;
    r.warm_up_allocations = w.allocations();
  }
  window w;
  for (int i = 0; i < rounds; ++i)
    r.failed_rounds += co_await exchange(client, batch, expected, buf) ? 0 : 1;
  r.allocations = w.allocations();
  co_return r;
}

std::string repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i)
    out.append(s);
  return out;
}

/// The real clock, not the mock one: nothing measured here depends on time (the servers' idle timers are
/// a minute away), and a virtual clock jumps to the next timer whenever a zero-timeout poll finds nothing
/// — also when loopback data is still in flight because the kernel deferred its delivery to ksoftirqd
/// (a busy machine), which would fire the idle timeouts in the middle of a measurement.
template <class F> phase_result run_on_loop(F body) { return corio::run(body()); }

class ZeroAlloc : public ::testing::Test {
protected:
  void SetUp() override {
    if (!counting_works())
      GTEST_SKIP() << "this build's operator new is not the test's replacement (a sanitizer runtime?): "
                      "allocations cannot be counted";
  }
  corio::testing::leak_check leaks_;
};

TEST_F(ZeroAlloc, CounterSeesAllocations) {
  window w;
  std::string s(100, 'x'); // beyond the small-string buffer
  EXPECT_EQ(w.allocations(), 1u);
}

#ifdef CORIO_ZERO_ALLOC_HTTP

constexpr std::string_view plaintext_request = "GET /plaintext HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n"
                                               "Accept: text/plain\r\n\r\n";

/// The HTTP server's connection handler (serve()) on one accepted loopback connection: `batch` sent at
/// once (pipelined when it holds several requests), `answers` expected back.
task<phase_result> http_phase(std::string batch, std::string answers, int warm_up, int rounds) {
  config cfg;
  corio::socket listener = corio::listen_on(corio::address::loopback_ipv4(0));
  corio::socket client = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
  co_await corio::sock_connect(client, listener.local_address());
  corio::accepted a = co_await corio::sock_accept(listener);
  a.conn.set_no_delay(true);
  client.set_no_delay(true);
  corio::join_handle<> server = corio::spawn(serve(std::move(a.conn), cfg));
  const phase_result r = co_await measure(client, std::move(batch), std::move(answers), warm_up, rounds);
  client.close(); // the handler reads end of stream and returns
  co_await server;
  EXPECT_EQ(corio::event_loop::current()->task_count(), 1u) << "tasks left";
  EXPECT_EQ(corio::event_loop::current()->timer_count(), 0u) << "timers left";
  co_return r;
}

TEST_F(ZeroAlloc, HttpPlaintextKeepAlive) {
  const phase_result r =
      run_on_loop([] { return http_phase(std::string(plaintext_request), std::string(hello_response), 100, 1000); });
  EXPECT_EQ(r.failed_rounds, 0u);
  EXPECT_EQ(r.allocations, 0u) << "1000 keep-alive requests allocated " << r.allocations
                               << " times (warm-up: " << r.warm_up_allocations << "); CORIO_ALLOC_TRACE=1 shows where";
}

TEST_F(ZeroAlloc, HttpPlaintextPipelined) {
  const phase_result r =
      run_on_loop([] { return http_phase(repeat(plaintext_request, 16), repeat(hello_response, 16), 100, 1000); });
  EXPECT_EQ(r.failed_rounds, 0u);
  EXPECT_EQ(r.allocations, 0u) << "1000 batches of 16 pipelined requests allocated " << r.allocations
                               << " times (warm-up: " << r.warm_up_allocations << ")";
}

TEST_F(ZeroAlloc, HttpHeadNotFoundAndBadMethod) {
  // The other short answers of the keep-alive path, pipelined: HEAD, 404 and 405.
  const std::string batch = "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
                            "GET /nowhere?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                            "DELETE /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string answers = std::string(hello_head) +
                              "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n"
                              "Not Found\n"
                              "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nContent-Length: 19"
                              "\r\n\r\nMethod Not Allowed\n";
  const phase_result r = run_on_loop([&] { return http_phase(batch, answers, 100, 1000); });
  EXPECT_EQ(r.failed_rounds, 0u);
  EXPECT_EQ(r.allocations, 0u) << "1000 batches of HEAD, 404 and 405 allocated " << r.allocations << " times";
}

#endif

enum class buffers { system, small, large };

/// The echo server's handler (echo()) behind corio::start_server, as the example runs it. With small
/// buffers, the server's send buffer and the client's receive buffer are a few KiB, so most of each echo
/// waits in the stream writer's queue and goes out as the client reads; with large ones (1 MiB), none does.
task<phase_result> echo_phase(std::size_t message_size, int per_batch, int warm_up, int rounds,
                              buffers size = buffers::system) {
  corio::server_options opts;
  const int bytes = size == buffers::small ? 4096 : 1 << 20;
  auto handler = [size, bytes](corio::stream_reader r, corio::stream_writer w) {
    if (size != buffers::system) {
      EXPECT_EQ(::setsockopt(w.fd(), SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes), 0);
    }
    return echo(std::move(r), std::move(w), std::chrono::seconds(60));
  };
  corio::server server = corio::start_server(handler, {corio::address::loopback_ipv4(0)}, opts);
  corio::socket client = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
  if (size != buffers::system)
    client.set_receive_buffer(bytes);
  co_await corio::sock_connect(client, corio::address::loopback_ipv4(server.port()));
  client.set_no_delay(true);
  std::string message(message_size, 'm');
  for (std::size_t i = 0; i < message.size(); ++i)
    message[i] = static_cast<char>('a' + i % 26);
  const std::string batch = repeat(message, per_batch);
  const phase_result r = co_await measure(client, batch, batch, warm_up, rounds);
  client.close(); // echo() reads end of stream and returns; the server then closes its side
  server.close();
  co_await server.wait_closed();
  EXPECT_EQ(corio::event_loop::current()->task_count(), 1u) << "tasks left";
  co_return r;
}

TEST_F(ZeroAlloc, EchoSmallMessages) {
  const phase_result r = run_on_loop([] { return echo_phase(64, 1, 100, 1000); });
  EXPECT_EQ(r.failed_rounds, 0u);
  EXPECT_EQ(r.allocations, 0u) << "1000 echoes of 64 bytes allocated " << r.allocations
                               << " times (warm-up: " << r.warm_up_allocations << ")";
}

TEST_F(ZeroAlloc, EchoPipelinedBatches) {
  const phase_result r = run_on_loop([] { return echo_phase(64, 16, 100, 1000); });
  EXPECT_EQ(r.failed_rounds, 0u);
  EXPECT_EQ(r.allocations, 0u) << "1000 batches of 16 echoed messages allocated " << r.allocations << " times";
}

TEST_F(ZeroAlloc, EchoLargeMessages) {
  // 48 KiB: several reads per message. Large socket buffers, so every write goes out at once: whether
  // the writer's queue is used (EchoThroughTheWriteQueue) is then not up to timing.
  const phase_result r = run_on_loop([] { return echo_phase(48 * 1024, 1, 100, 1000, buffers::large); });
  EXPECT_EQ(r.failed_rounds, 0u);
  EXPECT_EQ(r.allocations, 0u) << "1000 echoes of 48 KiB allocated " << r.allocations << " times";
}

TEST_F(ZeroAlloc, EchoThroughTheWriteQueue) {
  // Small socket buffers: each 48 KiB echo is mostly queued by the writer and flushed as the client reads.
  const phase_result r = run_on_loop([] { return echo_phase(48 * 1024, 1, 100, 1000, buffers::small); });
  EXPECT_EQ(r.failed_rounds, 0u);
  EXPECT_EQ(r.allocations, 0u) << "1000 queued echoes of 48 KiB allocated " << r.allocations << " times";
}

/// Round `i` of mixed writes: small copies (sharing a chunk), a moved-in string (queued as it is), a copy
/// bigger than a chunk, and writelines; numbered so that a reordering shows.
std::string round_bytes(int i, std::string& moved) {
  const std::string tag = std::string("<") + std::to_string(i) + ">";
  moved = std::string(20000 + static_cast<std::size_t>(i), static_cast<char>('a' + i % 26));
  return tag + tag + moved + std::string(40000, 'z') + tag + "|" + tag;
}

task<> mixed_writer(corio::stream_writer w, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    std::string moved;
    const std::string expected = round_bytes(i, moved);
    const std::string tag = std::string("<") + std::to_string(i) + ">";
    w.write(tag);
    w.write(std::string_view(tag));
    w.write(std::move(moved));
    w.write(std::string(40000, 'z'));
    w.writelines({std::string_view(tag), std::string_view("|"), std::string_view(tag)});
    co_await w.drain();
  }
  w.close();
  co_await w.wait_closed();
}

TEST_F(ZeroAlloc, WriteQueueKeepsTheOrderOfMixedWrites) {
  constexpr int rounds = 50;
  std::string expected;
  for (int i = 0; i < rounds; ++i) {
    std::string moved;
    expected += round_bytes(i, moved);
  }
  corio::run( // the real clock, as run_on_loop() explains
      [&]() -> task<> {
        corio::server_options opts;
        auto handler = [](corio::stream_reader, corio::stream_writer w) {
          const int bytes = 4096; // most of every round waits in the queue
          EXPECT_EQ(::setsockopt(w.fd(), SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes), 0);
          return mixed_writer(std::move(w), rounds);
        };
        corio::server server = corio::start_server(handler, {corio::address::loopback_ipv4(0)}, opts);
        corio::socket client = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
        client.set_receive_buffer(4096);
        co_await corio::sock_connect(client, corio::address::loopback_ipv4(server.port()));
        std::string got;
        std::vector<char> buf(8192);
        for (std::size_t pass = 0; pass < expected.size() + 1; ++pass) { // each pass gets a byte or ends
          const std::size_t n = co_await corio::sock_recv(client, buf);
          if (n == 0)
            break;
          got.append(buf.data(), n);
        }
        EXPECT_EQ(got.size(), expected.size());
        EXPECT_TRUE(got == expected) << "the bytes arrived out of order";
        client.close();
        server.close();
        co_await server.wait_closed();
      }());
}

/// Reads exactly `n` bytes (false if the connection ended first).
task<bool> read_exactly(corio::socket& s, std::size_t n) {
  std::vector<char> buf(8192);
  while (n > 0) { // bounded: each pass takes at least one byte or returns
    const std::size_t got = co_await corio::sock_recv(s, std::span<char>(buf).first(std::min(n, buf.size())));
    if (got == 0)
      co_return false;
    n -= got;
  }
  co_return true;
}

/// How long after `since` the server closes the connection (loop time; a mock clock makes it exact).
task<corio::duration> closed_after(corio::socket& s, corio::time_point since) {
  char byte = 0;
  const std::size_t n = co_await corio::sock_recv(s, std::span<char>(&byte, 1));
  EXPECT_EQ(n, 0u) << "an answer nobody asked for";
  co_return corio::event_loop::current()->time() - since;
}

// The idle timeout (one timer per connection, re-armed only when it fires) is as exact as the timeout
// scope per request was: the limit counts from the start of each wait for a request, whether the timer
// fires early (re-armed), and time spent answering a slow reader is not idle time. On the mock clock,
// over a Unix socketpair (as fuzz_http): its data is in the peer's queue when send() returns, so the
// clock never jumps over bytes in flight (loopback TCP may hand delivery to ksoftirqd).
TEST_F(ZeroAlloc, HttpIdleTimeoutCountsFromTheLastAnswer) {
  corio::testing::mock_clock clock;
  corio::run(
      []() -> task<> {
        corio::event_loop& loop = *corio::event_loop::current();
        config cfg;
        cfg.idle_timeout = 10s;
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
        corio::socket client = corio::socket::adopt(fds[1]);
        const int bytes = 4096; // the server's answers wait for the client to read them
        EXPECT_EQ(::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes), 0);
        corio::join_handle<> server = corio::spawn(serve(corio::socket::adopt(fds[0]), cfg));

        // A request 4 s into the first wait: the timer fires at 10 s, finds the new deadline, re-arms.
        co_await corio::sleep(4s);
        co_await corio::sock_sendall(client, plaintext_request);
        EXPECT_TRUE(co_await read_exactly(client, hello_response.size()));
        // 500 pipelined requests whose answers fill the socket buffer; the client reads them only
        // 15 s later. The server is busy sending all that time (its timer lapses), then waits anew.
        co_await corio::sock_sendall(client, repeat(plaintext_request, 500));
        co_await corio::sleep(15s);
        EXPECT_TRUE(co_await read_exactly(client, 500 * hello_response.size()));
        {
          auto guard = corio::timeout(60s); // a server that never closes fails the test instead of hanging it
          EXPECT_EQ(co_await closed_after(client, loop.time()), corio::duration(10s));
        }
        co_await server;
        EXPECT_EQ(loop.timer_count(), 0u) << "timers left";
      }(),
      {.clock = &clock});
}

} // namespace
