// Event-loop micro-benchmarks: what one trip through corio's loop costs.
//   (a) BM_sleep0          `co_await corio::sleep(0s)` in a loop inside one task: ns per sleep(0) (a full loop
//                          iteration: poll, timers, ready queue, resume).
//   (b) BM_spawn_await     `co_await corio::spawn(trivial(i))`: ns per spawn + await of a task that returns at
//                          once, with the frame-recycling allocator on (recycling:1) and off (recycling:0).
//       BM_spawn_eager_await  the same with corio::spawn_eager (asyncio's eager start): the task runs inside
//                          the call and is done when it returns, so the await does not suspend.
//       BM_await_inline    `co_await trivial(i)` without spawn (no loop trip), for reference.
//       BM_spawn_await_in_context  BM_spawn_await from a task that set a context_var: each child starts with a
//                          copy of the context (one shared_ptr copy and the task's rarely-used extras).
//   (c) BM_timer_insert_cancel  1,000,000 live call_later() timers; each iteration is a batch of 1024
//                          cancels of random live timers (and one loop iteration) followed by 1024 inserts, so
//                          the count stays at 1M; 1954 batches. Reports insert_ns and cancel_ns (per timer) and
//                          pair_ns (their sum).
//
// Every benchmark checks its own result (sums, counts, that sleep(0) really went through the loop, that no
// timer fired and every cancel() cancelled). Times are wall-clock (real_time), one operation per iteration
// for (a) and (b). bench/compare_loops runs these next to Boost.Asio (bench/peers/asio_micro.cpp), asyncio
// and uvloop (bench/peers/asyncio_micro.py).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <corio/detail/frame_pool.hpp>
#include <corio/event_loop.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>

namespace {

using namespace std::chrono_literals;

// ---- (a) sleep(0) -------------------------------------------------------------------------------------

struct sleep0_result {
  std::int64_t sleeps = 0;
  bool yielded = false; // a callback scheduled before the first sleep(0) ran before it returned
};

corio::task<sleep0_result> sleep0_loop(benchmark::State* state) {
  sleep0_result r;
  bool ran = false;
  corio::event_loop::current()->call_soon([&ran] { ran = true; });
  co_await corio::sleep(0s);
  r.yielded = ran;
  for (auto _ : *state) {
    co_await corio::sleep(0s);
    ++r.sleeps;
  }
  co_return r;
}

void BM_sleep0(benchmark::State& state) {
  const sleep0_result r = corio::run(sleep0_loop(&state));
  if (!r.yielded) {
    state.SkipWithError("sleep(0) did not go through the loop (a callback scheduled before it had not run)");
    return;
  }
  if (r.sleeps != static_cast<std::int64_t>(state.iterations())) {
    state.SkipWithError(("wrong count: " + std::to_string(r.sleeps) + " sleeps for " +
                         std::to_string(state.iterations()) + " iterations")
                            .c_str());
  }
}
BENCHMARK(BM_sleep0)->Unit(benchmark::kNanosecond)->UseRealTime();

// ---- (b) spawn + await ----------------------------------------------------------------------------------

corio::task<int> trivial(int x) { co_return x + 1; }

/// Returns the sum of the results; every result is checked against its argument as it arrives.
corio::task<std::int64_t> spawn_await_loop(benchmark::State* state, bool eager) {
  std::int64_t sum = 0;
  int i = 0;
  for (auto _ : *state) {
    corio::task<int> t = trivial(i); // named: no temporaries around co_await (HAZARDS.md §2)
    corio::join_handle<int> h = eager ? corio::spawn_eager(std::move(t)) : corio::spawn(std::move(t));
    const int v = co_await h;
    if (v != i + 1)
      co_return -1;
    sum += v;
    ++i;
  }
  co_return sum;
}

corio::task<std::int64_t> await_inline_loop(benchmark::State* state) {
  std::int64_t sum = 0;
  int i = 0;
  for (auto _ : *state) {
    corio::task<int> t = trivial(i);
    const int v = co_await t;
    if (v != i + 1)
      co_return -1;
    sum += v;
    ++i;
  }
  co_return sum;
}

void check_sum(benchmark::State& state, std::int64_t sum) {
  const auto n = static_cast<std::int64_t>(state.iterations());
  const std::int64_t expected = n * (n + 1) / 2; // sum of i + 1 for i < n
  if (sum != expected)
    state.SkipWithError(("wrong sum " + std::to_string(sum) + ", expected " + std::to_string(expected)).c_str());
}

void BM_spawn_await(benchmark::State& state) {
  const bool recycling = state.range(0) != 0;
  const bool was = corio::detail::set_frame_recycling(recycling);
  const std::int64_t sum = corio::run(spawn_await_loop(&state, false));
  corio::detail::set_frame_recycling(was);
  check_sum(state, sum);
}
BENCHMARK(BM_spawn_await)->ArgName("recycling")->Arg(1)->Arg(0)->Unit(benchmark::kNanosecond)->UseRealTime();

void BM_spawn_eager_await(benchmark::State& state) { check_sum(state, corio::run(spawn_await_loop(&state, true))); }
BENCHMARK(BM_spawn_eager_await)->Unit(benchmark::kNanosecond)->UseRealTime();

void BM_await_inline(benchmark::State& state) {
  const bool recycling = state.range(0) != 0;
  const bool was = corio::detail::set_frame_recycling(recycling);
  const std::int64_t sum = corio::run(await_inline_loop(&state));
  corio::detail::set_frame_recycling(was);
  check_sum(state, sum);
}
BENCHMARK(BM_await_inline)->ArgName("recycling")->Arg(1)->Arg(0)->Unit(benchmark::kNanosecond)->UseRealTime();

// ---- (c) timer insert + cancel at 1M live timers --------------------------------------------------------

constexpr std::size_t live_timers = 1'000'000;
constexpr std::size_t batch = 1024;
constexpr std::size_t delay_table = 4096;
// 1954 batches = 2,000,896 cancel + insert pairs per run: corio's lazily-deleting heap compacts once per ~1M
// cancels at 1M live timers, so a run includes that cost as often as the steady state does (twice).
constexpr benchmark::IterationCount timer_batches = 1954;

/// One loop holding 1M scheduled callbacks, built once and kept across the benchmark's runs. Deadlines are
/// 1 to 2 hours away (uniform, fixed seed), so none fires; each callback counts itself if it did.
struct timer_fixture {
  corio::event_loop loop;
  std::vector<corio::timer_handle> handles;
  std::vector<std::uint32_t> order; // slots in a fixed random order: a batch takes the next `batch` of them
  std::vector<corio::duration> delays;
  std::size_t cursor = 0;
  std::size_t next_delay = 0;
  std::int64_t fired = 0;

