// Cancellation: where it is raised, that it is sticky and level-triggered, uncancel, timeouts.
#include <corio/event_loop.hpp>
#include <corio/future.hpp>
#include <corio/gather.hpp>
#include <corio/net/socket.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/task_group.hpp>
#include <corio/task_ref.hpp>
#include <corio/testing/mock_clock.hpp>
#include <corio/this_task.hpp>
#include <corio/timeout.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "counted.hpp"
#include "loop_fixture.hpp"

using namespace std::chrono_literals;
using corio::task;
using corio::testing::mock_clock;
using corio::testing::run_mock;

namespace {

TEST(Cancel, RaisedAtTheCurrentAwaitPoint) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    std::vector<std::string> log;
    auto victim = corio::spawn([](std::vector<std::string>* l) -> task<> {
      l->push_back("start");
      try {
        co_await corio::sleep(1h);
      } catch (const corio::cancelled_error&) {
        l->push_back("cancelled");
        throw;
      }
    }(&log));
    const auto t0 = c->now();
    co_await corio::sleep(1s);
    EXPECT_TRUE(victim.cancel());
    EXPECT_THROW(co_await victim, corio::cancelled_error);
    EXPECT_TRUE(victim.cancelled());
    EXPECT_EQ(c->now() - t0, 1s); // the hour-long sleep was interrupted, its timer removed
    EXPECT_EQ(log, (std::vector<std::string>{"start", "cancelled"}));
    EXPECT_EQ(corio::event_loop::current()->timer_count(), 0u);
  });
}

TEST(Cancel, RequestedBeforeItStartedMeansItNeverStarts) {
  run_mock([](mock_clock*) -> task<> {
    int reached = 0;
    auto t = corio::spawn([](int* r) -> task<> {
      *r = 1; // never runs: asyncio throws the CancelledError in before the first line
      co_await corio::sleep(0s);
      *r = 2;
    }(&reached));
    t.cancel(); // before it ever ran
    EXPECT_THROW(co_await t, corio::cancelled_error);
    EXPECT_EQ(reached, 0);
  });
}

TEST(Cancel, RequestedWhileRunningIsSticky) {
  run_mock([](mock_clock*) -> task<> {
    std::vector<int> log;
    corio::join_handle<> self;
    auto t = corio::spawn([](corio::join_handle<>* me, std::vector<int>* l) -> task<> {
      co_await corio::sleep(0s);
      me->cancel(); // cancel ourselves while running: no await point is pending
      l->push_back(1);
      co_await corio::sleep(0s); // raises here
      l->push_back(2);
    }(&self, &log));
    self = t;
    EXPECT_THROW(co_await t, corio::cancelled_error);
    EXPECT_EQ(log, std::vector<int>{1});
    self = {};
  });
}

TEST(Cancel, LevelTriggeredUntilUncancel) {
  run_mock([](mock_clock*) -> task<> {
    auto t = corio::spawn([]() -> task<int> {
      int raised = 0;
      for (int i = 0; i < 3; ++i) {
        try {
          co_await corio::sleep(1s);
        } catch (const corio::cancelled_error&) {
          ++raised; // swallowed by mistake: the next await raises again
        }
      }
      EXPECT_EQ(corio::cancelling(), 1);
      EXPECT_EQ(corio::uncancel(), 0); // explicit: now the task may go on
      co_await corio::sleep(1s);
      co_return raised;
    }());
    co_await corio::sleep(500ms);
    t.cancel();
    EXPECT_EQ(co_await t, 3);
    EXPECT_FALSE(t.cancelled());
  });
}

TEST(Cancel, TwiceAndAfterDone) {
  run_mock([](mock_clock*) -> task<> {
    auto t = corio::spawn([]() -> task<> { co_await corio::sleep(1s); }());
    co_await corio::sleep(0s);
    EXPECT_TRUE(t.cancel());
    EXPECT_TRUE(t.cancel()); // a second request while the first is pending: fine, counted
    EXPECT_THROW(co_await t, corio::cancelled_error);
    EXPECT_FALSE(t.cancel()); // finished: nothing to do
  });
}

