// corio::semaphore and bounded_semaphore: permits, FIFO hand-off, over-release, cancellation.
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/semaphore.hpp>
#include <corio/testing/mock_clock.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "loop_fixture.hpp"

using namespace std::chrono_literals;
using corio::task;
using corio::testing::expect_no_other_task;
using corio::testing::run_then_abandon;
using corio::testing::was_cancelled;

namespace {

using log_t = std::vector<int>;

class SyncSemaphore : public corio::testing::ordered_and_shuffled {};

INSTANTIATE_TEST_SUITE_P(Order, SyncSemaphore, corio::testing::ready_orders());

/// Arrives after `arrive`, takes a permit, logs `id`, holds it for `hold`.
task<> holder(corio::semaphore& s, log_t& log, int id, corio::duration arrive, corio::duration hold) {
  if (arrive > 0ms)
    co_await corio::sleep(arrive);
  auto permit = co_await s.scoped();
  log.push_back(id);
  co_await corio::sleep(hold);
}

TEST_P(SyncSemaphore, CountsPermits) {
  run([]() -> task<> {
    corio::semaphore s(2);
    EXPECT_EQ(s.value(), 2u);
    EXPECT_FALSE(s.locked());
    co_await s.acquire();
    EXPECT_TRUE(s.try_acquire());
    EXPECT_EQ(s.value(), 0u);
    EXPECT_TRUE(s.locked());
    EXPECT_FALSE(s.try_acquire());
    s.release();
    s.release();
    s.release(); // a plain semaphore may go above its initial value
    EXPECT_EQ(s.value(), 3u);
    {
      auto g = co_await s.scoped();
      EXPECT_EQ(s.value(), 2u);
    }
    EXPECT_EQ(s.value(), 3u);
    corio::semaphore zero(0);
    EXPECT_TRUE(zero.locked());
  });
}

TEST_P(SyncSemaphore, AtMostValueHoldersAtOnce) {
  run([]() -> task<> {
    corio::semaphore s(3);
    int inside = 0, most = 0;
    auto worker = [](corio::semaphore& sem, int& in, int& mx, int i) -> task<> {
      co_await corio::sleep(std::chrono::milliseconds(i % 3));
      auto g = co_await sem.scoped();
      mx = std::max(mx, ++in);
      co_await corio::sleep(std::chrono::milliseconds(1 + i % 4));
      --in;
    };
    std::vector<corio::join_handle<>> hs;
    for (int i = 0; i < 12; ++i)
      hs.push_back(corio::spawn(worker(s, inside, most, i)));
    for (auto& h : hs)
      co_await h;
    EXPECT_EQ(most, 3);
    EXPECT_EQ(s.value(), 3u);
    expect_no_other_task();
  });
}

TEST_P(SyncSemaphore, WaitersAreServedInArrivalOrderAndCannotBeOvertaken) {
  run([]() -> task<> {
    corio::semaphore s(1);
    log_t log;
    co_await s.acquire();
    std::vector<corio::join_handle<>> hs;
    for (int id : {4, 2, 5, 1, 3})
      hs.push_back(corio::spawn(holder(s, log, id, std::chrono::milliseconds(id), 1ms)));
    co_await corio::sleep(10ms);
    EXPECT_EQ(s.waiting(), 5u);
    s.release();
    EXPECT_EQ(s.value(), 0u); // handed to the first waiter, not returned to the counter
    EXPECT_FALSE(s.try_acquire());
    hs.push_back(corio::spawn(holder(s, log, 6, 0ms, 1ms))); // a newcomer queues last
    for (auto& h : hs)
      co_await h;
    EXPECT_EQ(log, (log_t{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(s.value(), 1u);
    expect_no_other_task();
  });
}

TEST_P(SyncSemaphore, BoundedSemaphoreRefusesOverRelease) {
  run([]() -> task<> {
    corio::bounded_semaphore s(2);
    EXPECT_EQ(s.bound(), 2u);
    EXPECT_THROW(s.release(), corio::invalid_state_error);
    EXPECT_EQ(s.value(), 2u);
    co_await s.acquire();
    s.release();
    EXPECT_THROW(s.release(), corio::invalid_state_error);
    {
      auto g = co_await s.scoped();
      g.unlock();
      EXPECT_EQ(s.value(), 2u);
    } // the guard does not release twice
    EXPECT_EQ(s.value(), 2u);
    corio::bounded_semaphore none(0);
    EXPECT_THROW(none.release(), corio::invalid_state_error);
    try {
      s.release();
    } catch (const corio::invalid_state_error& e) {
      EXPECT_NE(std::string(e.what()).find("bounded_semaphore"), std::string::npos);
    }
  });
}

TEST_P(SyncSemaphore, BoundedSemaphoreReleaseHandsToAWaiter) {
  run([]() -> task<> {
    corio::bounded_semaphore s(1);
    log_t log;
    co_await s.acquire();
    auto h = corio::spawn(holder(s, log, 1, 0ms, 0ms));
    co_await corio::sleep(1ms);
    s.release(); // within bounds: the permit goes to the waiter
    EXPECT_EQ(s.value(), 0u);
    EXPECT_FALSE(s.try_acquire());
    co_await h;
    EXPECT_EQ(s.value(), 1u);
    EXPECT_THROW(s.release(), corio::invalid_state_error);
  });
}

TEST_P(SyncSemaphore, CancelQueuedWaiter) {
  run([]() -> task<> {
    corio::semaphore s(0);
    log_t log;
    auto a = corio::spawn(holder(s, log, 1, 1ms, 0ms));
    auto b = corio::spawn(holder(s, log, 2, 2ms, 0ms));
    co_await corio::sleep(5ms);
    a.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    EXPECT_EQ(s.waiting(), 1u);
    s.release();
    co_await b;
    EXPECT_EQ(log, (log_t{2}));
    EXPECT_EQ(s.value(), 1u);
  });
}

TEST_P(SyncSemaphore, CancelAfterThePermitWasHandedOverPassesItOn) {
  run([]() -> task<> {
    corio::semaphore s(0);
    log_t log;
    auto a = corio::spawn(holder(s, log, 1, 1ms, 0ms));
    auto b = corio::spawn(holder(s, log, 2, 2ms, 0ms));
    co_await corio::sleep(5ms);
    s.release(); // a owns the permit...
    a.cancel();  // ...and is cancelled before running: b must get it
    EXPECT_TRUE(co_await was_cancelled(a));
    co_await b;
    EXPECT_EQ(log, (log_t{2}));
    EXPECT_EQ(s.value(), 1u);
    expect_no_other_task();
  });
}

TEST_P(SyncSemaphore, CancelAfterHandOverWithNobodyElseReturnsThePermit) {
  run([]() -> task<> {
    corio::bounded_semaphore s(1);
    log_t log;
    co_await s.acquire();
    auto a = corio::spawn(holder(s, log, 1, 1ms, 0ms));
    co_await corio::sleep(5ms);
    s.release();
    a.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    EXPECT_EQ(s.value(), 1u); // back to the counter; not over the bound
    EXPECT_TRUE(log.empty());
  });
}

TEST_P(SyncSemaphore, AbandonedWaitersUnlinkThemselves) {
  corio::semaphore outlives(0);
  log_t log;
  run_then_abandon([&]() -> task<> {
    corio::spawn(holder(outlives, log, 1, 0ms, 0ms));
    corio::spawn(holder(outlives, log, 2, 0ms, 0ms));
    co_await corio::sleep(1ms);
    EXPECT_EQ(outlives.waiting(), 2u);
  });
  EXPECT_EQ(outlives.waiting(), 0u);
  EXPECT_EQ(outlives.value(), 0u);
}

TEST_P(SyncSemaphore, CancelledAfterItsSemaphoreWasDestroyedTouchesNothing) {
  run([]() -> task<> {
    std::optional<corio::semaphore> s(std::in_place, 0);
    log_t log;
    auto a = corio::spawn(holder(*s, log, 1, 0ms, 0ms));
    auto b = corio::spawn(holder(*s, log, 2, 0ms, 0ms));
    auto c = corio::spawn(holder(*s, log, 3, 0ms, 0ms));
    co_await corio::sleep(1ms);
    s->release();
    s->release(); // two of them woken with a permit, not run yet; one still queued
    s.reset();
    s.emplace(0); // in the same place: a stale hand-on would show there
    a.cancel();
    b.cancel();
    c.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    EXPECT_TRUE(co_await was_cancelled(b));
    EXPECT_TRUE(co_await was_cancelled(c));
    EXPECT_EQ(s->value(), 0u); // nothing was passed on to it
    EXPECT_TRUE(log.empty());
  });
}

} // namespace
