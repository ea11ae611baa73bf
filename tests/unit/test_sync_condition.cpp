// corio::condition: wait/notify on a lock, wait_for, re-acquiring on cancellation, no lost notification.
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/condition.hpp>
#include <corio/testing/mock_clock.hpp>
#include <corio/timeout.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "loop_fixture.hpp"

using namespace std::chrono_literals;
using corio::task;
using corio::testing::expect_no_other_task;
using corio::testing::run_then_abandon;
using corio::testing::was_cancelled;

namespace {

using log_t = std::vector<int>;

class SyncCondition : public corio::testing::ordered_and_shuffled {};

INSTANTIATE_TEST_SUITE_P(Order, SyncCondition, corio::testing::ready_orders());

/// Arrives after `arrive`, waits once for a notification, logs `id`. Checks it holds the lock after
/// wait() whether it returned or raised.
task<> waiter(corio::condition& cv, log_t& log, int id, corio::duration arrive) {
  if (arrive > 0ms)
    co_await corio::sleep(arrive);
  auto g = co_await cv.scoped();
  bool raised = false;
  try {
    co_await cv.wait();
  } catch (const corio::cancelled_error&) {
    raised = true;
  }
  EXPECT_TRUE(cv.locked());
  if (raised)
    throw corio::cancelled_error(); // the guard releases while unwinding
  log.push_back(id);
}

TEST_P(SyncCondition, WaitAndNotifyNeedTheLock) {
  run([]() -> task<> {
    corio::condition cv;
    EXPECT_THROW(co_await cv.wait(), corio::invalid_state_error);
    EXPECT_THROW(cv.notify(), corio::invalid_state_error);
    EXPECT_THROW(cv.notify_all(), corio::invalid_state_error);
    auto g = co_await cv.scoped();
    cv.notify(); // nobody waits: nothing happens
    cv.notify_all();
    EXPECT_TRUE(cv.locked());
  });
}

task<> hold_the_lock(corio::condition& cv) { co_await cv.acquire(); }

TEST_P(SyncCondition, WaitWhileTheLockIsHandedToAnotherTaskRaises) {
  run([]() -> task<> {
    corio::condition cv;
    co_await cv.acquire();
    auto h = corio::spawn(hold_the_lock(cv));
    co_await corio::sleep(1ms);
    cv.release(); // handed to h, which has not run yet: not ours any more
    EXPECT_THROW(co_await cv.wait(), corio::invalid_state_error);
    EXPECT_EQ(cv.waiting(), 0u);
    co_await h;
    EXPECT_TRUE(cv.locked()); // h's
    cv.release();
  });
}

TEST_P(SyncCondition, NotifyWakesTheLongestWaitingFirst) {
  run([]() -> task<> {
    corio::condition cv;
    log_t log;
    std::vector<corio::join_handle<>> hs;
    for (int id : {2, 4, 1, 3, 5})
      hs.push_back(corio::spawn(waiter(cv, log, id, std::chrono::milliseconds(id))));
    co_await corio::sleep(10ms);
    EXPECT_EQ(cv.waiting(), 5u);
    {
      auto g = co_await cv.scoped();
      cv.notify();
    }
    co_await corio::sleep(1ms);
    EXPECT_EQ(log, (log_t{1}));
    {
      auto g = co_await cv.scoped();
      cv.notify(2);
      EXPECT_EQ(cv.waiting(), 2u);
    }
    co_await corio::sleep(1ms);
    EXPECT_EQ(log, (log_t{1, 2, 3}));
    {
      auto g = co_await cv.scoped();
      cv.notify_all();
    }
    for (auto& h : hs)
      co_await h;
    EXPECT_EQ(log, (log_t{1, 2, 3, 4, 5}));
    EXPECT_FALSE(cv.locked());
    expect_no_other_task();
  });
}

TEST_P(SyncCondition, WaitReturnsOnlyOnceTheNotifierReleasedTheLock) {
  run([]() -> task<> {
    corio::condition cv;
    log_t log;
    auto h = corio::spawn(waiter(cv, log, 1, 0ms));
    co_await corio::sleep(1ms);
    auto g = co_await cv.scoped();
    cv.notify();
    co_await corio::sleep(1h); // still holding the lock: the waiter cannot return
    EXPECT_TRUE(log.empty());
    g.unlock();
    co_await h;
    EXPECT_EQ(log, (log_t{1}));
  });
}

task<> consumer(corio::condition& cv, std::deque<int>& items, log_t& log, int n) {
  for (int i = 0; i < n; ++i) {
    auto g = co_await cv.scoped();
    auto ready = [&items] { return !items.empty(); }; // named: no lambda in a co_await expression
    co_await cv.wait_for(ready);
    log.push_back(items.front());
    items.pop_front();
  }
}

TEST_P(SyncCondition, WaitForAPredicate) {
  run([]() -> task<> {
    corio::condition cv;
    std::deque<int> items;
    log_t log;
    auto c = corio::spawn(consumer(cv, items, log, 4));
    for (int i = 1; i <= 4; ++i) {
      co_await corio::sleep(1ms);
      auto g = co_await cv.scoped();
      items.push_back(i);
      if (i % 2 == 0)
        items.push_back(10 * i);
      cv.notify();
    }
    co_await c;
    EXPECT_EQ(log, (log_t{1, 2, 20, 3}));
    // The predicate is checked first: no wait at all when it already holds.
    auto g = co_await cv.scoped();
    auto ready = [&items] { return !items.empty(); };
    const auto t0 = corio::event_loop::current()->time();
    co_await cv.wait_for(ready);
    EXPECT_EQ(corio::event_loop::current()->time(), t0);
    expect_no_other_task();
  });
}

TEST_P(SyncCondition, ConditionOnASharedLock) {
  run([]() -> task<> {
    corio::lock lk;
    corio::condition a(lk), b(lk);
    log_t log;
    auto h = corio::spawn(waiter(b, log, 7, 0ms));
    co_await corio::sleep(1ms);
    EXPECT_FALSE(lk.locked()); // released by the wait
    co_await lk.acquire();
    EXPECT_TRUE(a.locked() && b.locked());
    a.notify_all(); // nobody waits on a
    b.notify();
    lk.release();
    co_await h;
    EXPECT_EQ(log, (log_t{7}));
    EXPECT_EQ(&b.underlying_lock(), &lk);
  });
}

TEST_P(SyncCondition, CancelledWaiterReacquiresTheLockBeforeRaising) {
  run([]() -> task<> {
    corio::condition cv;
    log_t log;
    auto h = corio::spawn(waiter(cv, log, 1, 0ms));
    co_await corio::sleep(1ms);
    auto g = co_await cv.scoped();
    h.cancel();
    co_await corio::sleep(1h); // we hold the lock: the cancelled waiter cannot raise yet
    EXPECT_FALSE(h.done());
    EXPECT_EQ(cv.waiting(), 0u);                   // it left the condition...
    EXPECT_EQ(cv.underlying_lock().waiting(), 1u); // ...and queues for the lock
    g.unlock();
    EXPECT_TRUE(co_await was_cancelled(h)); // its check that it held the lock is in waiter()
    EXPECT_FALSE(cv.locked());
    EXPECT_TRUE(log.empty());
  });
}

TEST_P(SyncCondition, CancelledWhileTheLockIsFreeRaisesAtOnce) {
  run([]() -> task<> {
    corio::condition cv;
    log_t log;
    auto h = corio::spawn(waiter(cv, log, 1, 0ms));
    co_await corio::sleep(1ms);
    h.cancel();
    EXPECT_TRUE(co_await was_cancelled(h));
    EXPECT_FALSE(cv.locked());
  });
}

TEST_P(SyncCondition, NotifiedThenCancelledPassesTheNotificationOn) {
  run([]() -> task<> {
    corio::condition cv;
    log_t log;
    auto a = corio::spawn(waiter(cv, log, 1, 1ms));
    auto b = corio::spawn(waiter(cv, log, 2, 2ms));
    co_await corio::sleep(5ms);
    {
      auto g = co_await cv.scoped();
      cv.notify(); // a is notified...
      a.cancel();  // ...and cancelled: b must get the notification instead
    }
    EXPECT_TRUE(co_await was_cancelled(a));
    co_await b;
    EXPECT_EQ(log, (log_t{2}));
    expect_no_other_task();
  });
}

TEST_P(SyncCondition, CancelledBeforeNotifyDoesNotConsumeANotification) {
  run([]() -> task<> {
    corio::condition cv;
    log_t log;
    auto a = corio::spawn(waiter(cv, log, 1, 1ms));
    auto b = corio::spawn(waiter(cv, log, 2, 2ms));
    auto c = corio::spawn(waiter(cv, log, 3, 3ms));
    co_await corio::sleep(5ms);
    a.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    {
      auto g = co_await cv.scoped();
      cv.notify();
    }
    co_await b;
    EXPECT_EQ(log, (log_t{2})); // exactly one notification, to b
    EXPECT_EQ(cv.waiting(), 1u);
    {
      auto g = co_await cv.scoped();
      cv.notify();
    }
    co_await c;
    EXPECT_EQ(log, (log_t{2, 3}));
  });
}

/// Waits for a notification for at most `d`; returns whether it timed out. Checks it held the lock.
task<bool> wait_within(corio::condition& cv, corio::duration d) {
  auto g = co_await cv.scoped();
  bool timed_out = false;
  try {
    auto deadline = corio::timeout(d);
    co_await cv.wait();
  } catch (const corio::timeout_error&) {
    timed_out = true;
  }
  EXPECT_TRUE(cv.locked());
  co_return timed_out;
}

TEST_P(SyncCondition, TimeoutRaisesOnceTheLockIsHeldAgain) {
  run([]() -> task<> {
    corio::condition cv;
    const auto t0 = corio::event_loop::current()->time();
    auto h = corio::spawn(wait_within(cv, 5s));
    co_await corio::sleep(1s);
    auto g = co_await cv.scoped();
    co_await corio::sleep(10s); // the deadline passes while we hold the lock
    EXPECT_FALSE(h.done());
    g.unlock();
    EXPECT_TRUE(co_await h);
    EXPECT_EQ(corio::event_loop::current()->time() - t0, 11s);
    EXPECT_FALSE(cv.locked());
  });
}

TEST_P(SyncCondition, AbandonedWaitersUnlinkThemselves) {
  corio::condition outlives;
  log_t log;
  run_then_abandon([&]() -> task<> {
    corio::spawn(waiter(outlives, log, 1, 0ms));
    corio::spawn(waiter(outlives, log, 2, 0ms));
    co_await corio::sleep(1ms);
    EXPECT_EQ(outlives.waiting(), 2u);
    co_await outlives.acquire();
    outlives.notify(); // 1 queues for the lock, 2 stays on the condition
  });
  EXPECT_EQ(outlives.waiting(), 0u);
  EXPECT_EQ(outlives.underlying_lock().waiting(), 0u);
  EXPECT_TRUE(log.empty());
}

/// Arrives after `arrive`, takes the lock by hand and waits once, then logs `id` and releases. When
/// cancelled it only raises: its condition and the lock may be gone by then.
task<> bare_waiter(corio::condition* cv, log_t& log, int id, corio::duration arrive) {
  co_await corio::sleep(arrive);
  co_await cv->acquire();
  co_await cv->wait();
  log.push_back(id);
  cv->release();
}

TEST_P(SyncCondition, DestroyedWhileTasksWaitTheyCanStillBeCancelled) {
  run([]() -> task<> {
    std::optional<corio::condition> cv(std::in_place);
    log_t log;
    auto a = corio::spawn(bare_waiter(&*cv, log, 1, 1ms));
    auto b = corio::spawn(bare_waiter(&*cv, log, 2, 2ms));
    auto c = corio::spawn(bare_waiter(&*cv, log, 3, 3ms));
    co_await corio::sleep(5ms);
    co_await cv->acquire();
    cv->notify(2); // a and b queue for the lock; c stays on the condition
    cv->release(); // the lock is handed to a, which has not run yet
    cv.reset();    // its own lock too
    cv.emplace();  // in the same place, unlocked: a stale notify(1) would raise there
    a.cancel();    // notified, holding the dead lock: nothing to pass on
    b.cancel();    // queued on the dead lock
    c.cancel();    // queued on the dead condition
    EXPECT_TRUE(co_await was_cancelled(a));
    EXPECT_TRUE(co_await was_cancelled(b));
    EXPECT_TRUE(co_await was_cancelled(c));
    EXPECT_TRUE(log.empty());
    EXPECT_FALSE(cv->locked());
    expect_no_other_task();
  });
}

/// waiter() on a condition that may be destroyed while it waits: checks the shared lock `lk` instead.
task<> shared_waiter(corio::lock& lk, corio::condition* cv, log_t& log, int id, corio::duration arrive) {
  co_await corio::sleep(arrive);
  auto g = co_await lk.scoped();
  bool raised = false;
  try {
    co_await cv->wait();
  } catch (const corio::cancelled_error&) {
    raised = true;
  }
  EXPECT_TRUE(lk.locked());
  if (raised)
    throw corio::cancelled_error();
  log.push_back(id);
}

TEST_P(SyncCondition, DestroyedWhileNotifiedTasksQueueForASharedLock) {
  run([]() -> task<> {
    corio::lock lk;
    corio::lock other;
    std::optional<corio::condition> cv(std::in_place, lk);
    log_t log;
    auto a = corio::spawn(shared_waiter(lk, &*cv, log, 1, 1ms));
    auto b = corio::spawn(shared_waiter(lk, &*cv, log, 2, 2ms));
    auto c = corio::spawn(bare_waiter(&*cv, log, 3, 3ms));
    co_await corio::sleep(5ms);
    co_await lk.acquire();
    cv->notify(2); // a and b queue for lk, which outlives the condition; c stays on it
    a.cancel();    // raises once it holds lk, passing nothing on
    cv.reset();
    cv.emplace(other); // in the same place, on a lock nobody holds: a stale notify(1) would raise
    c.cancel();        // its queue is gone: raises at once, without lk (we hold it)
    EXPECT_TRUE(co_await was_cancelled(c));
    EXPECT_FALSE(a.done());
    lk.release();
    EXPECT_TRUE(co_await was_cancelled(a));
    co_await b; // notified before the condition died: returns holding lk
    EXPECT_EQ(log, (log_t{2}));
    EXPECT_FALSE(lk.locked());
    EXPECT_FALSE(other.locked());
  });
}

} // namespace
