// corio::channel<T> throughput and cross-loop messaging — items (or calls) per second:
//   BM_channel_same_loop          try_send + co_await recv() on one loop (no thread crossing)
//   BM_channel_threads_to_loop/1  one plain thread sends 100k items (unbounded), a task on a loop takes them
//   BM_channel_threads_to_loop/3  three plain threads send 100k items between them
//   BM_channel_loop_to_loop       a runtime of 2 loops: loop 1 sends 100k items through a channel bounded
//                                 to 1024 (co_await send() when full), loop 0 takes them
//   BM_call_soon_threadsafe       one plain thread posts 100k callbacks to a loop (the primitive under
//                                 post(), run_on() and the channel's wake-up)
//   BM_run_on_round_trip          co_await rt.run_on(1, fn) from loop 0: two cross-thread wake-ups
// Each checks the sum of what arrived. On a 2-core machine the producer and consumer threads share the
// cores with each other (and with anything else running), so treat the figures as this machine's.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <corio/channel.hpp>
#include <corio/run.hpp>
#include <corio/runtime.hpp>
#include <corio/task.hpp>

namespace {

constexpr std::int64_t batch = 100'000;

void check(benchmark::State& state, std::int64_t sum, std::int64_t want) {
  if (sum != want)
    state.SkipWithError(("wrong sum " + std::to_string(sum) + ", want " + std::to_string(want)).c_str());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * batch);
}

std::int64_t batch_sum() { return batch * (batch - 1) / 2; }

void BM_channel_same_loop(benchmark::State& state) {
  std::int64_t sum = corio::run([](benchmark::State* st) -> corio::task<std::int64_t> {
    corio::channel<std::int64_t> ch;
    std::int64_t s = 0;
    for (auto _ : *st)
      for (std::int64_t i = 0; i < batch; ++i) {
        ch.try_send(i);
        s += co_await ch.recv();
      }
    co_return s;
  }(&state));
  check(state, sum, batch_sum() * static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_channel_same_loop)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_channel_threads_to_loop(benchmark::State& state) {
  const auto producers = static_cast<std::int64_t>(state.range(0));
  std::int64_t sum = corio::run([](benchmark::State* st, std::int64_t n) -> corio::task<std::int64_t> {
    corio::channel<std::int64_t> ch;
    std::int64_t s = 0;
    for (auto _ : *st) {
      std::vector<std::thread> threads;
      for (std::int64_t p = 0; p < n; ++p)
        threads.emplace_back([&ch, p, n] {
          for (std::int64_t i = p; i < batch; i += n)
            ch.try_send(std::int64_t{i});
        });
      for (std::int64_t i = 0; i < batch; ++i)
        s += co_await ch.recv();
      for (auto& t : threads)
        t.join();
    }
    co_return s;
  }(&state, producers));
  check(state, sum, batch_sum() * static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_channel_threads_to_loop)->Arg(1)->Arg(3)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_channel_loop_to_loop(benchmark::State& state) {
  corio::runtime rt({.threads = 2});
  corio::channel<std::int64_t> ch(1024);
  std::int64_t sum = 0;
  std::atomic<std::int64_t> rounds{0};
  rt.run([&](std::size_t index) -> corio::task<> {
    if (index == 1) {
      // The producer runs as many batches as the consumer asks for: the consumer's loop drives `state`.
      for (;;) {
        std::int64_t i = 0;
        try {
          for (; i < batch; ++i)
            co_await ch.send(std::int64_t{i});
        } catch (const corio::channel_closed&) {
          co_return;
        }
      }
    }
    for (auto _ : state) {
      for (std::int64_t i = 0; i < batch; ++i)
        sum += co_await ch.recv();
      ++rounds;
    }
    ch.close();
  });
  check(state, sum, batch_sum() * rounds.load());
}
BENCHMARK(BM_channel_loop_to_loop)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_call_soon_threadsafe(benchmark::State& state) {
  corio::event_loop loop;
  std::int64_t sum = 0;
  for (auto _ : state) {
    std::int64_t got = 0;
    std::thread producer([&loop, &sum, &got] {
      for (std::int64_t i = 0; i < batch; ++i)
        loop.call_soon_threadsafe([&sum, &got, &loop, i] {
          sum += i;
          if (++got == batch)
            loop.stop();
        });
    });
    loop.run_forever();
    producer.join();
  }
  check(state, sum, batch_sum() * static_cast<std::int64_t>(state.iterations()));
  loop.close();
}
BENCHMARK(BM_call_soon_threadsafe)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_run_on_round_trip(benchmark::State& state) {
  corio::runtime rt({.threads = 2});
  std::int64_t sum = 0;
  rt.run([&](std::size_t index) -> corio::task<> {
    if (index != 0)
      co_return;
    for (auto _ : state)
      sum += co_await rt.run_on(1, [] { return std::int64_t{1}; });
  });
  if (sum != static_cast<std::int64_t>(state.iterations()))
    state.SkipWithError("wrong sum");
}
BENCHMARK(BM_run_on_round_trip)->Unit(benchmark::kMicrosecond)->UseRealTime();

} // namespace
