// corio::gather: results in order, concurrency, first exception, return_exceptions, ranges, cancellation.
#include <corio/gather.hpp>
#include <corio/outcome.hpp>
#include <corio/run.hpp>
#include <corio/shield.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/testing/mock_clock.hpp>
#include <corio/this_task.hpp>
#include <corio/timeout.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "counted.hpp"
#include "loop_fixture.hpp"
#include "other_loop.hpp"

using namespace std::chrono_literals;
using corio::join_handle;
using corio::none_t;
using corio::outcome;
using corio::task;
using corio::testing::after;
using corio::testing::counted;
using corio::testing::fail_after;
using corio::testing::mock_clock;
using corio::testing::run_mock;

namespace {

task<std::string> text_after(corio::duration d, std::string s) {
  co_await corio::sleep(d);
  co_return s;
}
task<> nothing_after(corio::duration d, int* ran) {
  co_await corio::sleep(d);
  ++*ran;
}
task<std::unique_ptr<int>> boxed_after(corio::duration d, int v) {
  co_await corio::sleep(d);
  co_return std::make_unique<int>(v);
}
/// Sleeps `d`; logs "<name> done" or "<name> cancelled".
task<int> logged(corio::duration d, std::string name, std::vector<std::string>* log) {
  try {
    co_await corio::sleep(d);
  } catch (const corio::cancelled_error&) {
    log->push_back(name + " cancelled");
    throw;
  }
  log->push_back(name + " done");
  co_return 1;
}
/// Sleeps `d`; when cancelled, cleans up for `cleanup` (a wait) and then re-raises.
task<int> slow_to_cancel(corio::duration d, corio::duration cleanup, std::vector<std::string>* log) {
  bool cancelled = false;
  try {
    co_await corio::sleep(d);
  } catch (const corio::cancelled_error&) {
    cancelled = true; // never co_await inside a handler (HAZARDS.md)
  }
  if (!cancelled)
    co_return 2;
  corio::uncancel();
  co_await corio::sleep(cleanup);
  log->push_back("cleanup finished");
  throw corio::cancelled_error();
}

std::string message(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  }
}

TEST(Gather, ResultsInArgumentOrderAtTheLongestDuration) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    auto [a, b, d] = co_await corio::gather(after(1s, 1), after(3s, 3), after(2s, 2));
    EXPECT_EQ(c->now() - t0, 3s); // concurrently: not 6 s
    EXPECT_EQ(a, 1);
    EXPECT_EQ(b, 3);
    EXPECT_EQ(d, 2);
  });
}

TEST(Gather, MixesTasksHandlesAndVoid) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    int ran = 0;
    join_handle<std::string> h = corio::spawn(text_after(2s, "two"));
    std::tuple<int, std::string, none_t> r = co_await corio::gather(after(1s, 1), h, nothing_after(1500ms, &ran));
    EXPECT_EQ(c->now() - t0, 2s);
    EXPECT_EQ(std::get<0>(r), 1);
    EXPECT_EQ(std::get<1>(r), "two");
    EXPECT_EQ(ran, 1);
    EXPECT_EQ(h.result(), "two"); // a handle passed in keeps its result
  });
}

TEST(Gather, EmptyCompletesAtOnce) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::tuple<> r = co_await corio::gather();
    (void)r;
    std::vector<task<int>> none;
    std::vector<int> v = co_await corio::gather(std::move(none));
    EXPECT_TRUE(v.empty());
    std::vector<join_handle<int>> no_handles;
    std::vector<outcome<int>> o = co_await corio::gather(corio::return_exceptions, std::move(no_handles));
    EXPECT_TRUE(o.empty());
    std::tuple<> r2 = co_await corio::gather(corio::return_exceptions);
    (void)r2;
    EXPECT_EQ(c->now(), t0);
  });
}

