// run_coroutine_threadsafe / thread_future: work started on a loop from other threads, its result,
// exception or cancellation back on those threads; a loop that closes first never leaves a waiter hanging.
#include <corio/detail/frame_pool.hpp>
#include <corio/event_loop.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>
#include <corio/thread_future.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "leak_check.hpp"

using namespace std::chrono_literals;
using corio::event_loop;
using corio::task;

namespace {

task<int> add_later(int a, int b) {
  co_await corio::sleep(1ms);
  co_return a + b;
}

task<> fail_later() {
  co_await corio::sleep(0s);
  throw std::runtime_error("boom");
}

/// Runs `loop` on this thread until `body`, run on another thread, returns; then stops it.
template <class F> void with_thread(event_loop& loop, F body) {
  std::thread t([&] {
    body();
    loop.call_soon_threadsafe([&] { loop.stop(); });
  });
  loop.run_forever();
  t.join();
}

TEST(RunCoroutineThreadsafe, ValuesExceptionsAndPlainCallables) {
  corio::testing::leak_check leaks;
  event_loop loop;
  with_thread(loop, [&] {
    auto sum = corio::run_coroutine_threadsafe(loop, [] { return add_later(2, 3); });
    EXPECT_EQ(sum.get(), 5);
    EXPECT_FALSE(sum.valid());
    auto failed = corio::run_coroutine_threadsafe(loop, [] { return fail_later(); });
    failed.wait();
    EXPECT_TRUE(failed.done());
    EXPECT_THROW(failed.get(), std::runtime_error);
    // A plain callable runs on the loop's thread; a move-only result comes back.
    auto here = corio::run_coroutine_threadsafe(loop, [&] { return event_loop::current() == &loop; });
    EXPECT_TRUE(here.get());
    auto owned = corio::run_coroutine_threadsafe(loop, [] { return std::make_unique<std::string>("x"); });
    EXPECT_EQ(*owned.get(), "x");
    // A lambda coroutine with captures: fn lives on the loop until its task ends.
    std::string word = "captured";
    auto captures = corio::run_coroutine_threadsafe(loop, [word]() -> task<std::string> {
      co_await corio::sleep(1ms);
      co_return word + "!";
    });
    EXPECT_EQ(captures.get(), "captured!");
    auto nothing = corio::run_coroutine_threadsafe(loop, [] {});
    nothing.get();
  });
  EXPECT_EQ(loop.task_count(), 0u);
}

TEST(RunCoroutineThreadsafe, CancelRaisesCancelledErrorInTheWork) {
  corio::testing::leak_check leaks;
  event_loop loop;
  std::atomic<bool> started{false}, unwound{false};
  with_thread(loop, [&] {
    auto f = corio::run_coroutine_threadsafe(loop, [&]() -> task<int> {
      struct on_unwind {
        std::atomic<bool>& flag;
        ~on_unwind() { flag = true; }
      } guard{unwound};
      started = true;
      co_await corio::sleep(1h);
      co_return 1;
    });
    while (!started)
      std::this_thread::yield();
    EXPECT_FALSE(f.wait_for(1ms));
    EXPECT_TRUE(f.cancel());
    (void)f.cancel(); // again: harmless (true while pending, false once done)
    EXPECT_THROW(f.get(), corio::cancelled_error);
    EXPECT_TRUE(unwound);
  });
  EXPECT_EQ(loop.task_count(), 0u);
  EXPECT_EQ(loop.timer_count(), 0u);
}

TEST(RunCoroutineThreadsafe, CancelBeforeTheLoopRunsAndAfterTheWorkIsDone) {
  corio::testing::leak_check leaks;
  event_loop loop;
  auto early = corio::run_coroutine_threadsafe(loop, [] { return add_later(1, 1); });
  EXPECT_TRUE(early.cancel()); // the loop has not run the start yet
  auto done = corio::run_coroutine_threadsafe(loop, [] { return 7; });
  with_thread(loop, [&] {
    EXPECT_THROW(early.get(), corio::cancelled_error);
    done.wait();
    EXPECT_FALSE(done.cancel()); // too late: the result stands
    EXPECT_EQ(done.get(), 7);
  });
  EXPECT_EQ(loop.task_count(), 0u);
}

// Cancelled before its task started, the work never starts (asyncio never starts a task cancelled before
// its first step): fn is not called, and the future raises cancelled_error.
TEST(RunCoroutineThreadsafe, CancelledBeforeItsTaskStartedNeverCallsFn) {
  corio::testing::leak_check leaks;
  event_loop loop;
  int plain_calls = 0;
  int task_calls = 0;
  auto plain = corio::run_coroutine_threadsafe(loop, [&plain_calls] { return ++plain_calls; });
  auto coro = corio::run_coroutine_threadsafe(loop, [&task_calls] {
    ++task_calls;
    return add_later(1, 1);
  });
  EXPECT_TRUE(plain.cancel());
  EXPECT_TRUE(coro.cancel());
  with_thread(loop, [&] {
    EXPECT_THROW(plain.get(), corio::cancelled_error);
    EXPECT_THROW(coro.get(), corio::cancelled_error);
  });
  EXPECT_EQ(plain_calls, 0);
  EXPECT_EQ(task_calls, 0);
  EXPECT_EQ(loop.task_count(), 0u);
}

TEST(RunCoroutineThreadsafe, ALoopThatClosesFirstNeverLeavesAWaiterHanging) {
  corio::testing::leak_check leaks;
  corio::thread_future<int> never_started, interrupted;
  {
    event_loop loop;
    never_started = corio::run_coroutine_threadsafe(loop, [] { return add_later(1, 2); });
  } // destroyed without running: the start is dropped
  EXPECT_TRUE(never_started.done());
  EXPECT_THROW(never_started.get(), corio::loop_error);
  {
    event_loop loop;
    interrupted = corio::run_coroutine_threadsafe(loop, []() -> task<int> {
      co_await corio::sleep(1h);
      co_return 0;
    });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();    // the task starts and waits
    loop.shutdown_tasks(); // cancels it
  }
  EXPECT_THROW(interrupted.get(), corio::cancelled_error);
}

// A loop destroyed, not closed, with the work suspended on its thread: the future fails with loop_error,
// and the task's state is freed on the loop's thread, into its frame pool, whose slabs go when that thread
// ends. Never on the thread that drops the future last (here after the loop's thread ended).
TEST(RunCoroutineThreadsafe, ALoopDestroyedWithTheWorkSuspendedFreesTheTaskOnItsOwnThread) {
  corio::testing::leak_check leaks;
  corio::thread_future<int> suspended;
  long loop_thread_frames = -1;
  std::thread loop_thread([&] {
    const long before = corio::detail::frame_balance();
    {
      event_loop loop;
      suspended = corio::run_coroutine_threadsafe(loop, [&loop]() -> task<int> {
        loop.stop(); // once the work waits
        co_await corio::sleep(1h);
        co_return 0;
      });
      loop.run_forever();
    } // the task is abandoned: its frame destroyed, the future failed
    loop_thread_frames = corio::detail::frame_balance() - before;
  });
  loop_thread.join();
  EXPECT_EQ(loop_thread_frames, 0) << "the task's state was not freed on the loop's thread";
  const long before = corio::detail::frame_balance();
  EXPECT_TRUE(suspended.done());
  EXPECT_THROW(suspended.get(), corio::loop_error); // drops the last reference to the call
  EXPECT_EQ(corio::detail::frame_balance(), before) << "the task's state was freed on the waiting thread";
}

// close() drops the starts queued from other threads (asyncio's close clears the queue): their futures
// fail with loop_error at once, not when the loop object is destroyed later, and a wrap_future() of one
// on another loop resumes then too.
TEST(RunCoroutineThreadsafe, CloseFailsTheStartsStillQueued) {
  corio::testing::leak_check leaks;
  event_loop loop;
  std::atomic<int> ran{0};
  corio::thread_future<int> queued;
  std::thread other([&] {
    queued = corio::run_coroutine_threadsafe(loop, [&ran] {
      ++ran;
      return 1;
    });
  });
  other.join();
  EXPECT_FALSE(queued.done());
  loop.close();
  EXPECT_TRUE(queued.done()) << "the start queued before close() was kept";
  EXPECT_THROW(queued.get(), corio::loop_error);
  EXPECT_EQ(ran.load(), 0);
  bool dropped_after = true;
  loop.call_soon_threadsafe([&dropped_after] { dropped_after = false; }); // after close(): dropped
  EXPECT_TRUE(dropped_after);
}

TEST(RunCoroutineThreadsafe, WaitingOnTheLoopsOwnThreadIsAnError) {
  corio::testing::leak_check leaks;
  event_loop loop;
  bool threw = false;
  auto f = corio::run_coroutine_threadsafe(loop, [] { return add_later(0, 0); });
  loop.call_soon([&] {
    try {
      f.wait();
    } catch (const corio::loop_error& e) {
      threw = std::string(e.what()).find("own loop") != std::string::npos;
    }
    loop.stop();
  });
  loop.run_forever();
  EXPECT_TRUE(threw);
  with_thread(loop, [&] { EXPECT_EQ(f.get(), 0); });
  corio::thread_future<int> empty;
  EXPECT_THROW((void)empty.done(), corio::invalid_state_error);
}

TEST(RunCoroutineThreadsafe, ManyThreadsManyCalls) {
  corio::testing::leak_check leaks;
  event_loop loop;
  constexpr int threads = 4, per_thread = 200;
  std::atomic<long> total{0};
  long on_loop = 0; // the loop's thread only
  std::atomic<int> finished{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      std::vector<corio::thread_future<int>> fs;
      for (int i = 0; i < per_thread; ++i) {
        const int v = t * per_thread + i;
        fs.push_back(corio::run_coroutine_threadsafe(loop, [&on_loop, v]() -> task<int> {
          co_await corio::sleep(0s);
          ++on_loop;
          co_return v;
        }));
      }
      for (int i = 0; i < per_thread; i += 2)
        (void)fs[static_cast<std::size_t>(i)].get();
      for (int i = 0; i < per_thread; ++i)
        if (i % 2 == 1)
          total += fs[static_cast<std::size_t>(i)].get();
      if (++finished == threads)
        loop.call_soon_threadsafe([&] { loop.stop(); });
    });
  loop.run_forever();
  for (auto& w : workers)
    w.join();
  long expected = 0;
  for (int v = 0; v < threads * per_thread; ++v)
    if (v % 2 == 1)
      expected += v;
  EXPECT_EQ(total, expected);
  EXPECT_EQ(on_loop, threads * per_thread);
  EXPECT_EQ(loop.task_count(), 0u);
}

} // namespace