TEST(Cancel, PropagatesToTheAwaitedTask) {
  run_mock([](mock_clock*) -> task<> {
    auto inner = corio::spawn([]() -> task<> { co_await corio::sleep(1h); }());
    auto outer = corio::spawn([](corio::join_handle<> i) -> task<> { co_await i; }(inner));
    co_await corio::sleep(1s);
    outer.cancel();
    EXPECT_THROW(co_await outer, corio::cancelled_error);
    EXPECT_TRUE(inner.cancelled()); // asyncio's rule: awaiting a task and being cancelled cancels it
  });
}

TEST(Cancel, PropagatesToTheAwaitedFuture) {
  run_mock([](mock_clock*) -> task<> {
    corio::future<int> f;
    auto waiter = corio::spawn([](corio::future<int> fut) -> task<int> { co_return co_await fut; }(f));
    co_await corio::sleep(0s);
    waiter.cancel();
    EXPECT_THROW(co_await waiter, corio::cancelled_error);
    EXPECT_TRUE(f.cancelled());
  });
}

TEST(Timeout, ScopeRaisesTimeoutErrorAtTheDeadline) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    bool timed_out = false;
    try {
      auto deadline = corio::timeout(2s);
      co_await corio::sleep(1s); // within the deadline
      co_await corio::sleep(5s); // interrupted at +2s
      ADD_FAILURE() << "not interrupted";
    } catch (const corio::timeout_error&) {
      timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    EXPECT_EQ(c->now() - t0, 2s);
    co_await corio::sleep(1s); // after the scope, awaiting works again
    EXPECT_EQ(c->now() - t0, 3s);
  });
}

TEST(Timeout, ScopeThatDoesNotExpireLeavesNothing) {
  run_mock([](mock_clock*) -> task<> {
    {
      auto deadline = corio::timeout(10s);
      co_await corio::sleep(1s);
      EXPECT_FALSE(deadline.expired());
    }
    EXPECT_EQ(corio::event_loop::current()->timer_count(), 0u);
  });
}

TEST(Timeout, RescheduleAndNesting) {
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    try {
      auto outer = corio::timeout(10s);
      try {
        auto inner = corio::timeout(1s);
        inner.reschedule(c->now() + 3s);
        co_await corio::sleep(1h);
      } catch (const corio::timeout_error&) {
        EXPECT_EQ(c->now() - t0, 3s); // the inner one fired
      }
      co_await corio::sleep(1h); // the outer one is still armed
    } catch (const corio::timeout_error&) {
      EXPECT_EQ(c->now() - t0, 10s);
    }
  });
}

TEST(Timeout, ScopeWithoutADeadlineUntilRescheduled) {
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    {
      auto none = corio::timeout(std::nullopt); // asyncio.timeout(None)
      EXPECT_FALSE(none.when().has_value());
      EXPECT_EQ(corio::event_loop::current()->timer_count(), 0u);
      co_await corio::sleep(1h);
      EXPECT_FALSE(none.expired());
    }
    bool raised = false;
    try {
      auto later = corio::timeout_at(std::nullopt);
      co_await corio::sleep(1s);
      later.reschedule(c->now() + 2s); // gets a deadline
      EXPECT_EQ(later.when(), c->now() + 2s);
      co_await corio::sleep(1h);
    } catch (const corio::timeout_error&) {
      raised = true;
    }
    EXPECT_TRUE(raised);
    EXPECT_EQ(c->now() - t0, 1h + 3s);
    {
      auto taken = corio::timeout(1s);
      taken.reschedule(std::nullopt); // and loses it again
      EXPECT_EQ(corio::event_loop::current()->timer_count(), 0u);
      co_await corio::sleep(5s);
      EXPECT_FALSE(taken.expired());
    }
    EXPECT_EQ(corio::event_loop::current()->timer_count(), 0u);
  });
}

// asyncio: a deadline already reached expires the scope with call_soon(), so it interrupts even an
// await that lasts one iteration (timeout(0) around sleep(0) raises TimeoutError).
TEST(Timeout, ADeadlineAlreadyReachedInterruptsTheNextIterationsAwait) {
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    int raised = 0;
    try {
      auto now = corio::timeout(0s);
      co_await corio::sleep(0s);
    } catch (const corio::timeout_error&) {
      ++raised;
    }
    try {
      auto past = corio::timeout_at(c->now() - 1s);
      co_await corio::sleep(0s);
    } catch (const corio::timeout_error&) {
      ++raised;
    }
    try {
      auto later = corio::timeout(1h);
      later.reschedule(c->now());
      co_await corio::sleep(0s);
    } catch (const corio::timeout_error&) {
      ++raised;
    }
    {
      auto taken_back = corio::timeout(0s);
      taken_back.reschedule(std::nullopt); // before the loop ran it: never expires
      co_await corio::sleep(0s);
      EXPECT_FALSE(taken_back.expired());
    }
    EXPECT_EQ(raised, 3);
    EXPECT_EQ(c->now(), t0);
  });
}

