// Peer of bench/loop_micro.cpp: the same event-loop micro-benchmarks in Boost.Asio with C++20 coroutines
// (asio::awaitable, one io_context with concurrency hint 1, run on the benchmark's thread).
//   (a) BM_sleep0          `co_await asio::post(ex, use_awaitable)` in a loop inside one coroutine.
//   (b) BM_spawn_await     `co_await asio::co_spawn(ex, trivial(i), use_awaitable)`.
//       BM_await_inline    `co_await trivial(i)` (no spawn), for reference.
//   (c) BM_timer_insert_cancel  1,000,000 live steady_timers with a pending async_wait; each iteration is a
//                          batch of 1024 cancels of random live timers (cancel() + one post, which runs the
//                          1024 aborted handlers) followed by 1024 inserts (expires_after + async_wait).
// Every benchmark checks its own result, as loop_micro does. Names and counters match loop_micro's, so
// bench/compare_loops reads both the same way.
#include <utility> // before Asio: Boost 1.74 Asio needs it with g++ 12 (HAZARDS.md §4)

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace asio = boost::asio;

namespace {

using namespace std::chrono_literals;

/// Runs `a` on a fresh io_context until it completes; rethrows its exception.
template <class T> T run(asio::io_context& ctx, asio::awaitable<T> a) {
  std::exception_ptr error;
  T result{};
  asio::co_spawn(ctx, std::move(a), [&](std::exception_ptr e, T r) {
    error = e;
    result = std::move(r);
    ctx.stop(); // (c) keeps 1M timers pending: run() would not return by itself
  });
  ctx.restart();
  ctx.run();
  if (error)
    std::rethrow_exception(error);
  return result;
}

template <class T> T run(asio::awaitable<T> a) {
  asio::io_context ctx(1);
  return run(ctx, std::move(a));
}

// ---- (a) co_await post ----------------------------------------------------------------------------------

struct sleep0_result {
  std::int64_t sleeps = 0;
  bool yielded = false; // a handler posted before the first post ran before it returned
};

asio::awaitable<sleep0_result> sleep0_loop(benchmark::State* state) {
  auto ex = co_await asio::this_coro::executor;
  sleep0_result r;
  bool ran = false;
  asio::post(ex, [&ran] { ran = true; });
  co_await asio::post(ex, asio::use_awaitable);
  r.yielded = ran;
  for (auto _ : *state) {
    co_await asio::post(ex, asio::use_awaitable);
    ++r.sleeps;
  }
  co_return r;
}

void BM_sleep0(benchmark::State& state) {
  const sleep0_result r = run(sleep0_loop(&state));
  if (!r.yielded) {
    state.SkipWithError("post did not go through the io_context (a handler posted before it had not run)");
    return;
  }
  if (r.sleeps != static_cast<std::int64_t>(state.iterations())) {
    state.SkipWithError(("wrong count: " + std::to_string(r.sleeps) + " posts for " +
                         std::to_string(state.iterations()) + " iterations")
                            .c_str());
  }
}
BENCHMARK(BM_sleep0)->Unit(benchmark::kNanosecond)->UseRealTime();

// ---- (b) co_spawn + await -------------------------------------------------------------------------------

asio::awaitable<int> trivial(int x) { co_return x + 1; }

asio::awaitable<std::int64_t> spawn_await_loop(benchmark::State* state) {
  auto ex = co_await asio::this_coro::executor;
  std::int64_t sum = 0;
  int i = 0;
  for (auto _ : *state) {
    asio::awaitable<int> spawned = asio::co_spawn(ex, trivial(i), asio::use_awaitable);
    const int v = co_await std::move(spawned);
    if (v != i + 1)
      co_return -1;
    sum += v;
    ++i;
  }
  co_return sum;
}

asio::awaitable<std::int64_t> await_inline_loop(benchmark::State* state) {
  std::int64_t sum = 0;
  int i = 0;
  for (auto _ : *state) {
    asio::awaitable<int> t = trivial(i);
    const int v = co_await std::move(t);
    if (v != i + 1)
      co_return -1;
    sum += v;
    ++i;
  }
  co_return sum;
}

void check_sum(benchmark::State& state, std::int64_t sum) {
  const auto n = static_cast<std::int64_t>(state.iterations());
  const std::int64_t expected = n * (n + 1) / 2;
  if (sum != expected)
    state.SkipWithError(("wrong sum " + std::to_string(sum) + ", expected " + std::to_string(expected)).c_str());
}

void BM_spawn_await(benchmark::State& state) { check_sum(state, run(spawn_await_loop(&state))); }
BENCHMARK(BM_spawn_await)->Unit(benchmark::kNanosecond)->UseRealTime();

void BM_await_inline(benchmark::State& state) { check_sum(state, run(await_inline_loop(&state))); }
BENCHMARK(BM_await_inline)->Unit(benchmark::kNanosecond)->UseRealTime();

// ---- (c) timer insert + cancel at 1M live timers --------------------------------------------------------

constexpr std::size_t live_timers = 1'000'000;
constexpr std::size_t batch = 1024;
constexpr std::size_t delay_table = 4096;
// 1954 batches = 2,000,896 cancel + insert pairs per run, as in loop_micro.cpp (where the count makes corio's
// lazily-deleting heap compact as often as in the steady state).
constexpr benchmark::IterationCount timer_batches = 1954;

struct timer_fixture {
  asio::io_context ctx{1};
  std::vector<asio::steady_timer> timers;
  std::vector<std::uint32_t> order;
  std::vector<std::chrono::nanoseconds> delays;
  std::size_t cursor = 0;
  std::size_t next_delay = 0;
  std::int64_t fired = 0;
  std::int64_t aborted = 0;

