// corio::wait: all_completed, first_completed, first_exception, timeouts, cancellation, no lost wake-ups.
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/testing/mock_clock.hpp>
#include <corio/this_task.hpp>
#include <corio/timeout.hpp>
#include <corio/wait.hpp>

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
using corio::wait_options;
using corio::testing::after;
using corio::testing::fail_after;
using corio::testing::mock_clock;
using corio::testing::run_mock;

namespace {

task<std::unique_ptr<int>> boxed_after(corio::duration d, int v) {
  co_await corio::sleep(d);
  co_return std::make_unique<int>(v);
}

/// The values of finished handles, in order (-1 for an exception).
std::vector<int> values(std::vector<join_handle<int>>& hs) {
  std::vector<int> out;
  for (auto& h : hs)
    out.push_back(h.exception() ? -1 : h.result());
  return out;
}

std::vector<join_handle<int>> spawn_all(std::vector<task<int>> ts) {
  std::vector<join_handle<int>> out;
  for (auto& t : ts)
    out.push_back(corio::spawn(std::move(t)));
  return out;
}

TEST(Wait, AllCompletedByDefault) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<join_handle<int>> hs;
    hs.push_back(corio::spawn(after(2s, 2)));
    hs.push_back(corio::spawn(fail_after(1s, "one")));
    hs.push_back(corio::spawn(after(3s, 3)));
    auto [done, pending] = co_await corio::wait(hs); // does not raise the failure
    EXPECT_EQ(c->now() - t0, 3s);
    EXPECT_TRUE(pending.empty());
    EXPECT_EQ(values(done), (std::vector<int>{2, -1, 3})); // original order
    EXPECT_THROW(done[1].result(), std::runtime_error);
  });
}

TEST(Wait, FirstCompleted) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<join_handle<int>> hs;
    hs.push_back(corio::spawn(after(3s, 3)));
    hs.push_back(corio::spawn(after(1s, 1)));
    hs.push_back(corio::spawn(after(2s, 2)));
    wait_options options{.return_when = corio::first_completed};
    auto [done, pending] = co_await corio::wait(hs, options);
    EXPECT_EQ(c->now() - t0, 1s);
    EXPECT_EQ(values(done), std::vector<int>{1});
    EXPECT_EQ(pending.size(), 2u);
    EXPECT_FALSE(pending[0].done());
    EXPECT_EQ(pending[0].id(), hs[0].id()); // original order
    EXPECT_EQ(pending[1].id(), hs[2].id());
  });
}

TEST(Wait, FirstCompletedCountsEverythingDoneByThen) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<join_handle<int>> hs;
    hs.push_back(corio::spawn(after(1s, 1)));
    hs.push_back(corio::spawn(after(1s, 2)));
    hs.push_back(corio::spawn(after(5s, 3)));
    wait_options options{.return_when = corio::first_completed};
    auto [done, pending] = co_await corio::wait(hs, options);
    EXPECT_EQ(c->now() - t0, 1s);
    EXPECT_EQ(values(done), (std::vector<int>{1, 2})); // both finished in the same iteration
    EXPECT_EQ(pending.size(), 1u);
  });
}

TEST(Wait, FirstException) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<join_handle<int>> hs;
    hs.push_back(corio::spawn(after(1s, 1)));
    hs.push_back(corio::spawn(fail_after(2s, "two")));
    hs.push_back(corio::spawn(after(3s, 3)));
    wait_options options{.return_when = corio::first_exception};
    auto [done, pending] = co_await corio::wait(hs, options);
    EXPECT_EQ(c->now() - t0, 2s);
    EXPECT_EQ(values(done), (std::vector<int>{1, -1}));
    EXPECT_EQ(pending.size(), 1u);
    EXPECT_EQ(co_await pending[0], 3); // not cancelled
  });
}

