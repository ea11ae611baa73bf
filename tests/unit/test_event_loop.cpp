// corio::event_loop: callbacks, timers, ordering, run/stop/close, threadsafe calls, bad use.
#include <corio/detail/timer_testing.hpp>
#include <corio/event_loop.hpp>
#include <corio/future.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/testing/mock_clock.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "leak_check.hpp"

using namespace std::chrono_literals;
using corio::event_loop;
using corio::testing::mock_clock;

namespace {

TEST(EventLoop, CallSoonRunsInOrder) {
  corio::testing::leak_check leaks;
  event_loop loop;
  std::vector<int> seen;
  loop.call_soon([&] { seen.push_back(1); });
  loop.call_soon([&] { seen.push_back(2); });
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
  corio::testing::expect_idle(loop);
}

TEST(EventLoop, CallbacksScheduledByCallbacksRunNextIteration) {
  event_loop loop;
  std::vector<std::string> seen;
  loop.call_soon([&] {
    seen.push_back("a");
    loop.call_soon([&] {
      seen.push_back("c");
      loop.stop();
    });
  });
  loop.call_soon([&] { seen.push_back("b"); });
  loop.run_forever();
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c"}));
}

// asyncio: stop() before run_forever() runs one iteration — the callbacks ready then, not the ones they
// schedule — and returns; the next run_forever() runs until a new stop().
TEST(EventLoop, StopBeforeRunForeverRunsOneIteration) {
  event_loop loop;
  std::vector<std::string> seen;
  loop.call_soon([&] {
    seen.push_back("a");
    loop.call_soon([&] { seen.push_back("next iteration"); });
  });
  loop.stop();
  loop.run_forever();
  EXPECT_EQ(seen, (std::vector<std::string>{"a"}));
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "next iteration"}));
}

TEST(EventLoop, TimersFireInDeadlineThenSchedulingOrder) {
  mock_clock clock;
  event_loop loop({.clock = &clock});
  std::vector<int> seen;
  const auto t0 = loop.time();
  loop.call_later(3s, [&] {
    seen.push_back(3);
    loop.stop();
  });
  loop.call_later(1s, [&] { seen.push_back(1); });
  loop.call_at(t0 + 2s, [&] { seen.push_back(20); });
  loop.call_at(t0 + 2s, [&] { seen.push_back(21); }); // equal deadline: scheduling order
  loop.call_later(2s, [&] { seen.push_back(22); });
  loop.run_forever();
  EXPECT_EQ(seen, (std::vector<int>{1, 20, 21, 22, 3}));
  EXPECT_EQ(loop.time(), t0 + 3s); // the mock clock jumped exactly to each deadline
  corio::testing::expect_idle(loop);
}

