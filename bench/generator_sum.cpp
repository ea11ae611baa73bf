// Generator throughput: consuming a corio::generator<int> element by element, directly and through
// nested `co_yield corio::yield_from(...)` delegation (which must cost O(1) per element at any depth).
//
// Every benchmark checks its own result against the closed form and reports "per_element" (seconds per element).
// bench/compare_python runs the same workloads in CPython.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include <corio/generator.hpp>
#include <corio/yield_from.hpp>

namespace {

/// 0, 1, ..., n - 1: Python's `def count(n): for i in range(n): yield i`.
corio::generator<int> count(int n) {
  for (int i = 0; i < n; ++i)
    co_yield i;
}

/// depth 0 is count(n); depth d delegates to depth d - 1: `yield from level(d - 1, n)`.
corio::generator<int> level(int depth, int n) {
  if (depth == 0) {
    for (int i = 0; i < n; ++i)
      co_yield i;
  } else {
    co_yield corio::yield_from(level(depth - 1, n));
  }
}

constexpr std::int64_t expected_sum(std::int64_t n) { return n * (n - 1) / 2; }

/// Reports "per_element" (wall time per element, in seconds: the console shows e.g. "7.4ns") and
/// items_per_second.
void report_per_element(benchmark::State& state, std::int64_t elements_per_iteration) {
  state.SetItemsProcessed(state.iterations() * elements_per_iteration);
  // rate = elements * iterations / seconds; inverted: seconds per element.
  state.counters["per_element"] =
      benchmark::Counter(static_cast<double>(elements_per_iteration),
                         benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

template <class Generator> bool sum_and_check(benchmark::State& state, Generator&& g, std::int64_t n) {
  std::int64_t sum = 0;
  for (int v : g)
    sum += v;
  benchmark::DoNotOptimize(sum);
  if (sum != expected_sum(n)) {
    state.SkipWithError(
        ("wrong sum: got " + std::to_string(sum) + ", expected " + std::to_string(expected_sum(n))).c_str());
    return false;
  }
  return true;
}

/// (a) `for v in count(n): sum += v`.
void BM_generator_sum(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  for (auto _ : state) {
    if (!sum_and_check(state, count(n), n))
      return;
  }
  report_per_element(state, n);
}
BENCHMARK(BM_generator_sum)->Arg(10'000'000)->Unit(benchmark::kMillisecond)->UseRealTime();

/// (b) the same sum through `depth` levels of `co_yield corio::yield_from(level(depth - 1))`.
void BM_yield_from_depth(benchmark::State& state) {
  const auto depth = static_cast<int>(state.range(0));
  const auto n = static_cast<int>(state.range(1));
  for (auto _ : state) {
    if (!sum_and_check(state, level(depth, n), n))
      return;
  }
  report_per_element(state, n);
}
BENCHMARK(BM_yield_from_depth)
    ->ArgNames({"depth", "n"})
    ->Args({1, 1'000'000})
    ->Args({10, 1'000'000})
    ->Args({100, 1'000'000})
    ->Args({1000, 1'000'000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

} // namespace