TEST(Gather, FirstExceptionIsRaisedAtOnceAndTheOthersKeepRunning) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<std::string> log;
    bool raised = false;
    try {
      co_await corio::gather(logged(3s, "slow", &log), fail_after(1s, "boom"), logged(500ms, "fast", &log));
    } catch (const std::runtime_error& e) {
      raised = true;
      EXPECT_STREQ(e.what(), "boom");
    }
    EXPECT_TRUE(raised);
    EXPECT_EQ(c->now() - t0, 1s); // raised as soon as it happened
    EXPECT_EQ(log, std::vector<std::string>{"fast done"});
    co_await corio::sleep(5s);
    EXPECT_EQ(log, (std::vector<std::string>{"fast done", "slow done"})); // not cancelled
  });
}

TEST(Gather, FirstExceptionInCompletionOrderNotArgumentOrder) {
  corio::testing::leak_check leaks;
  testing::internal::CaptureStderr();
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::string what;
    try {
      co_await corio::gather(fail_after(2s, "second"), fail_after(1s, "first"));
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    EXPECT_EQ(what, "first");
    EXPECT_EQ(c->now() - t0, 1s);
    co_await corio::sleep(2s); // the other one fails too; nobody retrieves it
  });
  // As documented: an exception raised after the gather raised is reported, not silently lost.
  EXPECT_NE(testing::internal::GetCapturedStderr().find("exception was never retrieved: second"), std::string::npos);
}

TEST(Gather, ReturnExceptionsCollectsEverything) {
  corio::testing::leak_check leaks;
  testing::internal::CaptureStderr();
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    int ran = 0;
    auto [a, b, d] = co_await corio::gather(corio::return_exceptions, after(1s, 7), fail_after(2s, "bad"),
                                            nothing_after(500ms, &ran));
    EXPECT_EQ(c->now() - t0, 2s); // waits for every one
    static_assert(std::is_same_v<decltype(a), outcome<int>>);
    static_assert(std::is_same_v<decltype(d), outcome<none_t>>);
    EXPECT_TRUE(a.has_value());
    EXPECT_EQ(a.value(), 7);
    EXPECT_EQ(*a, 7);
    EXPECT_TRUE(b.has_exception());
    EXPECT_FALSE(b);
    EXPECT_EQ(message(b.exception()), "bad");
    EXPECT_THROW(b.value(), std::runtime_error);
    EXPECT_FALSE(b.cancelled());
    EXPECT_TRUE(d.has_value());
    EXPECT_EQ(ran, 1);
  });
  // Every exception was retrieved: nothing is reported.
  EXPECT_EQ(testing::internal::GetCapturedStderr().find("never retrieved"), std::string::npos);
}

TEST(Gather, ReturnExceptionsReportsACancelledChild) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    join_handle<int> victim = corio::spawn(after(1h, 0));
    join_handle<int> killer = corio::spawn([](join_handle<int> v) -> task<int> {
      co_await corio::sleep(1s);
      v.cancel();
      co_return 0;
    }(victim));
    auto [v, k] = co_await corio::gather(corio::return_exceptions, victim, killer);
    EXPECT_EQ(c->now() - t0, 1s);
    EXPECT_TRUE(v.cancelled());
    EXPECT_TRUE(k.has_value());
    EXPECT_EQ(corio::cancelling(), 0); // the awaiting task was not cancelled
  });
}

TEST(Gather, AChildCancelledByAnotherTaskRaisesCancelledErrorButTheAwaiterIsNotCancelled) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    join_handle<int> victim = corio::spawn(after(1h, 0));
    victim.cancel();
    bool raised = false;
    try {
      co_await corio::gather(victim, after(2s, 2));
    } catch (const corio::cancelled_error&) {
      raised = true;
    }
    EXPECT_TRUE(raised);
    EXPECT_EQ(c->now() - t0, 0s);
    EXPECT_EQ(corio::cancelling(), 0);
    co_await corio::sleep(3s); // still able to await: no uncancel() needed
  });
}

