// corio::as_completed: handles in completion order, exceptions, cancellation, misuse, lifetimes.
#include <corio/as_completed.hpp>
#include <corio/run.hpp>
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

std::vector<join_handle<int>> spawn_sleepers(std::vector<int> seconds) {
  std::vector<join_handle<int>> out;
  for (int s : seconds)
    out.push_back(corio::spawn(after(std::chrono::seconds(s), s)));
  return out;
}

TEST(AsCompleted, GivesHandlesInCompletionOrder) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    auto finished = corio::as_completed(spawn_sleepers({3, 1, 4, 2}));
    EXPECT_EQ(finished.remaining(), 4u);
    std::vector<int> order;
    std::vector<corio::duration> when;
    while (finished) {
      join_handle<int> h = co_await finished.next();
      EXPECT_TRUE(h.done());
      order.push_back(h.result());
      when.push_back(c->now() - t0);
    }
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
    EXPECT_EQ(when, (std::vector<corio::duration>{1s, 2s, 3s, 4s})); // each as soon as it finished
    EXPECT_EQ(finished.remaining(), 0u);
  });
}

TEST(AsCompleted, RecordsTheOrderEvenWithNoNextPending) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    auto finished = corio::as_completed(spawn_sleepers({3, 1, 2}));
    co_await corio::sleep(5s);
    EXPECT_EQ(finished.ready(), 3u);
    const auto t0 = c->now();
    std::vector<int> order;
    while (finished) {
      join_handle<int> h = co_await finished.next();
      order.push_back(h.result());
    }
    EXPECT_EQ(c->now(), t0); // nothing to wait for
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  });
}

TEST(AsCompleted, AlreadyDoneComeFirstInTheirOriginalOrder) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    auto hs = spawn_sleepers({2, 1});
    co_await corio::sleep(3s);
    hs.push_back(corio::spawn(after(1s, 10)));
    auto finished = corio::as_completed(std::move(hs));
    EXPECT_EQ(finished.ready(), 2u);
    std::vector<int> order;
    while (finished) {
      join_handle<int> h = co_await finished.next();
      order.push_back(h.result());
    }
    EXPECT_EQ(order, (std::vector<int>{2, 1, 10}));
  });
}

TEST(AsCompleted, EmptyAndExhausted) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    auto none = corio::as_completed(std::vector<join_handle<int>>{});
    EXPECT_FALSE(none);
    EXPECT_EQ(none.remaining(), 0u);
    EXPECT_THROW(co_await none.next(), corio::invalid_state_error);
    auto one = corio::as_completed(spawn_sleepers({1}));
    join_handle<int> h = co_await one.next();
    EXPECT_EQ(h.result(), 1);
    EXPECT_THROW(co_await one.next(), corio::invalid_state_error);
    // An empty handle is an error; the callback already put on the first task then finds nobody.
    std::vector<join_handle<int>> bad = spawn_sleepers({1});
    bad.emplace_back();
    EXPECT_THROW((void)corio::as_completed(std::move(bad)), corio::invalid_state_error);
    co_await corio::sleep(2s);
  });
}

TEST(AsCompleted, ExceptionsAreNotRaisedByNext) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    std::vector<join_handle<int>> hs;
    hs.push_back(corio::spawn(after(2s, 2)));
    hs.push_back(corio::spawn(fail_after(1s, "one")));
    auto finished = corio::as_completed(std::move(hs));
    join_handle<int> first = co_await finished.next();
    EXPECT_EQ(c->now() - t0, 1s);
    EXPECT_THROW(first.result(), std::runtime_error);
    join_handle<int> second = co_await finished.next();
    EXPECT_EQ(second.result(), 2);
  });
}