TEST(Wait, FirstExceptionWithoutAnyWaitsForAllAndIgnoresCancellation) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<join_handle<int>> hs;
    hs.push_back(corio::spawn(after(1s, 1)));
    hs.push_back(corio::spawn(after(1h, 0)));
    hs.push_back(corio::spawn(after(3s, 3)));
    hs.push_back(corio::spawn([](join_handle<int> victim) -> task<int> {
      co_await corio::sleep(2s);
      victim.cancel(); // a cancelled task is not an exception for first_exception (asyncio's rule)
      co_return 4;
    }(hs[1])));
    wait_options options{.return_when = corio::first_exception};
    auto [done, pending] = co_await corio::wait(hs, options);
    EXPECT_EQ(c->now() - t0, 3s);
    EXPECT_EQ(done.size(), 4u);
    EXPECT_TRUE(done[1].cancelled());
    EXPECT_TRUE(pending.empty());
  });
}

TEST(Wait, TimeoutReturnsWhatIsDoneAndCancelsNothing) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<join_handle<int>> hs;
    hs.push_back(corio::spawn(after(1s, 1)));
    hs.push_back(corio::spawn(after(2s, 2)));
    hs.push_back(corio::spawn(after(3s, 3)));
    wait_options options{.timeout = 1500ms};
    auto [done, pending] = co_await corio::wait(hs, options);
    EXPECT_EQ(c->now() - t0, 1500ms);
    EXPECT_EQ(values(done), std::vector<int>{1});
    EXPECT_EQ(pending.size(), 2u);
    EXPECT_EQ(corio::cancelling(), 0); // no timeout_error: wait() just returns
    EXPECT_EQ(co_await pending[0], 2);
    EXPECT_EQ(co_await pending[1], 3);
    EXPECT_EQ(c->now() - t0, 3s);
  });
}

TEST(Wait, FinishingBeforeTheTimeoutCancelsTheTimer) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<join_handle<int>> hs;
    hs.push_back(corio::spawn(after(1s, 1)));
    hs.push_back(corio::spawn(after(2s, 2)));
    wait_options options{.return_when = corio::all_completed, .timeout = 1h};
    auto [done, pending] = co_await corio::wait(hs, options);
    EXPECT_EQ(c->now() - t0, 2s);
    EXPECT_EQ(done.size(), 2u);
    EXPECT_EQ(corio::event_loop::current()->timer_count(), 0u); // the hour-long timeout is gone
    co_await corio::sleep(2h);                                  // and it wakes nothing later
    EXPECT_EQ(c->now() - t0, 2h + 2s);
  });
}

// A timeout of duration::max() means "no timeout": loop time + max overflowed into the past, and wait()
// returned at once with everything pending.
TEST(Wait, TimeoutPastTheEndOfTimeWaitsForAll) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<join_handle<int>> hs;
    hs.push_back(corio::spawn(after(1s, 1)));
    hs.push_back(corio::spawn(after(2h, 2)));
    wait_options options{.return_when = corio::all_completed, .timeout = corio::duration::max()};
    auto [done, pending] = co_await corio::wait(hs, options);
    EXPECT_EQ(c->now() - t0, 2h);
    EXPECT_EQ(values(done), (std::vector<int>{1, 2}));
    EXPECT_TRUE(pending.empty());
    EXPECT_EQ(corio::event_loop::current()->timer_count(), 0u);
  });
}

TEST(Wait, TimeoutAndCompletionAtTheSameInstant) {
  corio::testing::leak_check leaks;
  testing::internal::CaptureStderr();
  auto body = [](mock_clock* c) -> task<> {
    for (int i = 0; i < 50; ++i) {
      const auto t0 = c->now();
      std::vector<join_handle<int>> hs;
      hs.push_back(corio::spawn(after(1s, 1)));
      hs.push_back(corio::spawn(after(1s, 2)));
      wait_options options{.return_when = corio::all_completed, .timeout = 1s};
      auto [done, pending] = co_await corio::wait(hs, options); // woken once, whichever comes first
      EXPECT_EQ(c->now() - t0, 1s);
      EXPECT_EQ(done.size() + pending.size(), 2u);
      co_await corio::sleep(1s);
    }
  };
  for (std::uint64_t seed = 1; seed <= 8; ++seed)
    run_mock(body, seed);
  (void)testing::internal::GetCapturedStderr();
}

