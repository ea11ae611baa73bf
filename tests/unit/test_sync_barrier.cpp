// corio::barrier: rounds, arrival indices, abort/reset, cancellation.
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/barrier.hpp>
#include <corio/testing/mock_clock.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <vector>

#include "loop_fixture.hpp"

using namespace std::chrono_literals;
using corio::task;
using corio::testing::expect_no_other_task;
using corio::testing::run_then_abandon;
using corio::testing::was_cancelled;

namespace {

class SyncBarrier : public corio::testing::ordered_and_shuffled {};

INSTANTIATE_TEST_SUITE_P(Order, SyncBarrier, corio::testing::ready_orders());

/// Arrives after `arrive`, returns its index.
task<std::size_t> party(corio::barrier& b, corio::duration arrive) {
  if (arrive > 0ms)
    co_await corio::sleep(arrive);
  co_return co_await b.wait();
}

/// Like party(), but returns -1 if the barrier broke.
task<long> party_or_broken(corio::barrier& b, corio::duration arrive) {
  if (arrive > 0ms)
    co_await corio::sleep(arrive);
  long index = -1;
  try {
    index = static_cast<long>(co_await b.wait());
  } catch (const corio::broken_barrier_error&) {
  }
  co_return index;
}

TEST_P(SyncBarrier, AllPartiesPassTogetherWithTheirArrivalIndex) {
  run([]() -> task<> {
    corio::barrier b(3);
    EXPECT_EQ(b.parties(), 3u);
    auto x = corio::spawn(party(b, 2ms));
    auto y = corio::spawn(party(b, 1ms));
    co_await corio::sleep(5ms);
    EXPECT_EQ(b.n_waiting(), 2u);
    EXPECT_FALSE(x.done());
    const auto t0 = corio::event_loop::current()->time();
    EXPECT_EQ(co_await b.wait(), 2u); // the last to arrive does not wait
    EXPECT_EQ(corio::event_loop::current()->time(), t0);
    EXPECT_EQ(b.n_waiting(), 0u);
    EXPECT_EQ(co_await y, 0u);
    EXPECT_EQ(co_await x, 1u);
    expect_no_other_task();
  });
}

TEST_P(SyncBarrier, IsCyclic) {
  run([]() -> task<> {
    corio::barrier b(2);
    auto worker = [](corio::barrier& bar, std::vector<std::size_t>& seen) -> task<> {
      for (int round = 0; round < 3; ++round)
        seen.push_back(co_await bar.wait());
    };
    std::vector<std::size_t> seen;
    auto w = corio::spawn(worker(b, seen));
    for (int round = 0; round < 3; ++round) {
      co_await corio::sleep(1ms);
      EXPECT_EQ(co_await b.wait(), 1u); // the worker arrived first each round
    }
    co_await w;
    EXPECT_EQ(seen, (std::vector<std::size_t>{0, 0, 0}));
  });
}

TEST_P(SyncBarrier, OnePartyNeverWaits) {
  run([]() -> task<> {
    corio::barrier b(1);
    EXPECT_EQ(co_await b.wait(), 0u);
    EXPECT_EQ(co_await b.wait(), 0u);
  });
  EXPECT_THROW(corio::barrier(0), std::invalid_argument);
}

TEST_P(SyncBarrier, AbortBreaksItUntilReset) {
  run([]() -> task<> {
    corio::barrier b(3);
    auto x = corio::spawn(party_or_broken(b, 1ms));
    auto y = corio::spawn(party_or_broken(b, 2ms));
    co_await corio::sleep(5ms);
    b.abort();
    EXPECT_TRUE(b.broken());
    EXPECT_EQ(co_await x, -1);
    EXPECT_EQ(co_await y, -1);
    EXPECT_THROW(co_await b.wait(), corio::broken_barrier_error);
    b.reset();
    EXPECT_FALSE(b.broken());
    auto z = corio::spawn(party(b, 0ms));
    auto w = corio::spawn(party(b, 0ms));
    co_await corio::sleep(1ms);
    EXPECT_EQ(co_await b.wait(), 2u);
    EXPECT_EQ((co_await z) + (co_await w), 1u); // 0 and 1, whichever ran first
    expect_no_other_task();
  });
}

TEST_P(SyncBarrier, ResetBreaksTheCurrentWaitersOnly) {
  run([]() -> task<> {
    corio::barrier b(2);
    auto x = corio::spawn(party_or_broken(b, 1ms));
    co_await corio::sleep(5ms);
    b.reset();
    EXPECT_FALSE(b.broken());
    EXPECT_EQ(co_await x, -1);
    auto y = corio::spawn(party(b, 1ms));
    co_await corio::sleep(2ms);
    EXPECT_EQ(co_await b.wait(), 1u);
    EXPECT_EQ(co_await y, 0u);
  });
}

TEST_P(SyncBarrier, CancelledWaiterWithdrawsItsArrival) {
  run([]() -> task<> {
    corio::barrier b(3);
    auto x = corio::spawn(party(b, 1ms));
    auto y = corio::spawn(party(b, 2ms));
    co_await corio::sleep(5ms);
    x.cancel();
    EXPECT_TRUE(co_await was_cancelled(x));
    EXPECT_EQ(b.n_waiting(), 1u);
    auto z = corio::spawn(party(b, 1ms));
    co_await corio::sleep(5ms);
    EXPECT_FALSE(y.done()); // x's arrival no longer counts: three parties are needed still
    EXPECT_EQ(co_await b.wait(), 2u);
    EXPECT_EQ(co_await y, 0u); // indices stay unique and in arrival order
    EXPECT_EQ(co_await z, 1u);
    EXPECT_FALSE(b.broken());
    expect_no_other_task();
  });
}

TEST_P(SyncBarrier, CancelAfterTheRoundCompletedLeavesTheOthersAlone) {
  run([]() -> task<> {
    corio::barrier b(3);
    auto x = corio::spawn(party(b, 1ms));
    auto y = corio::spawn(party(b, 2ms));
    co_await corio::sleep(5ms);
    EXPECT_EQ(co_await b.wait(), 2u);
    x.cancel(); // released with index 0, not yet run
    EXPECT_TRUE(co_await was_cancelled(x));
    EXPECT_EQ(co_await y, 1u);
    EXPECT_EQ(b.n_waiting(), 0u);
    EXPECT_FALSE(b.broken());
  });
}

TEST_P(SyncBarrier, ManyRoundsManyParties) {
  run([]() -> task<> {
    constexpr std::size_t parties = 5;
    corio::barrier b(parties);
    auto worker = [](corio::barrier& bar, std::map<int, std::vector<std::size_t>>& by_round, int id) -> task<> {
      for (int round = 0; round < 4; ++round) {
        co_await corio::sleep(std::chrono::milliseconds((id * 7 + round * 3) % 5));
        by_round[round].push_back(co_await bar.wait());
      }
    };
    std::map<int, std::vector<std::size_t>> by_round;
    std::vector<corio::join_handle<>> hs;
    for (int id = 0; id < static_cast<int>(parties); ++id)
      hs.push_back(corio::spawn(worker(b, by_round, id)));
    for (auto& h : hs)
      co_await h;
    for (auto& [round, indices] : by_round) {
      std::sort(indices.begin(), indices.end());
      EXPECT_EQ(indices, (std::vector<std::size_t>{0, 1, 2, 3, 4})) << "round " << round;
    }
    expect_no_other_task();
  });
}

TEST_P(SyncBarrier, AbandonedWaitersUnlinkThemselves) {
  corio::barrier outlives(3);
  run_then_abandon([&]() -> task<> {
    corio::spawn(party(outlives, 0ms));
    corio::spawn(party(outlives, 0ms));
    co_await corio::sleep(1ms);
    EXPECT_EQ(outlives.n_waiting(), 2u);
  });
  EXPECT_EQ(outlives.n_waiting(), 0u);
  EXPECT_FALSE(outlives.broken());
}

task<> barrier_dies_first() {
  corio::barrier b(3);
  corio::spawn(party(b, 0ms));
  co_await corio::sleep(1ms);
  EXPECT_EQ(b.n_waiting(), 1u);
}

TEST_P(SyncBarrier, BarrierDestroyedBeforeItsWaitersUnlinksThem) {
  run_then_abandon([] { return barrier_dies_first(); });
}

} // namespace
