// corio::async_generator<T>: PEP 525 semantics on the event loop, in exact virtual time.
#include <corio/async_generator.hpp>
#include <corio/event_loop.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>
#include <corio/testing/mock_clock.hpp>
#include <corio/this_task.hpp>
#include <corio/timeout.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "counted.hpp"

using namespace std::chrono_literals;
using corio::async_generator;
using corio::task;
using corio::testing::counted;

namespace {

// Every test checks that the coroutine frames it made were all freed and that every counted object
// was destroyed exactly once.
class AsyncGenerator : public ::testing::Test {
protected:
  void TearDown() override {
    EXPECT_EQ(corio::detail::frame_balance(), frames_at_start_) << "coroutine frames leaked";
    EXPECT_EQ(counted::alive(), 0) << "counted objects leaked or destroyed twice";
    EXPECT_EQ(counted::constructed, counted::destroyed);
  }
  template <class T> T run(task<T> main) { return corio::run(std::move(main), {.clock = &clock}); }
  /// Virtual time since the test began.
  corio::duration elapsed() { return clock.now() - start_; }

  corio::testing::mock_clock clock;
  corio::testing::lifetime_check lives; // resets the counters
  corio::time_point start_ = clock.now();
  long frames_at_start_ = corio::detail::frame_balance();
};

corio::time_point now() { return corio::event_loop::current()->time(); }

// ---- generators used by the tests -----------------------------------------------------------------

async_generator<int> count_to(int n) {
  for (int i = 0; i < n; ++i)
    co_yield i;
}

async_generator<int> ticking(int n, corio::duration period) {
  for (int i = 0; i < n; ++i) {
    co_await corio::sleep(period);
    co_yield i;
  }
}

async_generator<int> flagged(int* started, int* finished) {
  ++*started;
  co_yield 1;
  ++*finished;
}

task<int> slow_square(int x) {
  co_await corio::sleep(500ms);
  co_return x* x;
}

task<int> instant(int x) { co_return x; }

async_generator<int> squares(int n) {
  for (int i = 0; i < n; ++i) {
    int sq = co_await slow_square(i);
    int same = co_await instant(sq);
    co_yield same;
  }
}

/// Adds one to every value of `inner`: a generator consuming another.
async_generator<int> plus_one(async_generator<int> inner) {
  while (auto v = co_await inner.next())
    co_yield *v + 1;
}

async_generator<int> doubled_slowly(async_generator<int> inner) {
  while (auto v = co_await inner.next()) {
    co_await corio::sleep(500ms);
    co_yield *v * 2;
  }
}

/// `depth` generators stacked on a leaf that sleeps 1 ms before each of its `n` values.
async_generator<int> tower(int depth, int n) {
  if (depth == 0) {
    for (int i = 0; i < n; ++i) {
      co_await corio::sleep(1ms);
      co_yield i;
    }
    co_return;
  }
  auto inner = tower(depth - 1, n);
  while (auto v = co_await inner.next())
    co_yield *v + 1;
}

async_generator<int> fails_after(int n, bool suspend) {
  for (int i = 0; i < n; ++i) {
    if (suspend)
      co_await corio::sleep(1s);
    co_yield i;
  }
  if (suspend)
    co_await corio::sleep(1s);
  throw std::runtime_error("boom");
}

template <class T> task<std::vector<T>> collect(async_generator<T> g) {
  std::vector<T> out;
  while (auto v = co_await g.next())
    out.push_back(std::move(*v));
  co_return out;
}

template <class T> task<std::vector<T>> collect_by_iterator(async_generator<T> g) {
  std::vector<T> out;
  // (void): g++ 12 rejects a bare co_await as a for statement's increment in a template.
  for (auto it = co_await g.begin(); it != g.end(); (void)co_await ++it)
    out.push_back(std::move(*it));
  co_return out;
}

// ---- values, laziness, iteration ------------------------------------------------------------------

TEST_F(AsyncGenerator, YieldsValuesInOrder) {
  EXPECT_EQ(run(collect(count_to(5))), (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(elapsed(), 0s);
}

task<void> next_past_the_end(std::vector<std::optional<int>>* out, bool* done) {
  auto g = count_to(2);
  for (int i = 0; i < 4; ++i) {
    auto v = co_await g.next();
    out->push_back(v);
  }
  *done = g.done();
}

TEST_F(AsyncGenerator, NextReturnsNulloptAtTheEndAndStaysThere) {
  std::vector<std::optional<int>> got;
  bool done = false;
  run(next_past_the_end(&got, &done));
  EXPECT_EQ(got, (std::vector<std::optional<int>>{0, 1, std::nullopt, std::nullopt}));
  EXPECT_TRUE(done);
}

task<void> lazy_main(int* started, int* finished, std::vector<int>* log) {
  auto g = flagged(started, finished);
  co_await corio::sleep(1s);
  log->push_back(*started); // 0: not started by creation, nor by time passing
  auto v = co_await g.next();
  log->push_back(*started);
  log->push_back(*finished); // 0: stopped at the co_yield
  log->push_back(v.value_or(-1));
  auto end = co_await g.next();
  log->push_back(*finished);
  log->push_back(end.has_value() ? 1 : 0);
}

TEST_F(AsyncGenerator, IsLazyUntilTheFirstNext) {
  int started = 0, finished = 0;
  std::vector<int> log;
  run(lazy_main(&started, &finished, &log));
  EXPECT_EQ(log, (std::vector<int>{0, 1, 0, 1, 1, 0}));
}

TEST_F(AsyncGenerator, NeverConsumedNeverRuns) {
  int started = 0, finished = 0;
  { auto g = flagged(&started, &finished); }
  EXPECT_EQ(started, 0);
  EXPECT_EQ(finished, 0);
}

TEST_F(AsyncGenerator, IteratesWithBeginAndIncrement) {
  EXPECT_EQ(run(collect_by_iterator(count_to(4))), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(run(collect_by_iterator(ticking(3, 1s))), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(elapsed(), 3s);
  EXPECT_TRUE(run(collect_by_iterator(count_to(0))).empty());
}

task<void> begin_semantics(std::vector<int>* log) {
  auto g = count_to(5);
  auto first = co_await g.next(); // 0, taken
  log->push_back(*first);
  auto it = co_await g.begin(); // the next value not taken yet: 1
  log->push_back(*it);
  auto again = co_await g.begin(); // does not advance
  log->push_back(*again);
  co_await ++it;
  log->push_back(*again);         // one position, shared: 2
  auto taken = co_await g.next(); // next() after an iterator: 3
  log->push_back(*taken);
  auto last = co_await g.begin(); // 3 was taken: resumes to 4
  log->push_back(*last);
  co_await ++last;
  log->push_back(last == g.end() ? 1 : 0);
  log->push_back(it == g.end() ? 1 : 0);
}

TEST_F(AsyncGenerator, BeginStartsOrReturnsTheCurrentValue) {
  std::vector<int> log;
  run(begin_semantics(&log));
  EXPECT_EQ(log, (std::vector<int>{0, 1, 1, 2, 3, 4, 1, 1}));
}

task<void> for_each_main(std::vector<int>* out) {
  auto push = [out](int v) { out->push_back(v); };
  co_await corio::for_each(ticking(2, 1s), push);
  auto slow_push = [out](int v) -> task<> {
    co_await corio::sleep(1s);
    out->push_back(v * 10);
  };
  co_await corio::for_each(count_to(3), slow_push);
  auto take_box = [out](std::unique_ptr<int> p) { out->push_back(*p); }; // by value: gets an rvalue
  auto boxes = []() -> async_generator<std::unique_ptr<int>> {
    co_yield std::make_unique<int>(7);
    co_yield std::make_unique<int>(8);
  };
  co_await corio::for_each(boxes(), take_box);
}

TEST_F(AsyncGenerator, ForEachCallsOrAwaitsTheFunction) {
  std::vector<int> out;
  run(for_each_main(&out));
  EXPECT_EQ(out, (std::vector<int>{0, 1, 0, 10, 20, 7, 8}));
  EXPECT_EQ(elapsed(), 5s); // 2 ticks of 1 s, then 3 awaited calls of 1 s
}

// ---- awaiting inside --------------------------------------------------------------------------------

task<void> record_times(async_generator<int> g, std::vector<std::pair<int, corio::duration>>* out) {
  const corio::time_point t0 = now();
  while (auto v = co_await g.next())
    out->emplace_back(*v, now() - t0);
}

TEST_F(AsyncGenerator, AwaitsInsideInExactVirtualTime) {
  std::vector<std::pair<int, corio::duration>> got;
  run(record_times(ticking(3, 1s), &got));
  using p = std::pair<int, corio::duration>;
  EXPECT_EQ(got, (std::vector<p>{p{0, 1s}, p{1, 2s}, p{2, 3s}}));
  EXPECT_EQ(elapsed(), 3s);
}

TEST_F(AsyncGenerator, AwaitsTasksInside) {
  EXPECT_EQ(run(collect(squares(4))), (std::vector<int>{0, 1, 4, 9}));
  EXPECT_EQ(elapsed(), 2s);
}

async_generator<corio::detail::task_state*> whoami() {
  co_yield corio::event_loop::current()->current_task();
  co_await corio::sleep(1ms);
  co_yield corio::event_loop::current()->current_task();
}

task<int> same_task_main() {
  corio::detail::task_state* me = corio::event_loop::current()->current_task();
  int same = 0;
  auto g = whoami();
  while (auto t = co_await g.next())
    same += *t == me ? 1 : 0;
  co_return same;
}

TEST_F(AsyncGenerator, BodyRunsAsTheConsumersTask) { EXPECT_EQ(run(same_task_main()), 2); }

task<void> ticker(int* ticks) {
  for (;;) {
    ++*ticks;
    co_await corio::sleep(0s);
  }
}

task<void> no_loop_trip(std::vector<int>* log) {
  int ticks = 0;
  auto t = corio::spawn(ticker(&ticks));
  co_await corio::sleep(0s); // the ticker runs once per loop iteration from now on
  co_await corio::sleep(0s);
  const int before = ticks;
  auto g = count_to(1000);
  int n = 0;
  while (auto v = co_await g.next())
    ++n;
  log->push_back(n);
  log->push_back(ticks - before); // 0: no yield went through the loop
  t.cancel();
  try {
    co_await t;
  } catch (const corio::cancelled_error&) {
    log->push_back(-1);
  }
}

TEST_F(AsyncGenerator, SynchronousYieldsDoNotGoThroughTheLoop) {
  std::vector<int> log;
  run(no_loop_trip(&log));
  EXPECT_EQ(log, (std::vector<int>{1000, 0, -1}));
}

task<void> log_ticks(async_generator<int> g, char name, std::vector<std::string>* log, corio::time_point t0) {
  while (auto v = co_await g.next()) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now() - t0).count();
    log->push_back(std::string(1, name) + std::to_string(*v) + "@" + std::to_string(ms));
  }
}

task<void> two_consumers(std::vector<std::string>* log) {
  auto a = corio::spawn(log_ticks(ticking(3, 1s), 'a', log, now()));
  auto b = corio::spawn(log_ticks(ticking(2, 1500ms), 'b', log, now()));
  co_await a;
  co_await b;
}

TEST_F(AsyncGenerator, TwoConsumersInterleaveInVirtualTime) {
  std::vector<std::string> log;
  run(two_consumers(&log));
  // At 3 s both timers are due; b's was scheduled first (at 1.5 s, a's at 2 s), so b goes first.
  EXPECT_EQ(log, (std::vector<std::string>{"a0@1000", "b0@1500", "a1@2000", "b1@3000", "a2@3000"}));
  EXPECT_EQ(elapsed(), 3s);
}

// ---- exceptions ---------------------------------------------------------------------------------------

struct failure_report {
  std::vector<int> got;
  std::string error;
  bool done_after = false;
  bool nullopt_after = false;
};

task<void> expect_failure(async_generator<int> g, failure_report* r) {
  try {
    while (auto v = co_await g.next())
      r->got.push_back(*v);
  } catch (const std::runtime_error& e) {
    r->error = e.what();
  }
  r->done_after = g.done();
  auto again = co_await g.next();
  r->nullopt_after = !again.has_value();
}

TEST_F(AsyncGenerator, ExceptionPropagatesAtNextThenTheGeneratorIsFinished) {
  for (bool suspend : {false, true}) {
    SCOPED_TRACE(suspend ? "after suspending" : "synchronous");
    failure_report r;
    run(expect_failure(fails_after(2, suspend), &r));
    EXPECT_EQ(r.got, (std::vector<int>{0, 1}));
    EXPECT_EQ(r.error, "boom");
    EXPECT_TRUE(r.done_after);
    EXPECT_TRUE(r.nullopt_after);
  }
  EXPECT_EQ(elapsed(), 3s);
}

TEST_F(AsyncGenerator, ExceptionBeforeTheFirstYield) {
  failure_report r;
  run(expect_failure(fails_after(0, false), &r));
  EXPECT_TRUE(r.got.empty());
  EXPECT_EQ(r.error, "boom");
  EXPECT_TRUE(r.done_after);
}

TEST_F(AsyncGenerator, ExceptionPropagatesThroughTheIteratorAndNesting) {
  EXPECT_THROW(run(collect_by_iterator(fails_after(2, true))), std::runtime_error);
  EXPECT_THROW(run(collect(plus_one(fails_after(2, true)))), std::runtime_error);
  EXPECT_THROW(run(collect_by_iterator(fails_after(0, false))), std::runtime_error);
}

// ---- lifetimes ----------------------------------------------------------------------------------------

async_generator<int> holds_locals(int* reached_end) {
  counted a(1);
  co_yield a.value;
  counted b(2);
  co_await corio::sleep(1s);
  co_yield b.value;
  *reached_end = 1;
}

task<void> destroy_early(int* reached_end, std::vector<int>* alive) {
  {
    auto g = holds_locals(reached_end);
    co_await g.next();
    alive->push_back(counted::alive()); // a
  }                                     // destroyed at its first co_yield
  alive->push_back(counted::alive());
  {
    auto g = holds_locals(reached_end);
    co_await g.next();
    co_await g.next();
    alive->push_back(counted::alive()); // a and b
  }                                     // destroyed at its second co_yield, after a suspension
  alive->push_back(counted::alive());
}

TEST_F(AsyncGenerator, EarlyDestructionDestroysLocalsAndRunsNothingMore) {
  int reached_end = 0;
  std::vector<int> alive;
  run(destroy_early(&reached_end, &alive));
  EXPECT_EQ(alive, (std::vector<int>{1, 0, 2, 0}));
  EXPECT_EQ(reached_end, 0);
  EXPECT_EQ(counted::constructed, 3);
  EXPECT_EQ(counted::destroyed, 3);
}

task<void> consume_forever(async_generator<int> g) {
  while (auto v = co_await g.next()) {
  }
}

async_generator<int> sleeps_with_locals() {
  counted local(1);
  co_await corio::sleep(1h);
  co_yield local.value;
}

task<void> sleep_for(corio::duration d) { co_await corio::sleep(d); }

TEST_F(AsyncGenerator, LoopTeardownDestroysAGeneratorSuspendedInAnAwait) {
  {
    corio::event_loop loop(corio::event_loop::options{.clock = &clock});
    auto consumer = corio::spawn(loop, consume_forever(sleeps_with_locals()));
    corio::run_until_complete(loop, sleep_for(1s)); // the consumer is now in the generator's sleep
    EXPECT_EQ(counted::alive(), 1);
    EXPECT_FALSE(consumer.done());
  } // the loop abandons the consumer: its frame, then the generator's, are destroyed
  EXPECT_EQ(counted::alive(), 0);
}

async_generator<std::unique_ptr<int>> boxes(int n) {
  for (int i = 0; i < n; ++i) {
    co_yield std::make_unique<int>(i);
    auto p = std::make_unique<int>(i + 100);
    co_yield std::move(p);
  }
}

task<std::vector<int>> unbox(async_generator<std::unique_ptr<int>> g, bool by_iterator) {
  std::vector<int> out;
  if (by_iterator) {
    for (auto it = co_await g.begin(); it != g.end(); co_await ++it) {
      std::unique_ptr<int> p = std::move(*it);
      out.push_back(*p);
    }
  } else {
    while (auto p = co_await g.next())
      out.push_back(**p);
  }
  co_return out;
}

TEST_F(AsyncGenerator, MoveOnlyValues) {
  EXPECT_EQ(run(unbox(boxes(2), false)), (std::vector<int>{0, 100, 1, 101}));
  EXPECT_EQ(run(unbox(boxes(2), true)), (std::vector<int>{0, 100, 1, 101}));
}

async_generator<counted> lvalues_and_rvalues(std::vector<int>* log) {
  counted a(1);
  co_yield a; // an lvalue: copied, so the consumer's move leaves `a` alone
  log->push_back(a.moved_from ? 1 : 0);
  log->push_back(a.value);
  counted b(2);
  co_yield std::move(b); // an rvalue: handed out in place, and the consumer moves from it
  log->push_back(b.moved_from ? 1 : 0);
}

task<void> take_counted(std::vector<int>* log) {
  auto g = lvalues_and_rvalues(log);
  while (auto v = co_await g.next())
    log->push_back(v->value * 10);
}

TEST_F(AsyncGenerator, YieldedLvaluesAreCopiedNotMovedFrom) {
  std::vector<int> log;
  run(take_counted(&log));
  EXPECT_EQ(log, (std::vector<int>{10, 0, 1, 20, 1}));
  EXPECT_EQ(counted::copies, 1);
}

async_generator<std::string> converted() {
  co_yield "literal"; // const char[8] -> std::string
  std::string s = "lvalue";
  co_yield s;
  co_yield s + "!";
}

async_generator<long> widened() {
  co_yield 1; // int -> long
  short s = 2;
  co_yield s;
}

TEST_F(AsyncGenerator, YieldsValuesConvertibleToT) {
  EXPECT_EQ(run(collect(converted())), (std::vector<std::string>{"literal", "lvalue", "lvalue!"}));
  EXPECT_EQ(run(collect(widened())), (std::vector<long>{1, 2}));
}

task<std::vector<int>> moved_generator() {
  std::vector<int> out;
  auto a = count_to(4);
  auto v = co_await a.next();
  out.push_back(*v);
  async_generator<int> b = std::move(a);
  out.push_back(a.done() ? 1 : 0); // moved-from: empty, done
  auto none = co_await a.next();
  out.push_back(none.has_value() ? 1 : 0);
  async_generator<int> c;
  c = std::move(b);
  while (auto w = co_await c.next())
    out.push_back(*w);
  co_return out;
}

TEST_F(AsyncGenerator, MovedGeneratorsContinueWhereTheyWere) {
  EXPECT_EQ(run(moved_generator()), (std::vector<int>{0, 1, 0, 1, 2, 3}));
}

task<std::vector<int>> empty_generator() {
  std::vector<int> out;
  async_generator<int> g;
  out.push_back(g.done() ? 1 : 0);
  auto v = co_await g.next();
  out.push_back(v.has_value() ? 1 : 0);
  auto it = co_await g.begin();
  out.push_back(it == g.end() ? 1 : 0);
  co_await g.aclose();
  co_return out;
}

TEST_F(AsyncGenerator, EmptyGenerator) { EXPECT_EQ(run(empty_generator()), (std::vector<int>{1, 0, 1})); }

// ---- stack depth ----------------------------------------------------------------------------------------

async_generator<std::uintptr_t> stack_probe(int n) {
  for (int i = 0; i < n; ++i)
    co_yield reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
}

struct stack_report {
  long count = 0;
  std::uintptr_t lo = UINTPTR_MAX;
  std::uintptr_t hi = 0;
};

task<void> probe_stack(async_generator<std::uintptr_t> g, stack_report* r) {
  while (auto sp = co_await g.next()) {
    ++r->count;
    r->lo = std::min(r->lo, *sp);
    r->hi = std::max(r->hi, *sp);
  }
}

TEST_F(AsyncGenerator, MillionSynchronousYieldsKeepTheStackFlat) {
  stack_report r;
  run(probe_stack(stack_probe(1'000'000), &r));
  EXPECT_EQ(r.count, 1'000'000);
  EXPECT_LT(r.hi - r.lo, 1024u); // the body runs at the same depth every time
}

async_generator<int> awaits_instant_tasks(int n) {
  for (int i = 0; i < n; ++i) {
    int v = co_await instant(i);
    co_yield v;
  }
}

task<long long> sum_all(async_generator<int> g) {
  long long sum = 0;
  for (auto it = co_await g.begin(); it != g.end(); co_await ++it)
    sum += *it;
  co_return sum;
}

TEST_F(AsyncGenerator, MillionSynchronousYieldsThroughNestingAndTasks) {
  constexpr int n = 1'000'000;
  constexpr long long expected = static_cast<long long>(n) * (n - 1) / 2 + 2LL * n;
  EXPECT_EQ(run(sum_all(plus_one(plus_one(awaits_instant_tasks(n))))), expected);
}

// ---- nesting --------------------------------------------------------------------------------------------

TEST_F(AsyncGenerator, NestedGeneratorsBothAwaiting) {
  std::vector<std::pair<int, corio::duration>> got;
  run(record_times(doubled_slowly(ticking(3, 1s)), &got));
  using p = std::pair<int, corio::duration>;
  EXPECT_EQ(got, (std::vector<p>{p{0, 1500ms}, p{2, 3s}, p{4, 4500ms}}));
  EXPECT_EQ(elapsed(), 4500ms);
}

TEST_F(AsyncGenerator, ThousandNestedGenerators) {
  EXPECT_EQ(run(collect(tower(1000, 3))), (std::vector<int>{1000, 1001, 1002}));
  EXPECT_EQ(elapsed(), 3ms);
}

task<std::vector<int>> destroy_nested_early() {
  std::vector<int> out;
  {
    auto g = plus_one(plus_one(holds_locals(nullptr)));
    auto v = co_await g.next();
    out.push_back(*v);
    out.push_back(counted::alive());
  }
  out.push_back(counted::alive());
  co_return out;
}

TEST_F(AsyncGenerator, DestroyingTheOuterGeneratorDestroysTheInnerOnes) {
  EXPECT_EQ(run(destroy_nested_early()), (std::vector<int>{3, 1, 0}));
}

// ---- cancellation -----------------------------------------------------------------------------------------

struct cancel_report {
  std::vector<int> got;
  bool generator_saw_cancel = false;
  bool consumer_saw_cancel = false;
  bool done_after = false;
  bool consumer_cancelled = false;
  corio::duration at{};
};

async_generator<int> sleepy(cancel_report* r, bool through_task) {
  counted guard(7);
  try {
    for (int i = 0;; ++i) {
      if (through_task)
        i = co_await slow_square(i) - i * i + i; // a task that sleeps 500 ms
      co_await corio::sleep(through_task ? 500ms : 1s);
      co_yield i;
    }
  } catch (const corio::cancelled_error&) {
    r->generator_saw_cancel = true;
    throw;
  }
}

task<void> consume_until_cancelled(async_generator<int> g, cancel_report* r, corio::time_point t0) {
  try {
    while (auto v = co_await g.next())
      r->got.push_back(*v);
  } catch (const corio::cancelled_error&) {
    r->consumer_saw_cancel = true;
    r->done_after = g.done();
    r->at = now() - t0;
    throw;
  }
}

task<void> cancel_main(cancel_report* r, bool through_task, corio::duration cancel_after) {
  auto consumer = corio::spawn(consume_until_cancelled(sleepy(r, through_task), r, now()));
  co_await corio::sleep(cancel_after);
  EXPECT_EQ(counted::alive(), 1);
  consumer.cancel();
  try {
    co_await consumer;
  } catch (const corio::cancelled_error&) {
    r->consumer_cancelled = consumer.cancelled();
  }
}

// A timeout scope open across a co_yield belongs to the task that drove the body there. That task may be
// gone when the deadline passes: the scope keeps its state alive (ASan saw the timer write to freed
// memory), interrupts nothing, and the task consuming the generator later is not the one interrupted.
async_generator<int> yields_inside_a_timeout() {
  auto deadline = corio::timeout(5s);
  co_yield 1;
  co_yield 2;
}
task<int> take_one(async_generator<int>* g) { co_return *co_await g->next(); }
task<std::vector<int>> timeout_outliving_its_task() {
  auto g = yields_inside_a_timeout();
  std::vector<int> got;
  got.push_back(co_await corio::spawn(take_one(&g))); // that task ends, its handle goes
  co_await corio::sleep(10s);                         // the scope's deadline passes meanwhile
  auto second = co_await g.next();
  got.push_back(second.value_or(-1));
  co_return got;
}
TEST_F(AsyncGenerator, ATimeoutScopeAcrossAYieldMayOutliveItsTask) {
  struct no_recycling { // so that ASan sees a task state freed too early
    bool was = corio::detail::set_frame_recycling(false);
    ~no_recycling() { corio::detail::set_frame_recycling(was); }
  } guard;
  EXPECT_EQ(run(timeout_outliving_its_task()), (std::vector<int>{1, 2}));
}

// A generator kept past corio::run() with a timeout scope open in its body, destroyed later: the scope's
// destructor cancels its timer, whose loop is gone (ASan saw it read the loop's freed timer nodes).
// Nothing else the scope's destructor does touches the loop; its task's state was kept for it.
async_generator<int> counted_inside_a_timeout() {
  counted c;
  auto deadline = corio::timeout(1h);
  co_yield 1;
  co_yield 2;
}
task<async_generator<int>> started_generator() {
  auto g = counted_inside_a_timeout();
  auto first = co_await g.next();
  EXPECT_EQ(first, std::optional<int>(1));
  co_return std::move(g);
}
TEST_F(AsyncGenerator, ATimeoutScopeMayOutliveItsLoop) {
  struct no_recycling { // so that ASan sees a task state freed too early
    bool was = corio::detail::set_frame_recycling(false);
    ~no_recycling() { corio::detail::set_frame_recycling(was); }
  } guard;
  std::optional<async_generator<int>> g(run(started_generator()));
  EXPECT_EQ(counted::alive(), 1);
  g.reset(); // the scope's destructor runs now, its loop gone
  EXPECT_EQ(counted::alive(), 0);
}

TEST_F(AsyncGenerator, CancellingTheConsumerRaisesInsideTheSleepingGenerator) {
  cancel_report r;
  run(cancel_main(&r, false, 2500ms));
  EXPECT_EQ(r.got, (std::vector<int>{0, 1}));
  EXPECT_TRUE(r.generator_saw_cancel);
  EXPECT_TRUE(r.consumer_saw_cancel);
  EXPECT_TRUE(r.done_after);
  EXPECT_TRUE(r.consumer_cancelled);
  EXPECT_EQ(r.at, 2500ms);
  EXPECT_EQ(counted::alive(), 0); // the generator's local went with the cancellation
}

TEST_F(AsyncGenerator, CancellingTheConsumerRaisesInsideATaskTheGeneratorAwaits) {
  cancel_report r;
  run(cancel_main(&r, true, 2250ms)); // in the task's sleep of the third value
  EXPECT_EQ(r.got, (std::vector<int>{0, 1}));
  EXPECT_TRUE(r.generator_saw_cancel);
  EXPECT_TRUE(r.consumer_saw_cancel);
  EXPECT_TRUE(r.done_after);
  EXPECT_TRUE(r.consumer_cancelled);
  EXPECT_EQ(r.at, 2250ms);
}

task<void> cancel_nested_main(cancel_report* r) {
  auto consumer = corio::spawn(consume_until_cancelled(plus_one(sleepy(r, false)), r, now()));
  co_await corio::sleep(1500ms);
  consumer.cancel();
  try {
    co_await consumer;
  } catch (const corio::cancelled_error&) {
    r->consumer_cancelled = consumer.cancelled();
  }
}

TEST_F(AsyncGenerator, CancellationReachesTheInnermostGenerator) {
  cancel_report r;
  run(cancel_nested_main(&r));
  EXPECT_EQ(r.got, (std::vector<int>{1}));
  EXPECT_TRUE(r.generator_saw_cancel);
  EXPECT_TRUE(r.consumer_saw_cancel);
  EXPECT_TRUE(r.consumer_cancelled);
  EXPECT_EQ(r.at, 1500ms);
}

// ---- re-entrancy ------------------------------------------------------------------------------------------

task<int> take_next(async_generator<int>* g) {
  auto v = co_await g->next();
  co_return v.value_or(-1);
}

task<std::vector<int>> reenter_from_another_task() {
  std::vector<int> out;
  auto g = ticking(3, 1s);
  auto first = corio::spawn(take_next(&g));
  co_await corio::sleep(500ms); // `first` is suspended in the generator's sleep
  out.push_back(g.running() ? 1 : 0);
  try {
    auto v = co_await g.next();
    out.push_back(v.value_or(-2));
  } catch (const corio::already_executing_error&) {
    out.push_back(-1);
  }
  int v = co_await first;
  out.push_back(v);
  out.push_back(g.running() ? 1 : 0);
  auto w = co_await g.next(); // fine again
  out.push_back(w.value_or(-3));
  co_return out;
}

TEST_F(AsyncGenerator, NextWhileANextIsInFlightThrows) {
  EXPECT_EQ(run(reenter_from_another_task()), (std::vector<int>{1, -1, 0, 0, 1}));
}

async_generator<int> reenters_itself(async_generator<int>** self) {
  co_yield 1;
  auto v = co_await (*self)->next();
  co_yield v.value_or(-1);
}

task<std::vector<int>> reenter_from_the_body() {
  std::vector<int> out;
  async_generator<int>* self = nullptr;
  auto g = reenters_itself(&self);
  self = &g;
  auto v = co_await g.next();
  out.push_back(*v);
  try {
    v = co_await g.next();
    out.push_back(v.value_or(-2));
  } catch (const corio::already_executing_error&) {
    out.push_back(-1);
  }
  out.push_back(g.done() ? 1 : 0);
  co_return out;
}

TEST_F(AsyncGenerator, NextFromItsOwnBodyThrows) {
  EXPECT_EQ(run(reenter_from_the_body()), (std::vector<int>{1, -1, 1}));
}

// ---- aclose -------------------------------------------------------------------------------------------------

struct close_report {
  bool exit_seen = false;
  bool cleaned = false;
  corio::duration cleaned_at{};
};

async_generator<int> closable(close_report* r, corio::time_point t0) {
  counted guard(1);
  bool exiting = false;
  try {
    for (int i = 0;; ++i)
      co_yield i;
  } catch (const corio::generator_exit&) {
    exiting = true; // no co_await in a handler: note it, clean up below
  }
  if (exiting) {
    r->exit_seen = true;
    co_await corio::sleep(1s); // asynchronous cleanup
    r->cleaned = true;
    r->cleaned_at = now() - t0;
  }
}

task<std::vector<int>> close_main(close_report* r) {
  std::vector<int> out;
  auto g = closable(r, now());
  auto a = co_await g.next();
  auto b = co_await g.next();
  out.push_back(*a);
  out.push_back(*b);
  out.push_back(counted::alive());
  co_await g.aclose();
  out.push_back(counted::alive());
  out.push_back(g.done() ? 1 : 0);
  auto c = co_await g.next();
  out.push_back(c.has_value() ? 1 : 0);
  co_await g.aclose(); // finished: nothing happens
  co_return out;
}

TEST_F(AsyncGenerator, AcloseRaisesGeneratorExitAndAwaitsTheCleanup) {
  close_report r;
  EXPECT_EQ(run(close_main(&r)), (std::vector<int>{0, 1, 1, 0, 1, 0}));
  EXPECT_TRUE(r.exit_seen);
  EXPECT_TRUE(r.cleaned);
  EXPECT_EQ(r.cleaned_at, 1s);
  EXPECT_EQ(elapsed(), 1s);
}

task<std::vector<int>> close_unstarted() {
  std::vector<int> out;
  int started = 0, finished = 0;
  auto g = flagged(&started, &finished);
  co_await g.aclose();
  out.push_back(g.done() ? 1 : 0);
  auto v = co_await g.next();
  out.push_back(v.has_value() ? 1 : 0);
  out.push_back(started);
  co_return out;
}

TEST_F(AsyncGenerator, AcloseBeforeStartingNeverRunsTheBody) {
  EXPECT_EQ(run(close_unstarted()), (std::vector<int>{1, 0, 0}));
}

async_generator<int> ignores_exit() {
  counted guard(1);
  for (;;) {
    try {
      co_yield 1;
    } catch (const corio::generator_exit&) {
    }
  }
}

async_generator<int> fails_on_close() {
  try {
    co_yield 1;
  } catch (const corio::generator_exit&) {
    throw std::runtime_error("cleanup failed");
  }
}

async_generator<int> rethrows_exit() { co_yield 1; }

task<std::vector<int>> close_errors() {
  std::vector<int> out;
  {
    auto g = ignores_exit();
    co_await g.next();
    try {
      co_await g.aclose();
      out.push_back(0);
    } catch (const corio::ignored_exit_error&) {
      out.push_back(1);
    }
    out.push_back(g.done() ? 1 : 0);
    auto w = co_await g.next();
    out.push_back(w.has_value() ? 1 : 0);
  }
  {
    auto g = fails_on_close();
    co_await g.next();
    try {
      co_await g.aclose();
      out.push_back(0);
    } catch (const std::runtime_error&) {
      out.push_back(2);
    }
    out.push_back(g.done() ? 1 : 0);
  }
  {
    auto g = rethrows_exit(); // generator_exit escapes the body: a normal close
    co_await g.next();
    co_await g.aclose();
    out.push_back(g.done() ? 3 : 0);
  }
  co_return out;
}

TEST_F(AsyncGenerator, AcloseReportsIgnoredExitsAndCleanupErrors) {
  EXPECT_EQ(run(close_errors()), (std::vector<int>{1, 1, 0, 2, 1, 3}));
}

// ---- frames --------------------------------------------------------------------------------------------------

task<long> many_generators() {
  long sum = 0;
  for (int i = 0; i < 1000; ++i) {
    auto a = count_to(i % 5);       // run to the end
    auto b = fails_after(1, false); // fails
    auto c = ticking(3, 1ms);       // abandoned after one value
    auto d = count_to(3);           // never started
    while (auto v = co_await a.next())
      sum += *v;
    try {
      while (auto v = co_await b.next())
        sum += *v;
    } catch (const std::runtime_error&) {
      ++sum;
    }
    auto first = co_await c.next();
    sum += *first;
  }
  co_return sum;
}

TEST_F(AsyncGenerator, FramesAreAllFreed) {
  const long before = corio::detail::frame_balance();
  EXPECT_EQ(run(many_generators()), 200L * (0 + 0 + 1 + 3 + 6) + 1000L);
  EXPECT_EQ(corio::detail::frame_balance(), before);
}

} // namespace
