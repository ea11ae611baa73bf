// corio::shield: the awaiter can be cancelled, the shielded task cannot (through it).
#include <corio/run.hpp>
#include <corio/shield.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/task_ref.hpp>
#include <corio/testing/mock_clock.hpp>
#include <corio/this_task.hpp>
#include <corio/timeout.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "loop_fixture.hpp"
#include "other_loop.hpp"

using namespace std::chrono_literals;
using corio::join_handle;
using corio::task;
using corio::testing::after;
using corio::testing::fail_after;
using corio::testing::mock_clock;
using corio::testing::run_mock;

namespace {

/// Sleeps `d`; logs "<name> done" or "<name> cancelled".
task<int> logged(corio::duration d, std::string name, std::vector<std::string>* log) {
  try {
    co_await corio::sleep(d);
  } catch (const corio::cancelled_error&) {
    log->push_back(name + " cancelled");
    throw;
  }
  log->push_back(name + " done");
  co_return 7;
}

TEST(Shield, GivesTheResult) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    EXPECT_EQ(co_await corio::shield(after(1s, 5)), 5);
    join_handle<int> h = corio::spawn(after(1s, 6));
    EXPECT_EQ(co_await corio::shield(h), 6);
    EXPECT_EQ(h.result(), 6);
    auto none = []() -> task<> { co_await corio::sleep(1s); };
    co_await corio::shield(none());
    EXPECT_EQ(c->now() - t0, 3s);
  });
}

TEST(Shield, RaisesTheTasksException) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    std::string what;
    try {
      co_await corio::shield(fail_after(1s, "inner"));
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    EXPECT_EQ(what, "inner");
  });
}

TEST(Shield, CancellingTheAwaiterLeavesTheTaskRunning) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<std::string> log;
    join_handle<int> inner = corio::spawn(logged(3s, "inner", &log));
    auto outer = corio::spawn([](join_handle<int> h, std::vector<std::string>* l) -> task<> {
      try {
        co_await corio::shield(h);
      } catch (const corio::cancelled_error&) {
        l->push_back("outer cancelled");
        throw;
      }
    }(inner, &log));
    co_await corio::sleep(1s);
    outer.cancel();
    EXPECT_THROW(co_await outer, corio::cancelled_error);
    EXPECT_EQ(c->now() - t0, 1s); // the awaiter is released at once
    EXPECT_FALSE(inner.done());
    EXPECT_EQ(co_await inner, 7);
    EXPECT_EQ(c->now() - t0, 3s);
    EXPECT_EQ(log, (std::vector<std::string>{"outer cancelled", "inner done"}));
  });
}

TEST(Shield, PlainAwaitCancelsTheTaskForComparison) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    std::vector<std::string> log;
    join_handle<int> inner = corio::spawn(logged(3s, "inner", &log));
    auto outer = corio::spawn([](join_handle<int> h) -> task<> { co_await h; }(inner));
    co_await corio::sleep(1s);
    outer.cancel();
    EXPECT_THROW(co_await outer, corio::cancelled_error);
    EXPECT_TRUE(inner.cancelled());
    EXPECT_EQ(log, std::vector<std::string>{"inner cancelled"});
  });
}

TEST(Shield, ShieldedTaskWithNoHandleLeftRunsToTheEnd) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<std::string> log;
    auto outer = corio::spawn(
        [](std::vector<std::string>* l) -> task<> { co_await corio::shield(logged(3s, "inner", l)); }(&log));
    co_await corio::sleep(1s);
    outer.cancel();
    EXPECT_THROW(co_await outer, corio::cancelled_error);
    EXPECT_EQ(c->now() - t0, 1s);
    EXPECT_TRUE(log.empty());
    co_await corio::sleep(5s);
    EXPECT_EQ(log, std::vector<std::string>{"inner done"});
  });
}

TEST(Shield, AlreadyCancelledAwaiterRaisesAtOnceButTheTaskRuns) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    std::vector<std::string> log;
    auto outer = corio::spawn([](std::vector<std::string>* l) -> task<> {
      corio::current_task().cancel();                 // cancelled while running, before the await point
      co_await corio::shield(logged(1s, "inner", l)); // spawned by shield(), before the await point
    }(&log));
    EXPECT_THROW(co_await outer, corio::cancelled_error);
    co_await corio::sleep(2s);
    EXPECT_EQ(log, std::vector<std::string>{"inner done"});
  });
}

TEST(Shield, CancellingTheShieldedTaskItselfReachesTheAwaiter) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    join_handle<int> inner = corio::spawn(after(1h, 0));
    auto killer = corio::spawn([](join_handle<int> h) -> task<> {
      co_await corio::sleep(1s);
      h.cancel();
    }(inner));
    EXPECT_THROW(co_await corio::shield(inner), corio::cancelled_error);
    EXPECT_EQ(c->now() - t0, 1s);
    EXPECT_EQ(corio::cancelling(), 0); // the inner task's cancellation, not ours
    co_await corio::sleep(1s);         // so we can go on
    co_await killer;
  });
}