TEST(Wait, ZeroTimeoutDoesNotWait) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<join_handle<int>> hs;
    hs.push_back(corio::spawn(after(1s, 1)));
    wait_options options{.timeout = 0s};
    auto [done, pending] = co_await corio::wait(hs, options);
    EXPECT_EQ(c->now(), t0);
    EXPECT_TRUE(done.empty());
    EXPECT_EQ(pending.size(), 1u);
    EXPECT_EQ(co_await pending[0], 1);
  });
}

TEST(Wait, EmptyAndAlreadyDone) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    std::vector<join_handle<int>> none;
    auto [d0, p0] = co_await corio::wait(none);
    EXPECT_TRUE(d0.empty());
    EXPECT_TRUE(p0.empty());
    std::vector<join_handle<int>> hs;
    hs.push_back(corio::spawn(after(1s, 1)));
    hs.push_back(corio::spawn(after(2s, 2)));
    co_await corio::sleep(3s);
    const auto t0 = c->now();
    wait_options options{.return_when = corio::first_completed};
    auto [done, pending] = co_await corio::wait(hs, options);
    EXPECT_EQ(c->now(), t0);
    EXPECT_EQ(values(done), (std::vector<int>{1, 2}));
  });
}

TEST(Wait, CancellingTheAwaiterDoesNotCancelTheTasks) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<join_handle<int>> hs;
    hs.push_back(corio::spawn(after(2s, 2)));
    hs.push_back(corio::spawn(after(3s, 3)));
    wait_options options{.timeout = 1h};
    auto waiter = corio::spawn([](std::vector<join_handle<int>> h, wait_options o) -> task<> {
      co_await corio::wait(std::move(h), o);
      ADD_FAILURE() << "not reached";
    }(hs, options));
    co_await corio::sleep(1s);
    waiter.cancel();
    EXPECT_THROW(co_await waiter, corio::cancelled_error);
    EXPECT_EQ(c->now() - t0, 1s);
    EXPECT_FALSE(hs[0].done());
    EXPECT_EQ(co_await hs[0], 2);
    EXPECT_EQ(co_await hs[1], 3);
    EXPECT_EQ(c->now() - t0, 3s);
    EXPECT_EQ(corio::event_loop::current()->timer_count(), 0u); // the waiter's timeout went with it
  });
}

TEST(Wait, InsideATimeoutScope) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<join_handle<int>> hs;
    hs.push_back(corio::spawn(after(5s, 5)));
    bool timed_out = false;
    try {
      auto deadline = corio::timeout(1s);
      co_await corio::wait(hs);
    } catch (const corio::timeout_error&) {
      timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    EXPECT_EQ(c->now() - t0, 1s);
    EXPECT_EQ(co_await hs[0], 5);
  });
}

TEST(Wait, LoopUntilEverythingIsDoneWithFirstCompleted) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<task<int>> ts;
    for (int v : {4, 1, 3, 2, 5})
      ts.push_back(after(std::chrono::seconds(v), v));
    std::vector<join_handle<int>> pending = spawn_all(std::move(ts));
    std::vector<int> order;
    std::vector<corio::duration> when;
    wait_options options{.return_when = corio::first_completed};
    while (!pending.empty()) {
      auto r = co_await corio::wait(std::move(pending), options);
      for (auto& h : r.done) {
        order.push_back(h.result());
        when.push_back(c->now() - t0);
      }
      pending = std::move(r.pending);
    }
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4, 5}));
    EXPECT_EQ(when, (std::vector<corio::duration>{1s, 2s, 3s, 4s, 5s}));
  });
}

TEST(Wait, MoveOnlyResults) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    std::vector<join_handle<std::unique_ptr<int>>> hs;
    hs.push_back(corio::spawn(boxed_after(1s, 1)));
    hs.push_back(corio::spawn(boxed_after(2s, 2)));
    wait_options options{.return_when = corio::first_completed};
    auto [done, pending] = co_await corio::wait(std::move(hs), options);
    EXPECT_EQ(*done.at(0).result(), 1);
    auto [done2, pending2] = co_await corio::wait(std::move(pending));
    EXPECT_EQ(*done2.at(0).result(), 2);
    EXPECT_TRUE(pending2.empty());
  });
}