TEST(Timeout, ExternalCancelWinsOverTimeout) {
  run_mock([](mock_clock*) -> task<> {
    auto t = corio::spawn([]() -> task<> {
      auto deadline = corio::timeout(1s);
      co_await corio::sleep(1h);
    }());
    co_await corio::sleep(2s); // the deadline has passed, the task is ending with timeout_error...
    co_await corio::sleep(0s);
    EXPECT_THROW(co_await t, corio::timeout_error);
    auto u = corio::spawn([]() -> task<> {
      auto deadline = corio::timeout(1s);
      co_await corio::sleep(1h);
    }());
    co_await corio::sleep(0s);
    u.cancel(); // ...but a real cancel is reported as such
    EXPECT_THROW(co_await u, corio::cancelled_error);
  });
}

TEST(WaitFor, ResultWithinTheTimeout) {
  run_mock([](mock_clock*) -> task<> {
    auto quick = []() -> task<int> {
      co_await corio::sleep(1s);
      co_return 7;
    };
    EXPECT_EQ(co_await corio::wait_for(quick(), 2s), 7);
  });
}

TEST(WaitFor, TimeoutCancelsTheWork) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    auto slow = corio::spawn([]() -> task<int> {
      co_await corio::sleep(1h);
      co_return 1;
    }());
    EXPECT_THROW(co_await corio::wait_for(slow, 2s), corio::timeout_error);
    EXPECT_EQ(c->now() - t0, 2s);
    EXPECT_TRUE(slow.done());
    EXPECT_TRUE(slow.cancelled()); // the awaited task was cancelled, and waited for
    corio::future<int> never;
    EXPECT_THROW(co_await corio::wait_for(never, 1s), corio::timeout_error);
    EXPECT_TRUE(never.cancelled());
  });
}

// asyncio.wait_for(aw, None): no deadline.
TEST(WaitFor, NulloptWaitsWithoutADeadline) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    auto slow = []() -> task<int> {
      co_await corio::sleep(1h);
      co_return 3;
    };
    EXPECT_EQ(co_await corio::wait_for(slow(), std::nullopt), 3);
    EXPECT_EQ(c->now() - t0, 1h);
    std::optional<corio::duration> limit = 2s;
    EXPECT_THROW(co_await corio::wait_for(slow(), limit), corio::timeout_error);
    EXPECT_EQ(c->now() - t0, 1h + 2s);
  });
}

} // namespace

namespace {

// cancel(msg) (asyncio's Task.cancel(msg)): the cancelled_error raised in the task carries the message,
// so does the one its handle rethrows; the last message wins; uncancel() forgets it; a plain cancel() and
// a timeout carry none.
/// Sleeps an hour; a cancel's what() is noted in *seen before it goes on.
task<> sleep_noting_cancel(std::string* seen) {
  try {
    co_await corio::sleep(1h);
  } catch (const corio::cancelled_error& e) {
    *seen = e.what();
    throw;
  }
}

// The largest durations mean "never": loop time + duration::max() overflowed into the past (the scope
// expired at once), and hours::max()'s cast to nanoseconds overflowed.
TEST(Timeout, DurationsPastTheEndOfTimeNeverExpire) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    for (int kind = 0; kind < 3; ++kind) {
      bool timed_out = false;
      try {
        // asyncio.timeout(1e300) for the last
        auto scope = kind == 0   ? corio::timeout(std::chrono::nanoseconds::max())
                     : kind == 1 ? corio::timeout(std::chrono::hours::max())
                                 : corio::timeout(std::chrono::duration<double>(1e300));
        EXPECT_EQ(scope.when(), corio::time_point::max()) << "kind " << kind;
        co_await corio::sleep(1h);
        EXPECT_FALSE(scope.expired());
      } catch (const corio::timeout_error&) {
        timed_out = true;
      }
      EXPECT_FALSE(timed_out) << "kind " << kind;
    }
    EXPECT_EQ(c->now() - t0, 3h);
    // The other end: a deadline long past expires the scope at the next await.
    bool timed_out = false;
    try {
      auto scope = corio::timeout(std::chrono::nanoseconds::min());
      co_await corio::sleep(1h);
    } catch (const corio::timeout_error&) {
      timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    EXPECT_EQ(c->now() - t0, 3h);
  });
}