TEST(Gather, RangeOfTasksAndOfHandles) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<task<int>> tasks;
    for (int i = 0; i < 10; ++i)
      tasks.push_back(after(std::chrono::seconds((i * 7) % 10), i));
    std::vector<int> r = co_await corio::gather(std::move(tasks));
    EXPECT_EQ(c->now() - t0, 9s);
    EXPECT_EQ(r, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));

    std::vector<join_handle<int>> handles;
    handles.push_back(corio::spawn(after(2s, 20)));
    handles.push_back(corio::spawn(after(1s, 10)));
    std::vector<int> r2 = co_await corio::gather(handles);
    EXPECT_EQ(c->now() - t0, 11s);
    EXPECT_EQ(r2, (std::vector<int>{20, 10}));

    int ran = 0;
    std::vector<task<>> voids;
    voids.push_back(nothing_after(1s, &ran));
    voids.push_back(nothing_after(2s, &ran));
    std::vector<none_t> r3 = co_await corio::gather(std::move(voids));
    EXPECT_EQ(r3.size(), 2u);
    EXPECT_EQ(ran, 2);
  });
}

TEST(Gather, RangeWithReturnExceptions) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<task<int>> tasks;
    tasks.push_back(after(1s, 1));
    tasks.push_back(fail_after(3s, "three"));
    tasks.push_back(after(2s, 2));
    std::vector<outcome<int>> r = co_await corio::gather(corio::return_exceptions, std::move(tasks));
    EXPECT_EQ(c->now() - t0, 3s);
    EXPECT_EQ(r.size(), 3u);
    if (r.size() != 3)
      co_return;
    EXPECT_EQ(r[0].value(), 1);
    EXPECT_EQ(message(r[1].exception()), "three");
    EXPECT_EQ(r[2].value(), 2);

    std::vector<task<int>> failing;
    failing.push_back(after(1s, 1));
    failing.push_back(fail_after(1s, "one"));
    std::string what;
    try {
      co_await corio::gather(std::move(failing));
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    EXPECT_EQ(what, "one");
  });
}

TEST(Gather, ManyTasks) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<task<int>> tasks;
    for (int i = 0; i < 10'000; ++i)
      tasks.push_back(after(std::chrono::milliseconds(i % 100), i));
    std::vector<int> r = co_await corio::gather(std::move(tasks));
    EXPECT_EQ(c->now() - t0, 99ms);
    long sum = 0;
    for (int i = 0; i < 10'000; ++i) {
      EXPECT_EQ(r[static_cast<std::size_t>(i)], i);
      sum += r[static_cast<std::size_t>(i)];
    }
    EXPECT_EQ(sum, 10'000L * 9'999 / 2);
  });
}

TEST(Gather, MoveOnlyResults) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    auto [p, q] = co_await corio::gather(boxed_after(1s, 1), boxed_after(2s, 2));
    EXPECT_EQ(*p, 1);
    EXPECT_EQ(*q, 2);
    std::vector<task<std::unique_ptr<int>>> tasks;
    tasks.push_back(boxed_after(1s, 3));
    tasks.push_back(boxed_after(1s, 4));
    std::vector<std::unique_ptr<int>> v = co_await corio::gather(std::move(tasks));
    EXPECT_EQ(*v[0], 3);
    EXPECT_EQ(*v[1], 4);
    auto [o] = co_await corio::gather(corio::return_exceptions, boxed_after(1s, 5));
    std::unique_ptr<int> taken = std::move(o).value();
    EXPECT_EQ(*taken, 5);
    EXPECT_EQ(c->now() - t0, 4s);
  });
}

