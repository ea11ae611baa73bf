// Peer of bench/sleep_million.cpp in Boost.Asio: a main coroutine co_spawns N coroutines, each sleeping a
// random 0..MAX seconds on its own steady_timer (uniform, fixed seed); io_context::run() returns when all
// have finished (Asio's way to await them all: each completion handler counts). Prints the wall time from
// the first co_spawn to the last completion; run it under `/usr/bin/time -v` for the peak RSS. Each
// coroutine checks that it slept at least its delay; the program exits 1 unless all N did.
//
// Usage: asio_sleep_million [N=1000000] [MAX_SECONDS=1.0]
#include <utility> // before Asio: Boost 1.74 Asio needs it with g++ 12 (HAZARDS.md §4)

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <vector>

namespace asio = boost::asio;

namespace {

using clock_type = std::chrono::steady_clock;

struct outcome {
  std::int64_t finished = 0;
  std::int64_t ok = 0; // coroutines that slept at least their delay
  std::int64_t errors = 0;
  clock_type::time_point started;
  clock_type::time_point last_done;
  double spawn_s = 0;
};

asio::awaitable<int> sleeper(std::chrono::nanoseconds d) {
  auto ex = co_await asio::this_coro::executor;
  const auto start = clock_type::now();
  asio::steady_timer timer(ex, d);
  co_await timer.async_wait(asio::use_awaitable);
  co_return clock_type::now() - start >= d ? 1 : 0;
}

asio::awaitable<void> main_coro(std::vector<std::chrono::nanoseconds> delays, outcome* out) {
  auto ex = co_await asio::this_coro::executor;
  out->started = clock_type::now();
  for (const auto d : delays) {
    asio::co_spawn(ex, sleeper(d), [out](std::exception_ptr e, int ok) {
      ++out->finished;
      out->ok += ok;
      out->errors += e ? 1 : 0;
      out->last_done = clock_type::now();
    });
  }
  out->spawn_s = std::chrono::duration<double>(clock_type::now() - out->started).count();
}

} // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 1'000'000;
  const double max_s = argc > 2 ? std::strtod(argv[2], nullptr) : 1.0;
  if (n <= 0 || max_s < 0) {
    std::fprintf(stderr, "usage: asio_sleep_million [N=1000000] [MAX_SECONDS=1.0]\n");
    return 2;
  }
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::int64_t> ns(0, static_cast<std::int64_t>(max_s * 1e9));
  std::vector<std::chrono::nanoseconds> delays;
  delays.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i)
    delays.emplace_back(ns(rng));

  outcome out;
  asio::io_context ctx(1);
  asio::co_spawn(ctx, main_coro(std::move(delays), &out), asio::detached);
  ctx.run();
  const double wall_s = std::chrono::duration<double>(out.last_done - out.started).count();
  std::printf("asio sleep_million: tasks %ld, max sleep %.3f s, spawn %.3f s, wall %.3f s, ok %lld\n", n, max_s,
              out.spawn_s, wall_s, static_cast<long long>(out.ok));
  if (out.finished != n || out.ok != n || out.errors != 0) {
    std::fprintf(stderr, "asio_sleep_million: %lld finished, %lld slept their full delay, %lld errors (of %ld)\n",
                 static_cast<long long>(out.finished), static_cast<long long>(out.ok),
                 static_cast<long long>(out.errors), n);
    return 1;
  }
  return 0;
}