TEST(WaitFor, DurationsPastTheEndOfTimeWaitForTheResult) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    auto slow = []() -> task<int> {
      co_await corio::sleep(2h);
      co_return 7;
    };
    EXPECT_EQ(co_await corio::wait_for(slow(), std::chrono::nanoseconds::max()), 7);
    EXPECT_EQ(co_await corio::wait_for(slow(), std::chrono::hours::max()), 7);
    EXPECT_EQ(co_await corio::wait_for(corio::spawn(slow()), std::chrono::nanoseconds::max()), 7);
    const std::optional<corio::duration> forever = corio::duration::max(); // the optional overload too
    EXPECT_EQ(co_await corio::wait_for(slow(), forever), 7);
    EXPECT_EQ(c->now() - t0, 8h);
  });
}

TEST(Cancel, WithAMessage) {
  run_mock([](mock_clock*) -> task<> {
    std::string seen;
    auto h = corio::spawn(sleep_noting_cancel(&seen));
    co_await corio::sleep(1ms);
    EXPECT_TRUE(h.cancel("first reason"));
    EXPECT_TRUE(h.cancel("shutting down"));
    std::string from_handle, what;
    try {
      co_await h;
    } catch (const corio::cancelled_error& e) {
      from_handle = e.message();
      what = e.what();
    }
    EXPECT_EQ(seen, "cancelled_error: shutting down");
    EXPECT_EQ(from_handle, "shutting down");
    EXPECT_NE(what.find("shutting down"), std::string::npos) << what;
    EXPECT_TRUE(h.cancelled());
    EXPECT_FALSE(h.cancel("too late"));

    // uncancel() forgets the message: a later plain cancel() raises without it.
    auto twice = [](std::string* first, std::string* second) -> task<> {
      bool caught = false;
      try {
        co_await corio::sleep(1h);
      } catch (const corio::cancelled_error& e) {
        *first = e.message();
        caught = true;
      }
      if (caught)
        (void)corio::uncancel();
      try {
        co_await corio::sleep(1h);
      } catch (const corio::cancelled_error& e) {
        *second = e.what();
      }
    };
    std::string first, second;
    auto t = corio::spawn(twice(&first, &second));
    co_await corio::sleep(1ms);
    corio::task_ref ref = t;
    EXPECT_TRUE(ref.cancel("once"));
    co_await corio::sleep(1ms);
    EXPECT_TRUE(t.cancel());
    co_await t;
    EXPECT_EQ(first, "once");
    EXPECT_EQ(second, "cancelled_error: the task was cancelled");

    corio::cancelled_error plain;
    EXPECT_EQ(plain.message(), "");
    corio::timeout_error late;
    EXPECT_EQ(late.message(), "");
  });
}

