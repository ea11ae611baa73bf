// 1,000,000 concurrent tasks: the main task spawns N tasks, each sleeping a random 0..MAX seconds (uniform,
// fixed seed), then awaits all of them in spawn order. Prints the wall time from the first spawn to the
// last await; run it under `/usr/bin/time -v` for the peak RSS. Each task checks that it slept at least
// its delay; the program exits 1 unless all N did.
//
// Usage: sleep_million [N=1000000] [MAX_SECONDS=1.0]
// Peers: bench/peers/asio_sleep_million.cpp, bench/peers/asyncio_sleep_million.py; bench/compare_loops runs all.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <utility>
#include <vector>

#include <corio/event_loop.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>

namespace {

struct outcome {
  std::int64_t ok = 0; // tasks that slept at least their delay
  double spawn_s = 0;  // spawning all N
  double wall_s = 0;   // first spawn to last await
};

corio::task<int> sleeper(corio::duration d) {
  const corio::time_point start = corio::event_loop::current()->time();
  co_await corio::sleep(d);
  co_return corio::event_loop::current()->time() - start >= d ? 1 : 0;
}

corio::task<outcome> main_task(std::vector<corio::duration> delays) {
  using clock = std::chrono::steady_clock;
  outcome out;
  const auto t0 = clock::now();
  std::vector<corio::join_handle<int>> handles;
  handles.reserve(delays.size());
  for (const corio::duration d : delays) {
    corio::task<int> t = sleeper(d);
    handles.push_back(corio::spawn(std::move(t)));
  }
  out.spawn_s = std::chrono::duration<double>(clock::now() - t0).count();
  for (auto& h : handles) {
    out.ok += co_await h;
    h = {}; // let the finished task go
  }
  out.wall_s = std::chrono::duration<double>(clock::now() - t0).count();
  co_return out;
}

} // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 1'000'000;
  const double max_s = argc > 2 ? std::strtod(argv[2], nullptr) : 1.0;
  if (n <= 0 || max_s < 0) {
    std::fprintf(stderr, "usage: sleep_million [N=1000000] [MAX_SECONDS=1.0]\n");
    return 2;
  }
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::int64_t> ns(0, static_cast<std::int64_t>(max_s * 1e9));
  std::vector<corio::duration> delays;
  delays.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i)
    delays.emplace_back(ns(rng));

  const outcome out = corio::run(main_task(std::move(delays)));
  std::printf("corio sleep_million: tasks %ld, max sleep %.3f s, spawn %.3f s, wall %.3f s, ok %lld\n", n, max_s,
              out.spawn_s, out.wall_s, static_cast<long long>(out.ok));
  if (out.ok != n) {
    std::fprintf(stderr, "sleep_million: only %lld of %ld tasks slept their full delay\n",
                 static_cast<long long>(out.ok), n);
    return 1;
  }
  return 0;
}