  timer_fixture() : order(live_timers) {
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<std::int64_t> ns(std::chrono::nanoseconds(1h).count(),
                                                   std::chrono::nanoseconds(2h).count());
    delays.reserve(delay_table);
    for (std::size_t i = 0; i < delay_table; ++i)
      delays.emplace_back(ns(rng));
    std::iota(order.begin(), order.end(), 0U);
    std::shuffle(order.begin(), order.end(), rng);
    timers.reserve(live_timers);
    for (std::size_t i = 0; i < live_timers; ++i)
      timers.emplace_back(ctx);
  }
  void insert(asio::steady_timer& t) {
    t.expires_after(delays[next_delay++ % delay_table]);
    t.async_wait([this](const boost::system::error_code& ec) {
      if (ec == asio::error::operation_aborted)
        ++aborted;
      else
        ++fired;
    });
  }
};

struct timer_totals {
  std::int64_t inserts = 0;
  std::int64_t cancels = 0;
  std::int64_t failed_cancels = 0;
  double insert_s = 0;
  double cancel_s = 0;
};

/// Inside the io_context, as corio's version runs inside its loop (Asio recycles handler memory there).
asio::awaitable<bool> fill(timer_fixture* f) {
  for (auto& t : f->timers)
    f->insert(t);
  co_return true;
}

asio::awaitable<timer_totals> timer_loop(benchmark::State* state, timer_fixture* f) {
  using clock = std::chrono::steady_clock;
  auto ex = co_await asio::this_coro::executor;
  timer_totals t;
  std::vector<std::uint32_t> slots(batch);
  for (auto _ : *state) {
    for (auto& s : slots) {
      s = f->order[f->cursor];
      f->cursor = (f->cursor + 1) % live_timers;
    }
    const auto t0 = clock::now();
    for (const std::uint32_t s : slots)
      t.failed_cancels += f->timers[s].cancel() == 1 ? 0 : 1;
    co_await asio::post(ex, asio::use_awaitable); // runs the 1024 aborted handlers queued before it
    const auto t1 = clock::now();
    for (const std::uint32_t s : slots)
      f->insert(f->timers[s]);
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
  static std::unique_ptr<timer_fixture> fixture;
  if (!fixture) {
    fixture = std::make_unique<timer_fixture>();
    run(fixture->ctx, fill(fixture.get()));
  }
  timer_fixture& f = *fixture;
  const std::int64_t aborted_before = f.aborted;
  const timer_totals t = run(f.ctx, timer_loop(&state, &f));
  const std::int64_t aborted = f.aborted - aborted_before;
  if (t.failed_cancels != 0 || f.fired != 0 || aborted != t.cancels) {
    state.SkipWithError(("failed cancels " + std::to_string(t.failed_cancels) + ", fired " + std::to_string(f.fired) +
                         ", aborted handlers run " + std::to_string(aborted) + " (expected 0, 0, " +
                         std::to_string(t.cancels) + ")")
                            .c_str());
    return;
  }
  state.counters["insert_ns"] = t.insert_s * 1e9 / static_cast<double>(t.inserts);
  state.counters["cancel_ns"] = t.cancel_s * 1e9 / static_cast<double>(t.cancels);
  state.counters["pair_ns"] = (t.insert_s + t.cancel_s) * 1e9 / static_cast<double>(t.inserts);
  state.counters["live_timers"] = static_cast<double>(live_timers);
}
BENCHMARK(BM_timer_insert_cancel)->Iterations(timer_batches)->UseManualTime()->Unit(benchmark::kMicrosecond);

} // namespace