// As in asyncio, Task.cancel(msg) reaches what the task awaits with the same message: the task it joins
// (co_await handle), and the children of a gather() it awaits. A task_group cancels its children without
// one (asyncio's TaskGroup does too), and a plain cancel or a timeout forwards none.
TEST(Cancel, AMessageReachesTheTasksAwaited) {
  run_mock([](mock_clock*) -> task<> {
    // a join: the awaited task raises with the message, and so does the awaiting one
    {
      std::string inner, outer;
      auto joins = [](corio::join_handle<> h, std::string* outer) -> task<> {
        try {
          co_await h;
        } catch (const corio::cancelled_error& e) {
          *outer = e.message();
          throw;
        }
      };
      auto child = corio::spawn(sleep_noting_cancel(&inner));
      auto parent = corio::spawn(joins(child, &outer));
      co_await corio::sleep(1ms);
      EXPECT_TRUE(parent.cancel("deploying"));
      co_await corio::gather(corio::return_exceptions, parent);
      EXPECT_TRUE(child.cancelled());
      EXPECT_EQ(inner, "cancelled_error: deploying");
      EXPECT_EQ(outer, "deploying");
    }
    // gather: every child still running gets it
    {
      std::string a, b;
      auto gathers = [](task<> x, task<> y) -> task<> { co_await corio::gather(std::move(x), std::move(y)); };
      auto parent = corio::spawn(gathers(sleep_noting_cancel(&a), sleep_noting_cancel(&b)));
      co_await corio::sleep(1ms);
      EXPECT_TRUE(parent.cancel("draining"));
      auto [r] = co_await corio::gather(corio::return_exceptions, parent);
      EXPECT_TRUE(parent.cancelled());
      EXPECT_EQ(a, "cancelled_error: draining");
      EXPECT_EQ(b, "cancelled_error: draining");
      std::string m;
      try {
        r.value();
      } catch (const corio::cancelled_error& e) {
        m = e.message();
      }
      EXPECT_EQ(m, "draining");
    }
    // a plain cancel forwards no message (none is left over from an earlier one)
    {
      std::string a;
      auto gathers = [](task<> x) -> task<> { co_await corio::gather(std::move(x)); };
      auto parent = corio::spawn(gathers(sleep_noting_cancel(&a)));
      co_await corio::sleep(1ms);
      EXPECT_TRUE(parent.cancel());
      co_await corio::gather(corio::return_exceptions, parent);
      EXPECT_EQ(a, "cancelled_error: the task was cancelled");
    }
    // a task_group's children are cancelled without it
    {
      std::string a, outer;
      auto groups = [](std::string* a, std::string* outer) -> task<> {
        try {
          corio::task_group g;
          g.spawn(sleep_noting_cancel(a));
          co_await g.wait();
        } catch (const corio::cancelled_error& e) {
          *outer = e.message();
          throw;
        }
      };
      auto parent = corio::spawn(groups(&a, &outer));
      co_await corio::sleep(1ms);
      EXPECT_TRUE(parent.cancel("stopping"));
      co_await corio::gather(corio::return_exceptions, parent);
      EXPECT_EQ(a, "cancelled_error: the task was cancelled");
      EXPECT_EQ(outer, "stopping");
    }
  });
}

// asyncio's _must_cancel: a cancel() that was accepted and never raised in the task (it reached no
// further await point) ends the task cancelled when its body returns, its result dropped ("Task is
// cancelled right before coro stops"). corio dropped such a cancel: the task ended with its value.
TEST(Cancel, AcceptedButNeverRaisedEndsTheTaskCancelled) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    auto self = corio::spawn([]() -> task<int> {
      EXPECT_TRUE(corio::current_task().cancel("stop now"));
      EXPECT_EQ(corio::cancelling(), 1);
      co_return 5;
    }());
    try {
      ADD_FAILURE() << "got " << co_await self;
    } catch (const corio::cancelled_error& e) {
      EXPECT_EQ(e.message(), "stop now");
    }
    EXPECT_TRUE(self.cancelled());

    std::vector<std::string> log;
    auto unstarted = corio::spawn([](std::vector<std::string>* l) -> task<std::string> {
      l->push_back("body"); // never runs, as in asyncio
      co_return "value";
    }(&log));
    EXPECT_TRUE(unstarted.cancel()); // before it ever ran
    EXPECT_THROW(co_await unstarted, corio::cancelled_error);
    EXPECT_TRUE(unstarted.cancelled());
    EXPECT_TRUE(log.empty());

    auto void_task = corio::spawn([]() -> task<> {
      corio::current_task().cancel();
      co_return;
    }());
    EXPECT_THROW(co_await void_task, corio::cancelled_error);
  });
}

// A cancel that was raised in the task and caught leaves the task free to return its value (asyncio
// too: _must_cancel is cleared when the CancelledError is thrown in); so does one taken back with
// uncancel(). A cancel requested after the one that was raised is a new one, and applies.
TEST(Cancel, RaisedOrUncancelledKeepsTheTasksValue) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    auto caught = corio::spawn([]() -> task<int> {
      try {
        co_await corio::sleep(1h);
      } catch (const corio::cancelled_error&) {
        co_return 7; // still cancelling() == 1: the request was delivered, not taken back
      }
      co_return 0;
    }());
    co_await corio::sleep(1s);
    caught.cancel();
    EXPECT_EQ(co_await caught, 7);
    EXPECT_FALSE(caught.cancelled());

    auto uncancelled = corio::spawn([]() -> task<int> {
      corio::current_task().cancel();
      EXPECT_EQ(corio::uncancel(), 0);
      co_return 8;
    }());
    EXPECT_EQ(co_await uncancelled, 8);

    auto again = corio::spawn([]() -> task<int> {
      try {
        co_await corio::sleep(1h);
      } catch (const corio::cancelled_error&) {
        corio::current_task().cancel(); // a second request, never raised
      }
      co_return 9;
    }());
    co_await corio::sleep(1s);
    again.cancel();
    EXPECT_THROW(co_await again, corio::cancelled_error);
  });
}