TEST(Gather, CountedValuesAreAllDestroyed) {
  corio::testing::leak_check leaks;
  corio::testing::lifetime_check lives;
  run_mock([](mock_clock*) -> task<> {
    auto make = [](int v) -> task<counted> {
      co_await corio::sleep(1s);
      co_return counted(v);
    };
    auto [a, b] = co_await corio::gather(make(1), make(2));
    EXPECT_EQ(a.value + b.value, 3);
    auto [o] = co_await corio::gather(corio::return_exceptions, make(3));
    EXPECT_EQ(o->value, 3);
  });
  EXPECT_EQ(lives.alive(), 0);
}

TEST(Gather, ReferenceResults) {
  corio::testing::leak_check leaks;
  static int target = 0;
  run_mock([](mock_clock*) -> task<> {
    auto ref = []() -> task<int&> {
      co_await corio::sleep(1s);
      co_return target;
    };
    auto [r] = co_await corio::gather(ref());
    r = 42;
    EXPECT_EQ(target, 42);
    std::vector<task<int&>> tasks;
    tasks.push_back(ref());
    std::vector<std::reference_wrapper<int>> v = co_await corio::gather(std::move(tasks));
    v[0].get() = 7;
    EXPECT_EQ(target, 7);
    auto [o] = co_await corio::gather(corio::return_exceptions, ref());
    EXPECT_EQ(&o.value(), &target);
  });
}

TEST(Gather, AlreadyFinishedHandlesDoNotSuspend) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    join_handle<int> a = corio::spawn(after(1s, 1));
    join_handle<int> b = corio::spawn(fail_after(1s, "b"));
    co_await corio::sleep(2s);
    const auto t0 = c->now();
    auto [x, y] = co_await corio::gather(corio::return_exceptions, a, b);
    EXPECT_EQ(x.value(), 1);
    EXPECT_EQ(message(y.exception()), "b");
    EXPECT_THROW(co_await corio::gather(a, b), std::runtime_error);
    EXPECT_EQ(c->now(), t0);
  });
}

TEST(Gather, CancellingTheAwaiterCancelsEveryChildAndWaitsForThem) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<std::string> log;
    join_handle<int> outside = corio::spawn(logged(1h, "handle", &log));
    auto outer = corio::spawn([](std::vector<std::string>* l, join_handle<int> h) -> task<> {
      co_await corio::gather(logged(1h, "a", l), slow_to_cancel(1h, 2s, l), h);
      l->push_back("not reached");
    }(&log, outside));
    co_await corio::sleep(1s);
    outer.cancel();
    EXPECT_THROW(co_await outer, corio::cancelled_error);
    // The gather waited for the slow child's 2 s of cleanup before raising.
    EXPECT_EQ(c->now() - t0, 3s);
    // Cancelled in argument order; they finish in that order too.
    EXPECT_EQ(log, (std::vector<std::string>{"a cancelled", "handle cancelled", "cleanup finished"}));
    EXPECT_TRUE(outside.cancelled()); // a handle passed in is cancelled too
    EXPECT_EQ(corio::event_loop::current()->task_count(), 1u);
  });
}

TEST(Gather, CancellingTheAwaiterWithReturnExceptionsStillRaisesCancelled) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<std::string> log;
    auto outer = corio::spawn([](std::vector<std::string>* l) -> task<> {
      co_await corio::gather(corio::return_exceptions, logged(1h, "a", l), logged(1h, "b", l));
      l->push_back("not reached");
    }(&log));
    co_await corio::sleep(1s);
    outer.cancel();
    EXPECT_THROW(co_await outer, corio::cancelled_error);
    EXPECT_EQ(c->now() - t0, 1s);
    EXPECT_EQ(log, (std::vector<std::string>{"a cancelled", "b cancelled"}));
  });
}

TEST(Gather, ATimeoutScopeCancelsTheChildren) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<std::string> log;
    bool timed_out = false;
    try {
      auto deadline = corio::timeout(2s);
      co_await corio::gather(logged(1s, "short", &log), logged(1h, "long", &log));
    } catch (const corio::timeout_error&) {
      timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    EXPECT_EQ(c->now() - t0, 2s);
    EXPECT_EQ(log, (std::vector<std::string>{"short done", "long cancelled"}));
    EXPECT_EQ(corio::event_loop::current()->timer_count(), 0u);
  });
}