TEST(EventLoop, CancelledTimersDoNotRunAndAreReleased) {
  mock_clock clock;
  event_loop loop({.clock = &clock});
  bool ran = false;
  auto h = loop.call_later(1s, [&] { ran = true; });
  EXPECT_TRUE(h.pending());
  EXPECT_TRUE(h.cancel());
  EXPECT_FALSE(h.cancel()); // twice: no-op
  EXPECT_FALSE(h.pending());
  EXPECT_EQ(loop.timer_count(), 0u);
  loop.call_later(2s, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_FALSE(ran);
  auto soon = loop.call_soon([&] { ran = true; });
  EXPECT_TRUE(soon.cancel());
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  EXPECT_FALSE(ran);
  EXPECT_FALSE(h.cancel()); // a stale handle after its slot was recycled stays harmless
}

// A handle kept past its loop is harmless, as asyncio's TimerHandle.cancel() is after the loop is gone (ASan
// saw cancel() and pending() read the loop's freed timer nodes). The nodes outlive the loop and serve the
// next one: an old handle must match none of its callbacks either.
TEST(EventLoop, ATimerHandleOutlivesItsLoop) {
  corio::timer_handle later, soon, other;
  bool ran = false;
  auto capture = std::make_shared<int>(0);
  std::optional<bool> cancelled_in_teardown;
  {
    mock_clock clock;
    event_loop loop({.clock = &clock});
    later = loop.call_later(1h, [&ran, capture] { ran = true; });
    soon = loop.call_soon([&ran] { ran = true; });
    other = loop.call_later(2h, [] {});
    // A capture whose destructor cancels another handle of the loop being destroyed.
    std::shared_ptr<void> on_destroy(nullptr, [&](void*) { cancelled_in_teardown = other.cancel(); });
    loop.call_later(3h, [on_destroy] {});
    EXPECT_TRUE(later.pending());
    EXPECT_EQ(capture.use_count(), 2);
  }
  EXPECT_EQ(capture.use_count(), 1); // the captures of callbacks never run went with the loop
  EXPECT_EQ(cancelled_in_teardown, std::optional<bool>(false));
  EXPECT_FALSE(later.pending());
  EXPECT_FALSE(later.cancel());
  EXPECT_FALSE(soon.pending());
  EXPECT_FALSE(soon.cancel());

  // The next loop takes the nodes over: more callbacks than the old loop had nodes (a chunk) reuse them.
  event_loop next;
  int fired = 0;
  std::vector<corio::timer_handle> fresh;
  for (int i = 0; i < 1024; ++i)
    fresh.push_back(next.call_soon([&fired] { ++fired; }));
  EXPECT_FALSE(later.pending());
  EXPECT_FALSE(later.cancel());
  EXPECT_FALSE(soon.cancel());
  EXPECT_FALSE(other.cancel());
  EXPECT_TRUE(std::all_of(fresh.begin(), fresh.end(), [](const corio::timer_handle& h) { return h.pending(); }));
  next.call_soon([&] { next.stop(); });
  next.run_forever();
  EXPECT_EQ(fired, 1024);
  EXPECT_FALSE(ran);
  corio::testing::expect_idle(next);
}

// The nodes of a destroyed loop may serve a loop on another thread while a stale handle is still asked
// about on this one: no data race (TSan), and the handle matches nothing.
TEST(EventLoop, AStaleHandleMayBeAskedWhileAnotherThreadsLoopReusesItsNode) {
  corio::timer_handle stale;
  {
    event_loop loop;
    stale = loop.call_soon([] {});
  }
  int fired = 0;
  std::thread other([&fired] {
    event_loop next; // takes the chunk the loop above gave back
    for (int round = 0; round < 50; ++round) {
      for (int i = 0; i < 512; ++i)
        next.call_soon([&fired] { ++fired; });
      next.call_soon([&next] { next.stop(); });
      next.run_forever();
    }
  });
  int matched = 0;
  for (int i = 0; i < 20000; ++i)
    matched += stale.pending() ? 1 : 0;
  other.join();
  EXPECT_EQ(matched, 0);
  EXPECT_FALSE(stale.cancel());
  EXPECT_EQ(fired, 50 * 512);
}

// A stale handle must never match its node again: with a 32-bit generation, 2^32 reuses of the node
// brought it back to the stale handle's value, and the stale handle then saw (and cancelled) the timer of
// whoever scheduled on the node last. The hook ages the node by 2^32 - 1 reuses after the one below.
TEST(EventLoop, AStaleHandleDoesNotMatchItsNodeAfter2To32Reuses) {
  mock_clock clock;
  event_loop loop({.clock = &clock});
  bool stale_ran = false, other_ran = false;
  corio::timer_handle stale = loop.call_later(1s, [&stale_ran] { stale_ran = true; });
  EXPECT_TRUE(stale.cancel());
  corio::timer_handle other = loop.call_later(2s, [&other_ran] { other_ran = true; });
  ASSERT_EQ(corio::detail::timer_testing::node(other), corio::detail::timer_testing::node(stale))
      << "the freed node was not reused";
  other = corio::detail::timer_testing::age(other, (std::uint64_t{1} << 32) - 1);
  EXPECT_TRUE(other.pending());
  EXPECT_FALSE(stale.pending()) << "the stale handle matches the node's new timer";
  EXPECT_FALSE(stale.cancel()) << "the stale handle cancelled another's timer";
  loop.call_later(3s, [&loop] { loop.stop(); });
  loop.run_forever();
  EXPECT_TRUE(other_ran);
  EXPECT_FALSE(stale_ran);
  corio::testing::expect_idle(loop);
}

// The same with corio::run(): an object that cancels its timer in its destructor, run after run() returned.
corio::task<> arm_timer(corio::timer_handle* h) {
  *h = corio::event_loop::current()->call_later(1h, [] {});
  co_return;
}
TEST(EventLoop, ATimerHandleMayBeCancelledAfterRunReturned) {
  corio::timer_handle h;
  corio::run(arm_timer(&h));
  EXPECT_FALSE(h.pending());
  EXPECT_FALSE(h.cancel());
}

// The timer heap against a reference model: random deadlines (many equal), random cancellations (also
// from inside callbacks, of timers anywhere in the heap), timers added while others fire. Everything that
// was not cancelled fires exactly once, in (deadline, scheduling order).
TEST(EventLoop, TimerHeapMatchesAReferenceModel) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    mock_clock clock;
    event_loop loop({.clock = &clock});
    std::mt19937_64 rng(seed);
    struct expected {
      corio::time_point when;
      int order; // scheduling order
      bool cancelled = false;
    };
    std::vector<expected> model;
    std::vector<corio::timer_handle> handles;
    std::vector<int> fired;
    const auto t0 = loop.time();
    std::function<void(corio::time_point)> add = [&](corio::time_point when) {
      const int id = static_cast<int>(model.size());
      model.push_back({when, id});
      handles.push_back(loop.call_at(when, [&, id] {
        fired.push_back(id);
        if (id % 7 == 0 && fired.size() < 3000) // some callbacks schedule more, some cancel others
          add(loop.time() + std::chrono::milliseconds(rng() % 50));
        if (id % 5 == 0) {
          const auto victim = static_cast<std::size_t>(rng() % handles.size());
          if (handles[victim].cancel())
            model[victim].cancelled = true;
        }
      }));
    };
    for (int i = 0; i < 2000; ++i)
      add(t0 + std::chrono::milliseconds(rng() % 100)); // 100 distinct deadlines: many ties
    for (int i = 0; i < 500; ++i) {
      const auto victim = static_cast<std::size_t>(rng() % handles.size());
      if (handles[victim].cancel())
        model[victim].cancelled = true;
    }
    EXPECT_EQ(loop.timer_count(), static_cast<std::size_t>(std::count_if(
                                      model.begin(), model.end(), [](const expected& e) { return !e.cancelled; })));
    loop.call_at(t0 + 1h, [&] { loop.stop(); });
    loop.run_forever();
    std::vector<expected> live;
    for (const auto& e : model)
      if (!e.cancelled)
        live.push_back(e);
    std::stable_sort(live.begin(), live.end(), [](const expected& a, const expected& b) { return a.when < b.when; });
    std::vector<int> want;
    for (const auto& e : live)
      want.push_back(e.order);
    ASSERT_EQ(fired, want) << "seed " << seed;
    corio::testing::expect_idle(loop);
  }
}