TEST(Shield, ATimeoutScopeAroundAShield) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<std::string> log;
    join_handle<int> inner = corio::spawn(logged(3s, "inner", &log));
    bool timed_out = false;
    try {
      auto deadline = corio::timeout(1s);
      co_await corio::shield(inner);
    } catch (const corio::timeout_error&) {
      timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    EXPECT_EQ(c->now() - t0, 1s);
    EXPECT_EQ(co_await inner, 7);
    EXPECT_EQ(c->now() - t0, 3s);
    EXPECT_EQ(log, std::vector<std::string>{"inner done"});
  });
}

TEST(Shield, CaughtCancellationThenAwaitTheTaskAgain) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    auto outer = corio::spawn([]() -> task<int> {
      auto s = corio::shield(after(3s, 9));
      bool cancelled = false;
      try {
        co_await s;
      } catch (const corio::cancelled_error&) {
        cancelled = true;
      }
      EXPECT_TRUE(cancelled);
      corio::uncancel();
      join_handle<int> h = s.handle();
      co_return co_await corio::shield(h);
    }());
    co_await corio::sleep(1s);
    outer.cancel();
    EXPECT_EQ(co_await outer, 9);
    EXPECT_EQ(c->now() - t0, 3s);
  });
}

TEST(Shield, AlreadyFinishedDoesNotSuspend) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    join_handle<int> h = corio::spawn(after(1s, 1));
    co_await corio::sleep(2s);
    const auto t0 = c->now();
    EXPECT_EQ(co_await corio::shield(h), 1);
    EXPECT_EQ(c->now(), t0);
  });
}

TEST(Shield, MoveOnlyResult) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    auto boxed = [](int v) -> task<std::unique_ptr<int>> {
      co_await corio::sleep(1s);
      co_return std::make_unique<int>(v);
    };
    std::unique_ptr<int> p = co_await corio::shield(boxed(3));
    EXPECT_EQ(*p, 3);
  });
}

TEST(Shield, EmptyHandleAndNoLoop) {
  EXPECT_THROW((void)corio::shield(join_handle<int>{}), corio::invalid_state_error);
  EXPECT_THROW((void)corio::shield(after(1s, 1)), corio::loop_error);
}

TEST(Shield, ShuffledLoop) {
  corio::testing::leak_check leaks;
  testing::internal::CaptureStderr();
  auto body = [](mock_clock* c) -> task<> {
    for (int round = 0; round < 30; ++round) {
      const auto t0 = c->now();
      std::vector<std::string> log;
      join_handle<int> inner = corio::spawn(logged(2ms, "inner", &log));
      auto outer = corio::spawn([](join_handle<int> h) -> task<int> { co_return co_await corio::shield(h); }(inner));
      auto other = corio::spawn(after(1ms, 1));
      co_await corio::sleep(1ms);
      outer.cancel();
      EXPECT_THROW(co_await outer, corio::cancelled_error);
      EXPECT_EQ(co_await inner, 7);
      EXPECT_EQ(co_await other, 1);
      EXPECT_EQ(c->now() - t0, 2ms);
      EXPECT_EQ(log, std::vector<std::string>{"inner done"});
    }
  };
  for (std::uint64_t seed = 1; seed <= 8; ++seed)
    run_mock(body, seed);
  (void)testing::internal::GetCapturedStderr();
}

TEST(Shield, DestroyingTheLoopWhileShieldedLeaksNothing) {
  corio::testing::leak_check leaks;
  {
    mock_clock clock;
    corio::event_loop loop({.clock = &clock});
    auto outer = corio::spawn(loop, []() -> task<> { co_await corio::shield(after(1h, 1)); }());
    loop.call_later(1s, [&loop] { loop.stop(); });
    loop.run_forever();
    EXPECT_FALSE(outer.done());
  }
}

// shield() of loop B's task, awaited on loop A: it put a done callback on B's task from A's thread (a
// data race with B) and waited for a completion nothing on A would ever be told of. Now loop_error; a
// done task of B is accepted, as `co_await handle` accepts it.
task<std::string> shield_of(join_handle<int> foreign) {
  std::string out;
  try {
    out = std::to_string(co_await corio::shield(foreign));
  } catch (const corio::loop_error& e) {
    out = e.what();
  }
  co_return out;
}
TEST(Shield, AHandleOfAnotherLoopIsAClearError) {
  corio::testing::hang_watchdog dog("Shield.AHandleOfAnotherLoopIsAClearError");
  corio::testing::leak_check leaks;
  corio::testing::other_loop b;
  mock_clock clock;
  corio::event_loop a({.clock = &clock});
  const std::string what = corio::run_until_complete(a, corio::testing::at_most(shield_of(b.pending())));
  EXPECT_NE(what.find("corio: shield(): a join_handle whose task belongs to another event loop"), std::string::npos)
      << what;
  b.finish(7);
  EXPECT_EQ(corio::run_until_complete(a, corio::testing::at_most(shield_of(b.pending()))), "7");
}

} // namespace
