// corio::lock: mutual exclusion, FIFO hand-off, cancellation at every point of a wait.
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/lock.hpp>
#include <corio/testing/mock_clock.hpp>
#include <corio/timeout.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
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

class SyncLock : public corio::testing::ordered_and_shuffled {};

INSTANTIATE_TEST_SUITE_P(Order, SyncLock, corio::testing::ready_orders());

/// Arrives after `arrive`, takes the lock, logs `id`, holds it for `hold`.
task<> locker(corio::lock& lk, log_t& log, int id, corio::duration arrive, corio::duration hold) {
  if (arrive > 0ms)
    co_await corio::sleep(arrive);
  auto g = co_await lk.scoped();
  log.push_back(id);
  co_await corio::sleep(hold);
}

TEST_P(SyncLock, AcquireReleaseAndMisuse) {
  run([]() -> task<> {
    corio::lock lk;
    EXPECT_FALSE(lk.locked());
    EXPECT_THROW(lk.release(), corio::invalid_state_error);
    co_await lk.acquire();
    EXPECT_TRUE(lk.locked());
    EXPECT_FALSE(lk.try_acquire());
    lk.release();
    EXPECT_TRUE(lk.try_acquire());
    lk.release();
    EXPECT_FALSE(lk.locked());
  });
}

TEST_P(SyncLock, GuardReleasesOnceAndMoves) {
  run([]() -> task<> {
    corio::lock lk;
    {
      auto g = co_await lk.scoped();
      EXPECT_TRUE(g.owns_lock());
      EXPECT_TRUE(lk.locked());
      corio::lock_guard<corio::lock> moved = std::move(g);
      EXPECT_FALSE(g.owns_lock());
      moved.unlock();
      EXPECT_FALSE(lk.locked());
      moved.unlock(); // no-op
    }
    EXPECT_FALSE(lk.locked());
    { auto g = co_await lk.scoped(); }
    EXPECT_FALSE(lk.locked());
  });
}

TEST_P(SyncLock, MutualExclusion) {
  run([]() -> task<> {
    corio::lock lk;
    int inside = 0, most = 0, done = 0;
    auto worker = [](corio::lock& l, int& in, int& mx, int& d) -> task<> {
      for (int i = 0; i < 5; ++i) {
        auto g = co_await l.scoped();
        mx = std::max(mx, ++in);
        co_await corio::sleep(1ms);
        co_await corio::sleep(0ms);
        --in;
      }
      ++d;
    };
    std::vector<corio::join_handle<>> hs;
    for (int i = 0; i < 4; ++i)
      hs.push_back(corio::spawn(worker(lk, inside, most, done)));
    for (auto& h : hs)
      co_await h;
    EXPECT_EQ(most, 1);
    EXPECT_EQ(done, 4);
    EXPECT_FALSE(lk.locked());
    expect_no_other_task();
  });
}

TEST_P(SyncLock, WaitersAreServedInArrivalOrder) {
  run([]() -> task<> {
    corio::lock lk;
    log_t log;
    co_await lk.acquire();
    std::vector<corio::join_handle<>> hs;
    // Spawned in one order, arriving in another: arrival order is what counts.
    const int arrivals[] = {3, 1, 4, 5, 2};
    for (int id : arrivals)
      hs.push_back(corio::spawn(locker(lk, log, id, std::chrono::milliseconds(id), 1ms)));
    co_await corio::sleep(10ms);
    EXPECT_EQ(lk.waiting(), 5u);
    lk.release();
    for (auto& h : hs)
      co_await h;
    EXPECT_EQ(log, (log_t{1, 2, 3, 4, 5}));
    EXPECT_FALSE(lk.locked());
    expect_no_other_task();
  });
}

TEST_P(SyncLock, ReleaseHandsOverSoANewcomerCannotBarge) {
  run([]() -> task<> {
    corio::lock lk;
    log_t log;
    co_await lk.acquire();
    auto waiter = corio::spawn(locker(lk, log, 1, 0ms, 0ms));
    co_await corio::sleep(1ms);
    lk.release();
    // The waiter owns the lock although it has not run yet.
    EXPECT_TRUE(lk.locked());
    EXPECT_FALSE(lk.try_acquire());
    auto newcomer = corio::spawn(locker(lk, log, 2, 0ms, 0ms));
    co_await waiter;
    co_await newcomer;
    EXPECT_EQ(log, (log_t{1, 2}));
    expect_no_other_task();
  });
}

TEST_P(SyncLock, CancelBeforeTheWaitBeginsTakesNothing) {
  run([]() -> task<> {
    corio::lock lk;
    log_t log;
    auto h = corio::spawn(locker(lk, log, 1, 0ms, 0ms));
    h.cancel(); // before it ever ran
    EXPECT_TRUE(co_await was_cancelled(h));
    EXPECT_FALSE(lk.locked());
    EXPECT_TRUE(log.empty());
  });
}