TEST(EventLoop, CancelledSleepsLeaveTheHeapAtOnce) {
  mock_clock clock;
  event_loop loop({.clock = &clock});
  corio::run_until_complete(loop, [&]() -> corio::task<> {
    std::vector<corio::join_handle<>> sleepers;
    for (int i = 0; i < 1000; ++i)
      sleepers.push_back(
          corio::spawn([](int s) -> corio::task<> { co_await corio::sleep(std::chrono::seconds(s)); }(1 + i % 10)));
    co_await corio::sleep(0ms); // every sleeper reaches its sleep
    EXPECT_EQ(loop.timer_count(), 1000u);
    for (std::size_t i = 0; i < sleepers.size(); i += 2)
      sleepers[i].cancel();
    co_await corio::sleep(0ms); // the cancelled ones finish
    EXPECT_EQ(loop.timer_count(), 500u);
    for (std::size_t i = 0; i < sleepers.size(); ++i) {
      if (i % 2 == 0)
        EXPECT_TRUE(sleepers[i].cancelled());
      else
        EXPECT_FALSE(sleepers[i].done());
    }
    const auto t0 = loop.time();
    for (std::size_t i = 1; i < sleepers.size(); i += 2)
      co_await sleepers[i];
    EXPECT_EQ(loop.time() - t0, 10s); // the longest remaining sleep, exactly
  }());
  corio::testing::expect_idle(loop);
}

