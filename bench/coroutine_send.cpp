// Two-way coroutines: the cost of one send() round trip into a corio::coroutine<int, int, int> that adds
// what it receives and yields the running sum, directly and through `depth` levels of
// `co_await corio::yield_from(...)` (a send goes straight to the innermost coroutine: O(1) at any depth).
//
// Every benchmark checks the running sum and reports "per_send" (seconds per send).
// bench/compare_python runs the same workloads in CPython.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include <corio/coroutine.hpp>
#include <corio/yield_from.hpp>

namespace {

/// Python: `def relay(d): if d == 0: s = 0; while True: s += (yield s)` / `else: return (yield from relay(d - 1))`.
corio::coroutine<int, int, int> relay(int depth) {
  if (depth == 0) {
    int sum = 0;
    for (;;) {
      int v = co_yield sum;
      sum += v;
    }
  }
  int r = co_await corio::yield_from(relay(depth - 1));
  co_return r;
}

void BM_send(benchmark::State& state) {
  const auto depth = static_cast<int>(state.range(0));
  auto co = relay(depth);
  if (co.next().value() != 0) {
    state.SkipWithError("the first next() did not yield 0");
    return;
  }
  std::int64_t sends = 0;
  int last = 0;
  for (auto _ : state) {
    last = co.send(1).value();
    ++sends;
  }
  benchmark::DoNotOptimize(last);
  // sends <= 1e9 (Google Benchmark's iteration cap), so the coroutine's int sum does not overflow.
  if (last != sends) {
    state.SkipWithError(
        ("wrong running sum: got " + std::to_string(last) + ", expected " + std::to_string(sends)).c_str());
    return;
  }
  // rate = iterations / seconds; inverted: seconds per send (the console shows e.g. "14ns").
  state.counters["per_send"] =
      benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
// depth 0: the coroutine itself; depth d: the send passes through d levels of yield_from.
BENCHMARK(BM_send)->ArgName("depth")->Arg(0)->Arg(1)->Arg(10)->Arg(100)->UseRealTime();

} // namespace