  timer_fixture() : handles(live_timers), order(live_timers) {
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<std::int64_t> ns(std::chrono::nanoseconds(1h).count(),
                                                   std::chrono::nanoseconds(2h).count());
    delays.reserve(delay_table);
    for (std::size_t i = 0; i < delay_table; ++i)
      delays.emplace_back(ns(rng));
    std::iota(order.begin(), order.end(), 0U);
    std::shuffle(order.begin(), order.end(), rng);
    for (auto& h : handles)
      h = insert();
  }
  corio::timer_handle insert() {
    const corio::duration d = delays[next_delay++ % delay_table];
    return loop.call_later(d, [f = &fired] { ++*f; });
  }
};

struct timer_totals {
  std::int64_t inserts = 0;
  std::int64_t cancels = 0;
  std::int64_t failed_cancels = 0;
  double insert_s = 0;
  double cancel_s = 0;
};

corio::task<timer_totals> timer_loop(benchmark::State* state, timer_fixture* f) {
  using clock = std::chrono::steady_clock;
  timer_totals t;
  std::vector<std::uint32_t> slots(batch);
  for (auto _ : *state) {
    for (auto& s : slots) {
      s = f->order[f->cursor];
      f->cursor = (f->cursor + 1) % live_timers;
    }
    const auto t0 = clock::now();
    for (const std::uint32_t s : slots)
      t.failed_cancels += f->handles[s].cancel() ? 0 : 1;
    co_await corio::sleep(0s); // one loop iteration per batch, as Asio needs to run its cancelled handlers
    const auto t1 = clock::now();
    for (const std::uint32_t s : slots)
      f->handles[s] = f->insert();
    const auto t2 = clock::now();
    const double cancel_s = std::chrono::duration<double>(t1 - t0).count();
    const double insert_s = std::chrono::duration<double>(t2 - t1).count();
    state->SetIterationTime(cancel_s + insert_s);
    t.cancel_s += cancel_s;
    t.insert_s += insert_s;
    t.cancels += static_cast<std::int64_t>(batch);
    t.inserts += static_cast<std::int64_t>(batch);
  }
  co_return t;
}

void BM_timer_insert_cancel(benchmark::State& state) {
  static std::unique_ptr<timer_fixture> fixture; // 1M timers are built once (about a second)
  if (!fixture)
    fixture = std::make_unique<timer_fixture>();
  timer_fixture& f = *fixture;
  const timer_totals t = corio::run_until_complete(f.loop, timer_loop(&state, &f));
  if (t.failed_cancels != 0 || f.fired != 0 || f.loop.timer_count() != live_timers) {
    state.SkipWithError(("failed cancels " + std::to_string(t.failed_cancels) + ", fired " + std::to_string(f.fired) +
                         ", live timers " + std::to_string(f.loop.timer_count()) + " (expected 0, 0, " +
                         std::to_string(live_timers) + ")")
                            .c_str());
    return;
  }
  state.counters["insert_ns"] = t.insert_s * 1e9 / static_cast<double>(t.inserts);
  state.counters["cancel_ns"] = t.cancel_s * 1e9 / static_cast<double>(t.cancels);
  state.counters["pair_ns"] = (t.insert_s + t.cancel_s) * 1e9 / static_cast<double>(t.inserts);
  state.counters["live_timers"] = static_cast<double>(live_timers);
}
BENCHMARK(BM_timer_insert_cancel)->Iterations(timer_batches)->UseManualTime()->Unit(benchmark::kMicrosecond);

// Registered last: once a context_var was set, every later spawn in the process copies its spawner's
// context, so the benchmarks above run without any.
corio::context_var<int> bench_var("bench_var");

corio::task<std::int64_t> spawn_await_in_context(benchmark::State* state) {
  (void)bench_var.set(1); // each spawned task now starts with a copy of this context
  co_return co_await spawn_await_loop(state, false);
}

void BM_spawn_await_in_context(benchmark::State& state) {
  check_sum(state, corio::run(spawn_await_in_context(&state)));
}
BENCHMARK(BM_spawn_await_in_context)->Unit(benchmark::kNanosecond)->UseRealTime();

} // namespace