TEST_P(SyncLock, CancelAQueuedWaiterKeepsTheOthersInOrder) {
  run([]() -> task<> {
    corio::lock lk;
    log_t log;
    co_await lk.acquire();
    auto a = corio::spawn(locker(lk, log, 1, 1ms, 1ms));
    auto b = corio::spawn(locker(lk, log, 2, 2ms, 1ms));
    auto c = corio::spawn(locker(lk, log, 3, 3ms, 1ms));
    co_await corio::sleep(5ms);
    EXPECT_EQ(lk.waiting(), 3u);
    b.cancel();
    co_await corio::sleep(0ms);
    EXPECT_EQ(lk.waiting(), 2u);
    EXPECT_TRUE(lk.locked());
    lk.release();
    co_await a;
    co_await c;
    EXPECT_TRUE(co_await was_cancelled(b));
    EXPECT_EQ(log, (log_t{1, 3}));
    EXPECT_FALSE(lk.locked());
    expect_no_other_task();
  });
}

TEST_P(SyncLock, CancelAfterTheLockWasHandedOverPassesItOn) {
  run([]() -> task<> {
    corio::lock lk;
    log_t log;
    co_await lk.acquire();
    auto a = corio::spawn(locker(lk, log, 1, 1ms, 1ms));
    auto b = corio::spawn(locker(lk, log, 2, 2ms, 1ms));
    co_await corio::sleep(5ms);
    lk.release(); // a owns the lock now, but has not run
    a.cancel();   // ...and is cancelled before it does: it must hand the lock to b
    EXPECT_TRUE(co_await was_cancelled(a));
    co_await b;
    EXPECT_EQ(log, (log_t{2}));
    EXPECT_FALSE(lk.locked());
    expect_no_other_task();
  });
}

TEST_P(SyncLock, CancelAfterHandOverWithNobodyElseUnlocks) {
  run([]() -> task<> {
    corio::lock lk;
    log_t log;
    co_await lk.acquire();
    auto a = corio::spawn(locker(lk, log, 1, 1ms, 1ms));
    co_await corio::sleep(5ms);
    lk.release();
    a.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    EXPECT_FALSE(lk.locked());
    EXPECT_TRUE(log.empty());
    EXPECT_TRUE(lk.try_acquire());
    lk.release();
  });
}

TEST_P(SyncLock, CancelledHolderReleasesThroughItsGuard) {
  run([]() -> task<> {
    corio::lock lk;
    log_t log;
    auto holder = corio::spawn(locker(lk, log, 1, 0ms, 1h));
    auto next = corio::spawn(locker(lk, log, 2, 1ms, 1ms));
    co_await corio::sleep(2ms);
    holder.cancel();
    EXPECT_TRUE(co_await was_cancelled(holder));
    co_await next;
    EXPECT_EQ(log, (log_t{1, 2}));
    EXPECT_FALSE(lk.locked());
    expect_no_other_task();
  });
}

/// Cancelled while queued, it chooses to go on (uncancel) and waits again, at the back of the queue.
task<> stubborn(corio::lock& lk, log_t& log) {
  bool cancelled = false;
  try {
    co_await lk.acquire();
  } catch (const corio::cancelled_error&) {
    cancelled = true;
  }
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(corio::uncancel(), 0);
  co_await lk.acquire();
  log.push_back(9);
  lk.release();
}

TEST_P(SyncLock, UncancelledWaiterCanWaitAgain) {
  run([]() -> task<> {
    corio::lock lk;
    log_t log;
    co_await lk.acquire();
    auto s = corio::spawn(stubborn(lk, log));
    co_await corio::sleep(1ms);
    auto other = corio::spawn(locker(lk, log, 1, 1ms, 0ms));
    co_await corio::sleep(2ms);
    s.cancel();
    co_await corio::sleep(0ms);
    lk.release();
    co_await s;
    co_await other;
    EXPECT_EQ(log, (log_t{1, 9}));
    expect_no_other_task();
  });
}

TEST_P(SyncLock, AcquireNeedsARunningLoop) {
  corio::lock lk;
  auto a = lk.acquire();
  EXPECT_THROW((void)a.await_ready(), corio::loop_error);
  EXPECT_FALSE(lk.locked());
}

/// Acquires with a deadline; true if it got the lock (then released).
task<bool> acquire_within(corio::lock& lk, corio::duration d) {
  bool timed_out = false;
  try {
    auto deadline = corio::timeout(d);
    co_await lk.acquire();
  } catch (const corio::timeout_error&) {
    timed_out = true;
  }
  if (!timed_out)
    lk.release();
  co_return !timed_out;
}

TEST_P(SyncLock, TimeoutWhileWaiting) {
  run([]() -> task<> {
    corio::lock lk;
    co_await lk.acquire();
    const auto t0 = corio::event_loop::current()->time();
    auto h = corio::spawn(acquire_within(lk, 5s));
    EXPECT_FALSE(co_await h);
    EXPECT_EQ(corio::event_loop::current()->time() - t0, 5s);
    EXPECT_EQ(lk.waiting(), 0u);
    lk.release();
    EXPECT_TRUE(co_await acquire_within(lk, 5s));
  });
}