TEST(EventLoop, ManyCancelledTimersLeaveNothingBehind) {
  mock_clock clock;
  event_loop loop({.clock = &clock});
  std::vector<corio::timer_handle> handles;
  for (int i = 0; i < 100'000; ++i)
    handles.push_back(loop.call_later(std::chrono::seconds(1 + i % 100), [] {}));
  for (int i = 0; i < 100'000; i += 2)
    handles[static_cast<std::size_t>(i)].cancel();
  EXPECT_EQ(loop.timer_count(), 50'000u);
  for (auto& h : handles)
    h.cancel();
  EXPECT_EQ(loop.timer_count(), 0u);
}

// "Wait forever" spelled with the largest durations: now + d saturates at the end of time (it overflowed
// into the past, so these returned at once), and a deadline there never comes, not even on a mock clock.
TEST(EventLoop, SleepPastTheEndOfTimeSleepsUntilCancelled) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  corio::run(
      []() -> corio::task<> {
        auto forever = [](int kind) -> corio::task<> {
          if (kind == 0)
            co_await corio::sleep(std::chrono::nanoseconds::max());
          else if (kind == 1)
            co_await corio::sleep(std::chrono::hours::max()); // its cast to nanoseconds overflowed
          else if (kind == 2)
            co_await corio::sleep(std::chrono::duration<double>(1e300)); // asyncio.sleep(1e300)
          else if (kind == 3)
            co_await corio::sleep(std::chrono::nanoseconds::max() - 1s);
          else
            co_await corio::sleep_until(corio::time_point::max());
        };
        std::vector<corio::join_handle<>> sleepers;
        for (int kind = 0; kind < 5; ++kind)
          sleepers.push_back(corio::spawn(forever(kind)));
        co_await corio::sleep(24h); // the mock clock jumps to this timer, not to the end of time
        for (std::size_t i = 0; i < sleepers.size(); ++i) {
          EXPECT_FALSE(sleepers[i].done()) << "sleeper " << i;
          sleepers[i].cancel();
        }
        for (auto& h : sleepers)
          EXPECT_THROW(co_await h, corio::cancelled_error);
        // Nothing else left: a lone sleep forever on a mock clock is a deadlock, reported as such.
        EXPECT_EQ(corio::event_loop::current()->timer_count(), 0u);
      }(),
      {.clock = &clock});
  EXPECT_THROW(corio::run([]() -> corio::task<> { co_await corio::sleep(std::chrono::nanoseconds::max()); }(),
                          {.clock = &clock}),
               corio::loop_error);
  // sleep() with a NaN duration is bad input.
  EXPECT_THROW((void)corio::sleep(std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN())),
               std::invalid_argument);
}

TEST(EventLoop, CallLaterPastTheEndOfTimeNeverRuns) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  event_loop loop({.clock = &clock});
  const auto t0 = loop.time();
  std::vector<std::string> ran;
  auto a = loop.call_later(std::chrono::nanoseconds::max(), [&] { ran.push_back("call_later(max)"); });
  auto b = loop.call_at(corio::time_point::max(), [&] { ran.push_back("call_at(max)"); });
  loop.call_later(std::chrono::nanoseconds::min(), [&] { ran.push_back("call_later(min)"); }); // long past: now
  loop.call_later(1h, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(ran, (std::vector<std::string>{"call_later(min)"}));
  EXPECT_EQ(loop.time(), t0 + 1h); // the clock did not jump to the end of time
  EXPECT_TRUE(a.pending());
  EXPECT_TRUE(b.pending());
  EXPECT_TRUE(a.cancel());
  EXPECT_TRUE(b.cancel());
  corio::testing::expect_idle(loop);
}

// A clock that stands still and never jumps (as the real clock between two reads): the loop must work
// out how long to block from the deadlines alone.
class frozen_clock final : public corio::clock_source {
public:
  [[nodiscard]] corio::time_point now() noexcept override { return corio::time_point{} + 1h; }
};

// A timer long past (call_at(time_point::min())) is due: deadline - now overflowed into a huge positive
// timeout, so the loop blocked in its poll (for a day) instead of running it. A watchdog thread ends a
// hung loop after 10 s so the test fails instead of hanging.
TEST(EventLoop, ATimerLongPastRunsAtOnce) {
  frozen_clock clock;
  event_loop loop({.clock = &clock});
  std::mutex m;
  std::condition_variable cv;
  bool finished = false, watchdog_fired = false;
  std::thread watchdog([&] {
    std::unique_lock lock(m);
    if (!cv.wait_for(lock, 10s, [&] { return finished; })) {
      watchdog_fired = true;
      loop.call_soon_threadsafe([&] { loop.stop(); });
    }
  });
  bool ran = false;
  loop.call_at(corio::time_point::min(), [&] {
    ran = true;
    loop.stop();
  });
  loop.run_forever();
  {
    std::lock_guard lock(m);
    finished = true;
  }
  cv.notify_one();
  watchdog.join();
  EXPECT_TRUE(ran);
  EXPECT_FALSE(watchdog_fired) << "the loop blocked in its poll with a timer due";
}

TEST(EventLoop, CallbackExceptionIsReportedAndTheLoopGoesOn) {
  event_loop loop;
  bool after = false;
  loop.call_soon([] { throw std::runtime_error("callback failed"); });
  loop.call_soon([&] {
    after = true;
    loop.stop();
  });
  testing::internal::CaptureStderr();
  loop.run_forever();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(after);
  EXPECT_NE(err.find("callback failed"), std::string::npos) << err;
}

TEST(EventLoop, CallSoonThreadsafeFromOtherThreads) {
  corio::testing::leak_check leaks;
  event_loop loop;
  constexpr int threads = 4, per_thread = 2000;
  int received = 0; // touched on the loop thread only
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i)
        loop.call_soon_threadsafe([&] {
          if (++received == threads * per_thread)
            loop.stop();
        });
    });
  loop.run_forever(); // blocks in epoll until the workers' wake-ups arrive
  for (auto& w : workers)
    w.join();
  EXPECT_EQ(received, threads * per_thread);
}