// A cancel that reached the await point the task was suspended in belongs to that await point, as in
// asyncio (the waiter takes it: no _must_cancel): here task_group::wait() answers it by cancelling the
// child, whose failure it raises instead; the task catches that and returns its value.
TEST(Cancel, ACancelTakenByTheAwaitPointDoesNotEndTheTaskCancelledAtItsReturn) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    auto parent = corio::spawn([]() -> task<int> {
      try {
        corio::task_group g;
        g.spawn([]() -> task<> {
          bool cancelled = false;
          try {
            co_await corio::sleep(1h);
          } catch (const corio::cancelled_error&) {
            cancelled = true;
          }
          if (cancelled)
            throw std::runtime_error("failed while cancelled");
        }());
        co_await g.wait();
      } catch (const std::runtime_error&) {
        co_return 42; // asyncio: the parent returns 42 too
      }
      co_return 0;
    }());
    co_await corio::sleep(1s);
    parent.cancel();
    EXPECT_EQ(co_await parent, 42);
    EXPECT_FALSE(parent.cancelled());
  });
}

// An outer scope that expires while an inner one (not expired) is open makes the awaits inside the inner
// scope raise timeout_error too, until the outer scope ends. A retry loop inside the outer scope must
// rethrow when the outer scope expired (the documented idiom), else it retries at once, forever.
TEST(Timeout, ARetryLoopInsideAnOuterScopeEndsWhenTheOuterExpires) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    int attempts = 0;
    bool outer_caught = false;
    try {
      auto outer = corio::timeout(50ms);
      while (attempts < 100) { // bounded: without the rethrow, attempts 6..100 would raise at once
        ++attempts;
        try {
          auto attempt = corio::timeout(20ms);
          co_await corio::sleep(1h); // stands for a read
        } catch (const corio::timeout_error&) {
          if (outer.expired())
            throw;
        }
      }
    } catch (const corio::timeout_error&) {
      outer_caught = true;
    }
    EXPECT_TRUE(outer_caught);
    EXPECT_EQ(attempts, 3); // timed out at 20 and 40 ms; the third ended by the outer scope at 50 ms
    EXPECT_EQ(c->now() - t0, 50ms);
  });
}

// The same where the retry loop cannot see the outer scope: corio::timeout_expired() tells that an
// enclosing scope of the running task expired.
task<int> retrying_read(int* attempts) {
  for (;;) {
    ++*attempts;
    try {
      auto attempt = corio::timeout(20ms);
      co_await corio::sleep(1h);
      co_return 0;
    } catch (const corio::timeout_error&) {
      if (corio::timeout_expired() || *attempts >= 100)
        throw;
    }
  }
}
TEST(Timeout, TimeoutExpiredTellsACatchThatAnEnclosingScopeExpired) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    EXPECT_FALSE(corio::timeout_expired());
    int attempts = 0;
    try {
      auto outer = corio::timeout(50ms);
      co_await retrying_read(&attempts);
      ADD_FAILURE() << "the read cannot finish";
    } catch (const corio::timeout_error&) {
      EXPECT_FALSE(corio::timeout_expired()); // the outer scope ended: taken back
    }
    EXPECT_EQ(attempts, 3);
    EXPECT_EQ(c->now() - t0, 50ms);
  });
  EXPECT_THROW((void)corio::timeout_expired(), corio::loop_error);
}

// ---- A task cancelled before it started never starts (asyncio: t = create_task(f()); t.cancel()) -------

using corio::testing::counted;

/// Counts the lines of its body that ran; its parameters (a counted value, a socket) go with its frame.
task<int> counts_its_lines(int* ran, counted c, corio::socket s) {
  ++*ran;
  co_await corio::sleep(0s);
  ++*ran;
  co_return c.value + (s.is_open() ? 1 : 0);
}

task<int> counts_its_start(int* ran) {
  ++*ran;
  co_await corio::sleep(0s);
  co_return 1;
}