TEST(Gather, AwaitingWhileAlreadyCancelledStartsNothing) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    int ran = 0;
    auto outer = corio::spawn(
        [](int* r) -> task<> { co_await corio::gather(nothing_after(0s, r), nothing_after(0s, r)); }(&ran));
    outer.cancel(); // before it runs: its gather raises at once
    EXPECT_THROW(co_await outer, corio::cancelled_error);
    co_await corio::sleep(1s);
    EXPECT_EQ(ran, 0);
    EXPECT_EQ(corio::event_loop::current()->task_count(), 1u);
  });
}

TEST(Gather, ShieldedChildSurvivesTheCancel) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<std::string> log;
    join_handle<int> precious = corio::spawn(logged(3s, "precious", &log));
    auto outer = corio::spawn([](std::vector<std::string>* l, join_handle<int> p) -> task<> {
      auto guarded = [](join_handle<int> h) -> task<int> { co_return co_await corio::shield(h); };
      co_await corio::gather(logged(1h, "plain", l), guarded(p));
    }(&log, precious));
    co_await corio::sleep(1s);
    outer.cancel();
    EXPECT_THROW(co_await outer, corio::cancelled_error);
    EXPECT_EQ(c->now() - t0, 1s);
    EXPECT_EQ(co_await precious, 1);
    EXPECT_EQ(c->now() - t0, 3s);
    EXPECT_EQ(log, (std::vector<std::string>{"plain cancelled", "precious done"}));
  });
}

TEST(Gather, NestedGathers) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    auto inner = [](int base) -> task<int> {
      auto [a, b] = co_await corio::gather(after(1s, base), after(2s, base + 1));
      co_return a + b;
    };
    auto [x, y] = co_await corio::gather(inner(10), inner(20));
    EXPECT_EQ(x, 21);
    EXPECT_EQ(y, 41);
    EXPECT_EQ(c->now() - t0, 2s);
  });
}

TEST(Gather, ShuffledLoop) {
  corio::testing::leak_check leaks;
  testing::internal::CaptureStderr(); // the seed line
  auto body = [](mock_clock* c) -> task<> {
    for (int round = 0; round < 20; ++round) {
      const auto t0 = c->now();
      std::vector<task<int>> tasks;
      for (int i = 0; i < 50; ++i)
        tasks.push_back(after(std::chrono::milliseconds(i % 5), i));
      std::vector<int> r = co_await corio::gather(std::move(tasks));
      EXPECT_EQ(c->now() - t0, 4ms);
      for (int i = 0; i < 50; ++i)
        EXPECT_EQ(r[static_cast<std::size_t>(i)], i);
      auto [a, b, d] = co_await corio::gather(after(0s, 1), after(0s, 2), after(1ms, 3));
      EXPECT_EQ(a + b + d, 6);
      auto [e, f] = co_await corio::gather(corio::return_exceptions, fail_after(0s, "x"), after(0s, 4));
      EXPECT_TRUE(e.has_exception());
      EXPECT_EQ(f.value(), 4);
    }
  };
  for (std::uint64_t seed = 1; seed <= 8; ++seed)
    run_mock(body, seed);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("seed 8"), std::string::npos);
}

TEST(Gather, DestroyingTheLoopMidGatherLeaksNothing) {
  corio::testing::leak_check leaks;
  std::vector<std::string> log;
  {
    mock_clock clock;
    corio::event_loop loop({.clock = &clock});
    auto outer = corio::spawn(loop, [](std::vector<std::string>* l) -> task<> {
      co_await corio::gather(logged(1h, "a", l), logged(2h, "b", l));
    }(&log));
    loop.call_later(1s, [&loop] { loop.stop(); });
    loop.run_forever();
    EXPECT_FALSE(outer.done());
  } // abandoned: frames destroyed without running
  EXPECT_TRUE(log.empty());
}