TEST(EventLoop, RunningInsideARunningLoopIsAnError) {
  event_loop outer, inner;
  bool threw = false;
  outer.call_soon([&] {
    try {
      inner.run_forever();
    } catch (const corio::loop_error& e) {
      threw = std::string(e.what()).find("another loop is running") != std::string::npos;
    }
    try {
      outer.run_forever();
    } catch (const corio::loop_error&) {
      threw = threw && true;
    }
    outer.stop();
  });
  outer.run_forever();
  EXPECT_TRUE(threw);
  EXPECT_EQ(event_loop::current(), nullptr);
}

TEST(EventLoop, CloseRulesAreClearErrors) {
  event_loop loop;
  loop.call_soon([&] {
    EXPECT_THROW(loop.close(), corio::loop_error); // running
    loop.stop();
  });
  loop.run_forever();
  auto h = corio::spawn(loop, []() -> corio::task<> { co_await corio::sleep(1s); }());
  try {
    loop.close();
    FAIL() << "close() with a pending task must throw";
  } catch (const corio::loop_error& e) {
    EXPECT_NE(std::string(e.what()).find("1 task(s) still pending"), std::string::npos) << e.what();
  }
  loop.shutdown_tasks();
  EXPECT_TRUE(h.cancelled());
  loop.close();
  EXPECT_TRUE(loop.is_closed());
  EXPECT_THROW(loop.run_forever(), corio::loop_error);
  EXPECT_THROW(loop.call_soon([] {}), corio::loop_error);
  loop.call_soon_threadsafe([] {}); // dropped silently after close
}