// The body never runs; the frame is destroyed with its parameters (the socket closes: the peer reads end
// of stream), the task ends cancelled and its awaiter gets cancelled_error.
TEST(CancelBeforeStart, TheBodyNeverRunsAndTheParametersGo) {
  corio::testing::leak_check leaks;
  corio::testing::lifetime_check lives;
  run_mock([](mock_clock*) -> task<> {
    int fds[2] = {-1, -1};
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    int ran = 0;
    auto h = corio::spawn(counts_its_lines(&ran, counted(7), corio::socket::adopt(fds[0])));
    EXPECT_TRUE(h.cancel());
    EXPECT_FALSE(h.done()); // it ends in the loop's next iteration, where it would have started
    EXPECT_EQ(counted::alive(), 1);
    bool raised = false;
    try {
      (void)co_await h;
    } catch (const corio::cancelled_error& e) {
      raised = true;
      EXPECT_EQ(e.message(), "");
    }
    EXPECT_TRUE(raised);
    EXPECT_EQ(ran, 0);
    EXPECT_TRUE(h.done());
    EXPECT_TRUE(h.cancelled());
    EXPECT_EQ(counted::alive(), 0); // the frame went when the task ended, with its parameters
    char b = 0;
    EXPECT_EQ(::read(fds[1], &b, 1), 0); // the socket parameter was closed: end of stream
    ::close(fds[1]);
    EXPECT_FALSE(h.cancel()); // done
  });
}

// It ends as a task that raised the cancel at its first await point: the cancel's message, every
// awaiter woken with cancelled_error, done callbacks run (seeing it cancelled), exception() set.
TEST(CancelBeforeStart, EndsCancelledWithTheMessageWakingAwaitersAndDoneCallbacks) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    int ran = 0;
    auto h = corio::spawn([](int* r) -> task<std::string> {
      ++*r;
      co_return "value";
    }(&ran));
    std::vector<std::string> log;
    h.add_done_callback([&log, &h] { log.push_back(h.cancelled() ? "cancelled" : "not cancelled"); });
    EXPECT_TRUE(h.cancel("shutting down"));
    auto other = corio::spawn([](corio::join_handle<std::string> t) -> task<std::string> { co_return co_await t; }(h));
    std::string message;
    try {
      (void)co_await h;
    } catch (const corio::cancelled_error& e) {
      message = e.message();
    }
    EXPECT_EQ(message, "shutting down");
    std::string other_message;
    try {
      (void)co_await other;
    } catch (const corio::cancelled_error& e) {
      other_message = e.message();
    }
    EXPECT_EQ(other_message, "shutting down");
    co_await corio::sleep(0s); // the done callback runs through call_soon
    EXPECT_EQ(log, std::vector<std::string>{"cancelled"});
    EXPECT_EQ(ran, 0);
    EXPECT_TRUE(h.cancelled());
    std::exception_ptr e = h.exception();
    EXPECT_TRUE(corio::is_cancellation(e));
    EXPECT_THROW((void)h.result(), corio::cancelled_error);
  });
}

/// A result whose move may throw: the task keeps its frame until its last handle goes (spawn.hpp).
struct throwing_move {
  int v = 0;
  explicit throwing_move(int x) : v(x) {}
  throwing_move(const throwing_move&) = default;
  throwing_move(throwing_move&& o) noexcept(false) : v(o.v) {}
  throwing_move& operator=(const throwing_move&) = default;
};

TEST(CancelBeforeStart, AResultKeptInTheFrameIsReleasedWithTheLastHandle) {
  corio::testing::leak_check leaks;
  corio::testing::lifetime_check lives;
  run_mock([](mock_clock*) -> task<> {
    int ran = 0;
    auto h = corio::spawn([](int* r, counted c) -> task<throwing_move> {
      ++*r;
      co_return throwing_move(c.value);
    }(&ran, counted(3)));
    h.cancel("kept");
    std::string message;
    try {
      (void)co_await h;
    } catch (const corio::cancelled_error& e) {
      message = e.message();
    }
    EXPECT_EQ(message, "kept");
    EXPECT_EQ(ran, 0);
    EXPECT_TRUE(h.cancelled());
    EXPECT_EQ(counted::alive(), 1); // this result type keeps the frame until the last handle goes
    h = {};
    EXPECT_EQ(counted::alive(), 0);
  });
}