TEST(AsCompleted, CancellingTheAwaiterLosesNothingAndCancelsNothing) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    auto finished = corio::as_completed(spawn_sleepers({1, 3}));
    bool timed_out = false;
    try {
      auto deadline = corio::timeout(500ms);
      co_await finished.next();
    } catch (const corio::timeout_error&) {
      timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    EXPECT_EQ(c->now() - t0, 500ms);
    EXPECT_EQ(finished.remaining(), 2u);
    join_handle<int> h = co_await finished.next();
    EXPECT_EQ(h.result(), 1);
    EXPECT_EQ(c->now() - t0, 1s);
    h = co_await finished.next();
    EXPECT_EQ(h.result(), 3);
  });
}

TEST(AsCompleted, WokenThenCancelledBeforeRunningKeepsTheHandleQueued) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    auto hs = spawn_sleepers({1, 2});
    auto finished = corio::as_completed(hs);
    auto reader = corio::spawn([](decltype(finished)* f) -> task<int> {
      join_handle<int> h = co_await f->next();
      co_return h.result();
    }(&finished));
    // Runs right after the queue's own callback woke the reader, before the reader resumes.
    auto cancel_reader = [r = reader]() mutable { r.cancel(); };
    hs[0].add_done_callback(std::move(cancel_reader));
    EXPECT_THROW(co_await reader, corio::cancelled_error);
    EXPECT_EQ(c->now() - t0, 1s);
    EXPECT_EQ(finished.remaining(), 2u);
    EXPECT_EQ(finished.ready(), 1u);
    join_handle<int> h = co_await finished.next();
    EXPECT_EQ(h.result(), 1);
    EXPECT_EQ(c->now() - t0, 1s);
  });
}

TEST(AsCompleted, CancellingATaskWaitingInNext) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    auto finished = corio::as_completed(spawn_sleepers({2, 4}));
    auto reader = corio::spawn([](decltype(finished)* f) -> task<int> {
      join_handle<int> h = co_await f->next();
      co_return h.result();
    }(&finished));
    co_await corio::sleep(1s);
    reader.cancel();
    EXPECT_THROW(co_await reader, corio::cancelled_error);
    EXPECT_EQ(c->now() - t0, 1s);
    join_handle<int> h = co_await finished.next(); // the child was not cancelled, nothing was lost
    EXPECT_EQ(h.result(), 2);
    EXPECT_EQ(c->now() - t0, 2s);
    h = co_await finished.next();
    EXPECT_EQ(h.result(), 4);
  });
}

TEST(AsCompleted, OneNextAtATime) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    auto finished = corio::as_completed(spawn_sleepers({1, 2}));
    auto reader = corio::spawn([](decltype(finished)* f) -> task<int> {
      join_handle<int> h = co_await f->next();
      co_return h.result();
    }(&finished));
    co_await corio::sleep(0s); // the reader is now waiting in next()
    EXPECT_THROW(co_await finished.next(), corio::invalid_state_error);
    EXPECT_EQ(co_await reader, 1);
    join_handle<int> h = co_await finished.next();
    EXPECT_EQ(h.result(), 2);
  });
}

TEST(AsCompleted, DestroyedEarlyTheTasksRunOn) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    auto hs = spawn_sleepers({1, 2, 3});
    {
      auto finished = corio::as_completed(hs);
      join_handle<int> h = co_await finished.next();
      EXPECT_EQ(h.result(), 1);
    }
    EXPECT_EQ(co_await hs[2], 3);
    EXPECT_EQ(c->now() - t0, 3s);
  });
}

TEST(AsCompleted, MoveOnlyResults) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    auto boxed = [](corio::duration d, int v) -> task<std::unique_ptr<int>> {
      co_await corio::sleep(d);
      co_return std::make_unique<int>(v);
    };
    std::vector<join_handle<std::unique_ptr<int>>> hs;
    hs.push_back(corio::spawn(boxed(2s, 2)));
    hs.push_back(corio::spawn(boxed(1s, 1)));
    auto finished = corio::as_completed(std::move(hs));
    std::vector<int> order;
    while (finished) {
      join_handle<std::unique_ptr<int>> h = co_await finished.next();
      order.push_back(*h.result());
    }
    EXPECT_EQ(order, (std::vector<int>{1, 2}));
  });
}