TEST(EventLoop, DestroyingALoopWithPendingTasksReleasesThem) {
  corio::testing::leak_check leaks;
  corio::join_handle<> h;
  {
    event_loop loop;
    h = corio::spawn(loop, []() -> corio::task<> { co_await corio::sleep(1h); }());
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
  }
  EXPECT_TRUE(h.done());
  EXPECT_THROW(h.result(), corio::cancelled_error);
}

TEST(EventLoop, MockClockDeadlockIsReportedNotHung) {
  mock_clock clock;
  auto stuck = []() -> corio::task<> {
    corio::future<int> never;
    co_await never;
  };
  EXPECT_THROW(corio::run(stuck(), {.clock = &clock}), corio::loop_error);
}

TEST(EventLoop, ExceptionHandlerSeesWhatNobodyCouldCatch) {
  corio::testing::leak_check leaks;
  event_loop loop;
  std::vector<std::string> seen; // "message|exception|task"
  loop.set_exception_handler([&](event_loop& l, const corio::exception_context& c) {
    EXPECT_EQ(&l, &loop);
    seen.push_back(c.message + "|" + corio::describe(c.exception) + "|" + c.task);
  });
  EXPECT_TRUE(static_cast<bool>(loop.get_exception_handler()));
  loop.call_soon([] { throw std::runtime_error("in a callback"); });
  loop.call_soon([&] {
    // A task whose exception nobody retrieves: reported when its last handle goes.
    auto h = corio::spawn(
        loop,
        []() -> corio::task<> {
          throw std::logic_error("in a task");
          co_return;
        }(),
        "lonely");
    loop.call_later(1ms, [h = std::move(h), &loop]() mutable {
      h = {};
      loop.stop();
    });
  });
  loop.on_close([] { throw std::runtime_error("in a close callback"); });
  testing::internal::CaptureStderr();
  loop.run_forever();
  loop.close();
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, ""); // all went to the handler
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_NE(seen[0].find("exception in callback|"), std::string::npos) << seen[0];
  EXPECT_NE(seen[0].find("in a callback"), std::string::npos) << seen[0];
  EXPECT_NE(seen[1].find("task 'lonely' exception was never retrieved|"), std::string::npos) << seen[1];
  EXPECT_NE(seen[1].find("in a task|'lonely'"), std::string::npos) << seen[1];
  EXPECT_NE(seen[2].find("exception in a close callback|"), std::string::npos) << seen[2];
}

TEST(EventLoop, AFailingExceptionHandlerFallsBackToTheDefault) {
  event_loop loop;
  loop.set_exception_handler(
      [](event_loop&, const corio::exception_context&) { throw std::runtime_error("handler broke"); });
  bool after = false;
  loop.call_soon([] { throw std::runtime_error("callback failed"); });
  loop.call_soon([&] {
    after = true;
    loop.stop();
  });
  testing::internal::CaptureStderr();
  loop.run_forever();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(after);
  EXPECT_NE(err.find("exception in the exception handler: handler broke"), std::string::npos) << err;
  EXPECT_NE(err.find("exception in callback: callback failed"), std::string::npos) << err;
  // An empty handler restores the default.
  loop.set_exception_handler({});
  loop.call_soon([] { throw std::runtime_error("again"); });
  loop.call_soon([&] { loop.stop(); });
  testing::internal::CaptureStderr();
  loop.run_forever();
  err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("corio: exception in callback: again"), std::string::npos) << err;
}

TEST(EventLoop, ShuffleModePrintsItsSeedAndRunsEverything) {
  testing::internal::CaptureStderr();
  event_loop loop({.shuffle = true, .seed = 42});
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("seed 42"), std::string::npos);
  EXPECT_EQ(loop.seed(), 42u);
  int n = 0;
  for (int i = 0; i < 100; ++i)
    loop.call_soon([&] { ++n; });
  loop.call_later(1ms, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(n, 100);
}

TEST(EventLoop, DebugModeReportsSlowCallbacks) {
  event_loop loop({.debug = true, .slow_callback = 1ms});
  loop.call_soon([] { std::this_thread::sleep_for(5ms); });
  loop.call_soon([&] { loop.stop(); });
  testing::internal::CaptureStderr();
  loop.run_forever();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("slow callback"), std::string::npos) << err;
}

} // namespace