TEST_P(SyncLock, TimeoutAfterTheHandOverPassesTheLockOn) {
  run([]() -> task<> {
    corio::lock lk;
    log_t log;
    co_await lk.acquire();
    auto a = corio::spawn(acquire_within(lk, 5s));
    auto b = corio::spawn(locker(lk, log, 2, 1s, 0ms));
    co_await corio::sleep(5s); // a's deadline expires in the same iteration as this sleep...
    lk.release();              // ...and may already have run; if not, a owns the lock and times out
    const bool got = co_await a;
    co_await b;
    EXPECT_FALSE(got);
    EXPECT_EQ(log, (log_t{2}));
    EXPECT_FALSE(lk.locked());
  });
}

TEST_P(SyncLock, AbandonedWaitersUnlinkThemselves) {
  corio::lock outlives; // outlives the loop: its waiters' frames are destroyed first
  log_t log;
  run_then_abandon([&]() -> task<> {
    co_await outlives.acquire();
    corio::spawn(locker(outlives, log, 1, 0ms, 0ms));
    corio::spawn(locker(outlives, log, 2, 0ms, 0ms));
    co_await corio::sleep(1ms);
    EXPECT_EQ(outlives.waiting(), 2u);
  });
  EXPECT_EQ(outlives.waiting(), 0u);
  EXPECT_TRUE(outlives.locked()); // the main task's acquisition, never released
  EXPECT_TRUE(log.empty());
}

task<> lock_dies_first(log_t& log) {
  corio::lock lk; // destroyed when this task ends, before the frames of its waiters
  co_await lk.acquire();
  corio::spawn(locker(lk, log, 1, 0ms, 0ms));
  corio::spawn(locker(lk, log, 2, 0ms, 0ms));
  co_await corio::sleep(1ms);
  EXPECT_EQ(lk.waiting(), 2u);
}

TEST_P(SyncLock, LockDestroyedBeforeItsWaitersUnlinksThem) {
  log_t log;
  run_then_abandon([&log] { return lock_dies_first(log); });
  EXPECT_TRUE(log.empty());
}

/// Takes the lock and logs `id`, leaving the lock held (the test releases it).
task<> take_and_log(corio::lock& lk, log_t& log, int id) {
  co_await lk.acquire();
  log.push_back(id);
}

TEST_P(SyncLock, ReleaseWhileTheLockIsHandedToAWaiterRaises) {
  run([]() -> task<> {
    corio::lock lk;
    log_t log;
    co_await lk.acquire();
    auto b = corio::spawn(locker(lk, log, 2, 0ms, 1ms));
    auto c = corio::spawn(locker(lk, log, 3, 0ms, 1ms));
    co_await corio::sleep(1ms);
    lk.release(); // handed to b, which has not run yet
    // asyncio: "Lock is not acquired." (its lock is unlocked until the woken waiter runs)
    EXPECT_THROW(lk.release(), corio::invalid_state_error);
    EXPECT_TRUE(lk.locked()); // still b's
    EXPECT_EQ(lk.waiting(), 1u);
    co_await b;
    co_await c;
    EXPECT_EQ(log, (log_t{2, 3})); // one after the other, never both
    EXPECT_FALSE(lk.locked());
  });
}

TEST_P(SyncLock, AnyTaskMayReleaseOnceTheNewOwnerRan) {
  run([]() -> task<> {
    corio::lock lk;
    log_t log;
    co_await lk.acquire();
    auto b = corio::spawn(take_and_log(lk, log, 2));
    co_await corio::sleep(1ms);
    lk.release();
    co_await b; // b ran: it owns the lock
    EXPECT_EQ(log, (log_t{2}));
    lk.release(); // on b's behalf
    EXPECT_FALSE(lk.locked());
  });
}

TEST_P(SyncLock, GuardLeavesALockHandedOnByHandAlone) {
  run([]() -> task<> {
    corio::lock lk;
    log_t log;
    auto b = corio::spawn(take_and_log(lk, log, 2));
    {
      auto g = co_await lk.scoped();
      co_await corio::sleep(1ms); // b queues
      lk.release();               // handed to b; g must not release it again
    }
    EXPECT_TRUE(lk.locked());
    co_await b;
    EXPECT_EQ(log, (log_t{2}));
    EXPECT_TRUE(lk.locked()); // b's, until released
    lk.release();
  });
}

TEST_P(SyncLock, CancelledAfterItsLockWasDestroyedTouchesNothing) {
  run([]() -> task<> {
    std::optional<corio::lock> lk(std::in_place);
    log_t log;
    co_await lk->acquire();
    auto a = corio::spawn(take_and_log(*lk, log, 1));
    auto b = corio::spawn(take_and_log(*lk, log, 2));
    co_await corio::sleep(1ms);
    lk->release(); // handed to the first of them, which has not run yet; the other still queues
    lk.reset();
    lk.emplace(); // in the same place: a stale hand-on would show there
    co_await lk->acquire();
    a.cancel();
    b.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    EXPECT_TRUE(co_await was_cancelled(b));
    EXPECT_TRUE(lk->locked()); // ours: neither passed anything on to it
    EXPECT_EQ(lk->waiting(), 0u);
    EXPECT_TRUE(log.empty());
    lk->release();
  });
}

} // namespace