TEST(Gather, IsLazyAndCanBeAwaitedOnce) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    int ran = 0;
    auto g = corio::gather(nothing_after(1s, &ran), nothing_after(2s, &ran));
    co_await corio::sleep(5s);
    EXPECT_EQ(ran, 0); // nothing starts before the gather is awaited
    const auto t0 = c->now();
    co_await g;
    EXPECT_EQ(ran, 2);
    EXPECT_EQ(c->now() - t0, 2s);
    EXPECT_THROW(co_await g, corio::invalid_state_error);
  });
}

TEST(Gather, EmptyTaskOrHandleIsAnError) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    task<int> moved_from = after(1s, 1);
    task<int> taken = std::move(moved_from);
    EXPECT_THROW(co_await corio::gather(std::move(moved_from)), corio::invalid_state_error);
    std::vector<join_handle<int>> handles;
    handles.push_back(corio::spawn(std::move(taken)));
    handles.emplace_back();
    EXPECT_THROW(co_await corio::gather(handles), corio::invalid_state_error);
    co_await corio::sleep(2s);
  });
}

TEST(Gather, OutsideALoopRaisesLoopError) {
  auto g = corio::gather(after(1s, 1));
  EXPECT_THROW((void)g.await_ready(), corio::loop_error);
}

// asyncio.gather: ValueError "The future belonged to a different loop". corio's gather() started its
// tasks, put a done callback on loop B's task from loop A's thread (a data race with B) and waited for a
// completion nothing on A would ever be told of. Now loop_error before anything is started or registered;
// a done task of B is accepted, as `co_await handle` accepts it.
task<int> mark_started(bool* started) {
  *started = true;
  co_return 1;
}
task<std::string> gather_with(join_handle<int> foreign, bool* started) {
  std::string out;
  try {
    auto [one, other] = co_await corio::gather(mark_started(started), foreign);
    out = std::to_string(one) + ", " + std::to_string(other);
  } catch (const corio::loop_error& e) {
    out = e.what();
  }
  co_return out;
}
task<std::string> gather_vector_with(join_handle<int> foreign) {
  std::vector<join_handle<int>> hs{corio::spawn(after(1s, 1)), foreign};
  std::string out;
  try {
    std::vector<int> values = co_await corio::gather(hs);
    for (int v : values)
      out += std::to_string(v) + " ";
  } catch (const corio::loop_error& e) {
    out = e.what();
  }
  EXPECT_EQ(co_await hs[0], 1); // the task of A was not disturbed
  co_return out;
}
TEST(Gather, AHandleOfAnotherLoopIsAClearError) {
  corio::testing::hang_watchdog dog("Gather.AHandleOfAnotherLoopIsAClearError");
  corio::testing::leak_check leaks;
  corio::testing::other_loop b;
  mock_clock clock;
  corio::event_loop a({.clock = &clock});
  const std::string message = "corio: gather(): a join_handle whose task belongs to another event loop";
  bool started = false;
  std::string what = corio::run_until_complete(a, corio::testing::at_most(gather_with(b.pending(), &started)));
  EXPECT_NE(what.find(message), std::string::npos) << what;
  EXPECT_FALSE(started) << "gather() started its tasks before it raised";
  what = corio::run_until_complete(a, corio::testing::at_most(gather_vector_with(b.pending())));
  EXPECT_NE(what.find(message), std::string::npos) << what;
  b.finish(7);
  EXPECT_EQ(corio::run_until_complete(a, corio::testing::at_most(gather_with(b.pending(), &started))), "1, 7");
  EXPECT_EQ(corio::run_until_complete(a, corio::testing::at_most(gather_vector_with(b.pending()))), "1 7 ");
}

} // namespace
