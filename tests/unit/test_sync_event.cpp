// corio::event: set/clear/wait, waking every waiter, cancellation.
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/event.hpp>
#include <corio/testing/mock_clock.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "loop_fixture.hpp"

using namespace std::chrono_literals;
using corio::task;
using corio::testing::expect_no_other_task;
using corio::testing::run_then_abandon;
using corio::testing::was_cancelled;

namespace {

using log_t = std::vector<int>;

class SyncEvent : public corio::testing::ordered_and_shuffled {};

INSTANTIATE_TEST_SUITE_P(Order, SyncEvent, corio::testing::ready_orders());

task<> waiter(corio::event& ev, log_t& log, int id, corio::duration arrive) {
  if (arrive > 0ms)
    co_await corio::sleep(arrive);
  co_await ev.wait();
  log.push_back(id);
}

TEST_P(SyncEvent, WaitReturnsAtOnceWhileSet) {
  run([]() -> task<> {
    corio::event ev;
    EXPECT_FALSE(ev.is_set());
    ev.set();
    EXPECT_TRUE(ev.is_set());
    const auto t0 = corio::event_loop::current()->time();
    co_await ev.wait();
    co_await ev.wait();
    EXPECT_EQ(corio::event_loop::current()->time(), t0);
    ev.clear();
    EXPECT_FALSE(ev.is_set());
    ev.set();
    ev.set(); // idempotent
    co_await ev.wait();
  });
}

TEST_P(SyncEvent, SetWakesEveryWaiterInArrivalOrder) {
  run([]() -> task<> {
    corio::event ev;
    log_t log;
    std::vector<corio::join_handle<>> hs;
    for (int id : {3, 1, 2})
      hs.push_back(corio::spawn(waiter(ev, log, id, std::chrono::milliseconds(id))));
    co_await corio::sleep(1s);
    EXPECT_EQ(ev.waiting(), 3u);
    EXPECT_TRUE(log.empty());
    const auto t0 = corio::event_loop::current()->time();
    ev.set();
    EXPECT_EQ(ev.waiting(), 0u);
    for (auto& h : hs)
      co_await h;
    EXPECT_EQ(corio::event_loop::current()->time(), t0);
    EXPECT_EQ(log.size(), 3u); // every waiter returned (their run order within one batch is the loop's)
    expect_no_other_task();
  });
}

TEST_P(SyncEvent, ClearRightAfterSetStillReleasesTheWokenWaiters) {
  run([]() -> task<> {
    corio::event ev;
    log_t log;
    auto a = corio::spawn(waiter(ev, log, 1, 0ms));
    auto b = corio::spawn(waiter(ev, log, 2, 0ms));
    co_await corio::sleep(1ms);
    ev.set();
    ev.clear();
    co_await a;
    co_await b;
    EXPECT_EQ(log.size(), 2u);
    auto late = corio::spawn(waiter(ev, log, 3, 0ms)); // the event is clear again: this one waits
    co_await corio::sleep(1ms);
    EXPECT_EQ(ev.waiting(), 1u);
    ev.set();
    co_await late;
    EXPECT_EQ(log.size(), 3u);
  });
}

TEST_P(SyncEvent, CancelAWaiterBeforeSet) {
  run([]() -> task<> {
    corio::event ev;
    log_t log;
    auto a = corio::spawn(waiter(ev, log, 1, 1ms));
    auto b = corio::spawn(waiter(ev, log, 2, 2ms));
    auto c = corio::spawn(waiter(ev, log, 3, 3ms));
    co_await corio::sleep(5ms);
    b.cancel();
    EXPECT_TRUE(co_await was_cancelled(b));
    EXPECT_EQ(ev.waiting(), 2u);
    ev.set();
    co_await a;
    co_await c;
    std::sort(log.begin(), log.end());
    EXPECT_EQ(log, (log_t{1, 3}));
    expect_no_other_task();
  });
}

TEST_P(SyncEvent, CancelAfterSetRaisesAndTheOthersAreUnaffected) {
  run([]() -> task<> {
    corio::event ev;
    log_t log;
    auto a = corio::spawn(waiter(ev, log, 1, 1ms));
    auto b = corio::spawn(waiter(ev, log, 2, 2ms));
    co_await corio::sleep(5ms);
    ev.set();
    a.cancel(); // woken, not yet run
    EXPECT_TRUE(co_await was_cancelled(a));
    co_await b;
    EXPECT_EQ(log, (log_t{2}));
  });
}

TEST_P(SyncEvent, CancelBeforeWaitingRaisesEvenIfSet) {
  run([]() -> task<> {
    corio::event ev;
    ev.set();
    log_t log;
    auto a = corio::spawn(waiter(ev, log, 1, 0ms));
    a.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    EXPECT_TRUE(log.empty());
  });
}

TEST_P(SyncEvent, AbandonedWaitersUnlinkThemselves) {
  corio::event outlives;
  log_t log;
  run_then_abandon([&]() -> task<> {
    corio::spawn(waiter(outlives, log, 1, 0ms));
    corio::spawn(waiter(outlives, log, 2, 0ms));
    co_await corio::sleep(1ms);
    EXPECT_EQ(outlives.waiting(), 2u);
  });
  EXPECT_EQ(outlives.waiting(), 0u);
  outlives.set(); // nobody left to wake
  EXPECT_TRUE(log.empty());
}

task<> event_dies_first(log_t& log) {
  corio::event ev;
  corio::spawn(waiter(ev, log, 1, 0ms));
  co_await corio::sleep(1ms);
  EXPECT_EQ(ev.waiting(), 1u);
}

TEST_P(SyncEvent, EventDestroyedBeforeItsWaitersUnlinksThem) {
  log_t log;
  run_then_abandon([&log] { return event_dies_first(log); });
  EXPECT_TRUE(log.empty());
}

} // namespace
