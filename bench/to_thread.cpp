// to_thread round trip: `co_await corio::to_thread(fn)` with a trivial fn, inside one task — ns per call
// (queue to an idle pool thread, wake it, run fn, post the result back through call_soon_threadsafe,
// wake the loop, resume the task). The figure is dominated by two cross-thread wake-ups (a futex for
// the pool thread, the loop's eventfd), so it depends on the machine's scheduler more than on corio.
//   BM_to_thread        the loop's default pool
//   BM_run_in_executor  a pool of one thread (always the same, warm thread)
// Each checks the sum of the results. The CPython peer (asyncio.to_thread) is a one-liner:
//   python3 -c "import asyncio,time
//   async def m(n=20000):
//       t=time.perf_counter()
//       for _ in range(n): await asyncio.to_thread(int)
//       print(round((time.perf_counter()-t)/n*1e9), 'ns per asyncio.to_thread')
//   asyncio.run(m())"
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include <corio/run.hpp>
#include <corio/task.hpp>
#include <corio/thread_pool.hpp>
#include <corio/to_thread.hpp>

namespace {

corio::task<std::int64_t> round_trips(benchmark::State* state, corio::thread_pool* pool) {
  std::int64_t sum = 0;
  for (auto _ : *state) {
    if (pool != nullptr)
      sum += co_await corio::run_in_executor(*pool, [] { return 1; });
    else
      sum += co_await corio::to_thread([] { return 1; });
  }
  co_return sum;
}

void check(benchmark::State& state, std::int64_t sum) {
  if (sum != static_cast<std::int64_t>(state.iterations()))
    state.SkipWithError(("wrong sum " + std::to_string(sum)).c_str());
}

void BM_to_thread(benchmark::State& state) { check(state, corio::run(round_trips(&state, nullptr))); }
BENCHMARK(BM_to_thread)->Unit(benchmark::kNanosecond)->UseRealTime();

void BM_run_in_executor(benchmark::State& state) {
  corio::thread_pool pool({.max_threads = 1});
  check(state, corio::run(round_trips(&state, &pool)));
}
BENCHMARK(BM_run_in_executor)->Unit(benchmark::kNanosecond)->UseRealTime();

} // namespace