// spawn() on a lazy loop and spawn_eager() called while the loop is not running (it schedules the task
// then), on a loop that is not running yet, with eager tasks off and on.
TEST(CancelBeforeStart, OnALoopNotRunningYet) {
  corio::testing::leak_check leaks;
  for (bool eager : {false, true}) {
    corio::event_loop loop({.eager_tasks = eager});
    int ran = 0;
    auto a = corio::spawn(loop, counts_its_start(&ran));
    auto b = corio::spawn_eager(loop, counts_its_start(&ran));
    auto c = corio::spawn(loop, counts_its_start(&ran)); // not cancelled: runs
    EXPECT_TRUE(a.cancel());
    EXPECT_TRUE(b.cancel("b"));
    loop.stop();
    loop.run_forever(); // one iteration: where they would have started
    EXPECT_EQ(ran, 1) << "eager " << eager;
    EXPECT_TRUE(a.done() && a.cancelled());
    EXPECT_TRUE(b.done() && b.cancelled());
    EXPECT_FALSE(c.done());
    loop.stop();
    loop.run_forever();
    EXPECT_EQ(c.result(), 1);
    try {
      (void)b.result();
      ADD_FAILURE() << "b has a result";
    } catch (const corio::cancelled_error& e) {
      EXPECT_EQ(e.message(), "b");
    }
    loop.close();
  }
}

// shutdown_tasks() (what corio::run() does after main) cancels a task not started yet: it never runs.
TEST(CancelBeforeStart, ShutdownCancelsTasksNotStartedYet) {
  corio::testing::leak_check leaks;
  corio::event_loop loop;
  int ran = 0;
  auto a = corio::spawn(loop, counts_its_start(&ran));
  loop.shutdown_tasks();
  EXPECT_EQ(ran, 0);
  EXPECT_TRUE(a.cancelled());
  loop.close();
}

// gather() spawns its tasks; cancelling the task that awaits it before they started cancels them: none
// runs, and the awaiter raises cancelled_error with the message (asyncio's gather(...).cancel() too).
TEST(CancelBeforeStart, GatherCancelledBeforeItsTasksStartedRunsNone) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    int ran = 0;
    auto outer = corio::spawn_eager(
        [](int* r) -> task<> { (void)co_await corio::gather(counts_its_start(r), counts_its_start(r)); }(&ran));
    EXPECT_FALSE(outer.done()); // it waits in the gather; the gather's tasks are scheduled
    outer.cancel("stop");
    std::string message;
    try {
      co_await outer;
    } catch (const corio::cancelled_error& e) {
      message = e.message();
    }
    EXPECT_EQ(message, "stop");
    EXPECT_EQ(ran, 0);
  });
}

// A task_group's children cancelled before they started never run (asyncio's TaskGroup too): when the
// task waiting in wait() is cancelled, when it reaches wait() cancelled already, and when the group is
// destroyed without a wait().
TEST(CancelBeforeStart, TaskGroupChildrenCancelledBeforeTheyStartedNeverRun) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    int ran = 0;
    auto waiting = corio::spawn_eager([](int* r) -> task<> {
      corio::task_group group;
      group.spawn(counts_its_start(r));
      group.spawn(counts_its_start(r));
      co_await group.wait();
    }(&ran));
    EXPECT_FALSE(waiting.done()); // in wait(); the children are scheduled
    waiting.cancel();
    EXPECT_THROW(co_await waiting, corio::cancelled_error);
    EXPECT_EQ(ran, 0);

    auto cancelled_first = corio::spawn_eager([](int* r) -> task<> {
      corio::task_group group;
      group.spawn(counts_its_start(r));
      group.spawn(counts_its_start(r));
      corio::current_task().cancel();
      co_await group.wait(); // cancels the children, and waits for them
    }(&ran));
    EXPECT_THROW(co_await cancelled_first, corio::cancelled_error);
    EXPECT_EQ(ran, 0);

    std::vector<corio::join_handle<int>> children;
    {
      corio::task_group group;
      children.push_back(group.spawn(counts_its_start(&ran)));
      children.push_back(group.spawn(counts_its_start(&ran)));
    } // destroyed without wait(): the children are cancelled
    for (auto& h : children)
      EXPECT_THROW((void)co_await h, corio::cancelled_error);
    EXPECT_EQ(ran, 0);
  });
}

} // namespace