TEST(Wait, ShuffledLoop) {
  corio::testing::leak_check leaks;
  testing::internal::CaptureStderr();
  auto body = [](mock_clock* c) -> task<> {
    for (int round = 0; round < 20; ++round) {
      const auto t0 = c->now();
      std::vector<join_handle<int>> hs;
      for (int i = 0; i < 20; ++i)
        hs.push_back(corio::spawn(after(std::chrono::milliseconds(10 + i % 3), i)));
      wait_options first{.return_when = corio::first_completed};
      auto r = co_await corio::wait(hs, first);
      EXPECT_EQ(c->now() - t0, 10ms);
      for (auto& h : r.done)
        EXPECT_EQ(h.result() % 3, 0);
      auto all = co_await corio::wait(std::move(r.pending));
      EXPECT_EQ(c->now() - t0, 12ms);
      EXPECT_EQ(all.done.size() + r.done.size(), 20u);
    }
  };
  for (std::uint64_t seed = 1; seed <= 8; ++seed)
    run_mock(body, seed);
  (void)testing::internal::GetCapturedStderr();
}

TEST(Wait, CanBeAwaitedOnce) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    std::vector<join_handle<int>> hs;
    hs.push_back(corio::spawn(after(1s, 1)));
    auto w = corio::wait(hs);
    auto r = co_await w;
    EXPECT_EQ(r.done.size(), 1u);
    EXPECT_THROW(co_await w, corio::invalid_state_error);
  });
}

TEST(Wait, EmptyHandleIsAnError) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    std::vector<join_handle<int>> hs;
    hs.push_back(corio::spawn(after(1s, 1)));
    hs.emplace_back();
    EXPECT_THROW(co_await corio::wait(hs), corio::invalid_state_error);
    EXPECT_EQ(co_await hs[0], 1);
  });
}

TEST(Wait, DestroyingTheLoopMidWaitLeaksNothing) {
  corio::testing::leak_check leaks;
  {
    mock_clock clock;
    corio::event_loop loop({.clock = &clock});
    auto waiter = corio::spawn(loop, []() -> task<> {
      std::vector<join_handle<int>> hs;
      hs.push_back(corio::spawn(after(1h, 1)));
      wait_options options{.timeout = 2h};
      co_await corio::wait(std::move(hs), options);
    }());
    loop.call_later(1s, [&loop] { loop.stop(); });
    loop.run_forever();
    EXPECT_FALSE(waiter.done());
  }
}

// asyncio.wait: ValueError "The future belonged to a different loop". corio's wait() put a done callback
// on loop B's task from loop A's thread (a data race with B) and waited for a completion nothing on A
// would ever be told of. Now loop_error, before anything is registered; a done task of B is accepted, as
// `co_await handle` accepts it.
task<std::string> wait_for_both(join_handle<int> foreign) {
  std::vector<join_handle<int>> hs{corio::spawn(after(1s, 1)), foreign};
  std::string out;
  try {
    auto [done, pending] = co_await corio::wait(hs);
    out = "done: " + std::to_string(done.size()) + ", pending: " + std::to_string(pending.size());
    for (auto& h : done)
      out += ", " + std::to_string(h.result());
  } catch (const corio::loop_error& e) {
    out = e.what();
  }
  EXPECT_EQ(co_await hs[0], 1); // the task of A was not disturbed
  co_return out;
}
TEST(Wait, AHandleOfAnotherLoopIsAClearError) {
  corio::testing::hang_watchdog dog("Wait.AHandleOfAnotherLoopIsAClearError");
  corio::testing::leak_check leaks;
  corio::testing::other_loop b;
  mock_clock clock;
  corio::event_loop a({.clock = &clock});
  const std::string what = corio::run_until_complete(a, corio::testing::at_most(wait_for_both(b.pending())));
  EXPECT_NE(what.find("corio: wait(): a join_handle whose task belongs to another event loop"), std::string::npos)
      << what;
  b.finish(7);
  EXPECT_EQ(corio::run_until_complete(a, corio::testing::at_most(wait_for_both(b.pending()))),
            "done: 2, pending: 0, 1, 7");
}

} // namespace