TEST(AsCompleted, ShuffledLoop) {
  corio::testing::leak_check leaks;
  testing::internal::CaptureStderr();
  auto body = [](mock_clock* c) -> task<> {
    for (int round = 0; round < 20; ++round) {
      const auto t0 = c->now();
      std::vector<join_handle<int>> hs;
      for (int i = 0; i < 30; ++i)
        hs.push_back(corio::spawn(after(std::chrono::milliseconds(10 * (29 - i)), i)));
      auto finished = corio::as_completed(std::move(hs));
      int expected = 29;
      while (finished) {
        join_handle<int> h = co_await finished.next();
        EXPECT_EQ(h.result(), expected);
        EXPECT_EQ(c->now() - t0, std::chrono::milliseconds(10 * (29 - expected)));
        --expected;
      }
    }
  };
  for (std::uint64_t seed = 1; seed <= 8; ++seed)
    run_mock(body, seed);
  (void)testing::internal::GetCapturedStderr();
}

TEST(AsCompleted, DestroyingTheLoopWhileWaitingLeaksNothing) {
  corio::testing::leak_check leaks;
  {
    mock_clock clock;
    corio::event_loop loop({.clock = &clock});
    auto reader = corio::spawn(loop, []() -> task<> {
      auto finished = corio::as_completed(spawn_sleepers({3600, 7200}));
      co_await finished.next();
    }());
    loop.call_later(1s, [&loop] { loop.stop(); });
    loop.run_forever();
    EXPECT_FALSE(reader.done());
  }
}

// asyncio.as_completed(aws, timeout): the tasks finished before the timeout come out first, then each
// further next() raises timeout_error; a task finishing later is not handed out, and nothing is cancelled.
TEST(AsCompleted, TimeoutRaisesFromNextOnceItPassed) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    auto handles = spawn_sleepers({1, 2, 5, 6});
    auto finished = corio::as_completed(handles, 3s);
    EXPECT_EQ((co_await finished.next()).result(), 1);
    co_await corio::sleep(4s); // past the timeout; the 2 s task finished before it
    EXPECT_EQ((co_await finished.next()).result(), 2);
    EXPECT_THROW(co_await finished.next(), corio::timeout_error); // at once
    EXPECT_EQ(c->now() - t0, 5s);
    EXPECT_EQ(finished.remaining(), 1u); // each timeout_error stands for one handle, as in asyncio
    co_await corio::sleep(2s);           // every task has finished now
    EXPECT_THROW(co_await finished.next(), corio::timeout_error);
    EXPECT_EQ(finished.remaining(), 0u);
    EXPECT_FALSE(finished);
    EXPECT_THROW(co_await finished.next(), corio::invalid_state_error); // every handle was handed out
    EXPECT_FALSE(handles[3].cancelled());
    EXPECT_EQ(handles[3].result(), 6);

    auto waiting = corio::as_completed(spawn_sleepers({10}), 2s);
    const auto t1 = c->now();
    EXPECT_THROW(co_await waiting.next(), corio::timeout_error); // a pending next() is woken
    EXPECT_EQ(c->now() - t1, 2s);

    auto in_time = corio::as_completed(spawn_sleepers({1}), 2s);
    EXPECT_EQ((co_await in_time.next()).result(), 1);
    EXPECT_EQ(corio::event_loop::current()->timer_count(), 1u); // the 10 s sleeper's; the timeout's went

    // The documented loop, catching each timeout_error, ends after as many next() as handles.
    auto looped = corio::as_completed(spawn_sleepers({1, 20, 30}), 2s);
    int results = 0, timeouts = 0;
    while (looped && results + timeouts < 10) {
      try {
        results += (co_await looped.next()).result();
      } catch (const corio::timeout_error&) {
        ++timeouts;
      }
    }
    EXPECT_EQ(results, 1);
    EXPECT_EQ(timeouts, 2);
  });
}

// A timeout needs a running loop: made outside one, as_completed() raises, and the done callbacks it had
// registered before find nobody when the tasks finish (they pointed at the object that never was).
TEST(AsCompleted, ATimeoutOutsideARunningLoopRaisesAndLeavesNoCallbackBehind) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  corio::event_loop loop({.clock = &clock});
  std::vector<corio::join_handle<int>> handles;
  for (int s : {1, 2})
    handles.push_back(corio::spawn(loop, [](int s) -> task<int> {
      co_await corio::sleep(std::chrono::seconds(s));
      co_return s;
    }(s)));
  EXPECT_THROW((void)corio::as_completed(handles, 5s), corio::loop_error);
  auto sum = [](std::vector<corio::join_handle<int>> hs) -> task<int> {
    int total = 0;
    for (auto& h : hs)
      total += co_await h;
    co_return total;
  };
  EXPECT_EQ(corio::run_until_complete(loop, sum(handles)), 3);
}

// as_completed() of loop B's task, made on loop A: it put a done callback on B's task from A's thread (a
// data race with B), and next() waited for a completion nothing on A would ever be told of. Now
// loop_error from as_completed(), before any callback is registered; a done task of B is accepted, as
// `co_await handle` accepts it.
task<std::string> as_completed_with(join_handle<int> foreign) {
  std::vector<join_handle<int>> hs{corio::spawn(after(1s, 1)), foreign};
  std::string out;
  try {
    auto finished = corio::as_completed(hs);
    while (finished) {
      join_handle<int> h = co_await finished.next();
      out += std::to_string(h.result()) + " ";
    }
  } catch (const corio::loop_error& e) {
    out = e.what();
  }
  EXPECT_EQ(co_await hs[0], 1); // the task of A was not disturbed
  co_return out;
}
TEST(AsCompleted, AHandleOfAnotherLoopIsAClearError) {
  corio::testing::hang_watchdog dog("AsCompleted.AHandleOfAnotherLoopIsAClearError");
  corio::testing::leak_check leaks;
  corio::testing::other_loop b;
  mock_clock clock;
  corio::event_loop a({.clock = &clock});
  const std::string what = corio::run_until_complete(a, corio::testing::at_most(as_completed_with(b.pending())));
  EXPECT_NE(what.find("corio: as_completed(): a join_handle whose task belongs to another event loop"),
            std::string::npos)
      << what;
  b.finish(7);
  EXPECT_EQ(corio::run_until_complete(a, corio::testing::at_most(as_completed_with(b.pending()))), "7 1 ");
}

// A queue made outside any loop belongs to the loop of its tasks (B here): its callbacks run there, so a
// next() awaited on loop A would never be woken (it waited). Now loop_error from next().
task<std::string> next_of(corio::as_completed_queue<int>* q) {
  std::string out;
  try {
    join_handle<int> h = co_await q->next();
    out = std::to_string(h.result());
  } catch (const corio::loop_error& e) {
    out = e.what();
  }
  co_return out;
}
TEST(AsCompleted, NextOnAnotherLoopThanItsTasksIsAClearError) {
  corio::testing::hang_watchdog dog("AsCompleted.NextOnAnotherLoopThanItsTasksIsAClearError");
  corio::testing::leak_check leaks;
  corio::testing::other_loop b;
  {
    auto finished = corio::as_completed(std::vector<join_handle<int>>{b.pending()});
    mock_clock clock;
    corio::event_loop a({.clock = &clock}); // destroyed before the queue (a next() left waiting points at it)
    const std::string what = corio::run_until_complete(a, corio::testing::at_most(next_of(&finished)));
    EXPECT_NE(what.find("corio: as_completed next(): the queue's tasks belong to another event loop"),
              std::string::npos)
        << what;
  }
}

} // namespace
