// wrap_future / thread_future::add_done_callback: a task on one loop awaits work started on another loop
// (run_coroutine_threadsafe) without blocking its own loop; the result, exception or cancellation comes
// back on the awaiting loop, and cancelling the await cancels the work. Every wait is bounded: a timeout
// scope in the tasks, wait_for on plain threads, and a watchdog that aborts a test that hangs anyway.
#include <corio/event_loop.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/event.hpp>
#include <corio/task.hpp>
#include <corio/task_ref.hpp>
#include <corio/thread_future.hpp>
#include <corio/timeout.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <corio/detail/frame_pool.hpp>

#include "leak_check.hpp"
#include "other_loop.hpp"

using namespace std::chrono_literals;
using corio::event_loop;
using corio::task;

namespace {

/// Loop B: an event loop running on a thread of its own until stop() (or the destructor), which then
/// cancels and finishes the tasks left there and closes it, still on that thread (coroutine frames are
/// counted, and pooled, per thread).
class loop_thread {
public:
  loop_thread()
      : thread_([this] {
          const long frames = corio::detail::frame_balance();
          loop.run_forever();
          loop.shutdown_tasks();
          loop.close();
          EXPECT_EQ(corio::detail::frame_balance(), frames) << "coroutine frames leaked on loop B";
        }) {}
  loop_thread(const loop_thread&) = delete;
  ~loop_thread() { stop(); }
  /// Stops the loop and joins its thread: no task is left on the loop then.
  void stop() {
    if (!thread_.joinable())
      return;
    loop.call_soon_threadsafe([this] { loop.stop(); });
    thread_.join();
  }

  event_loop loop;

private:
  std::thread thread_; // after loop: starts once it exists
};

/// Runs `body` as the main task of loop A (this thread) under a 10 s timeout scope, then checks that no
/// task is left on loop A.
template <class F> void run_on_a(event_loop& a, F body) {
  corio::run_until_complete(a, body());
  EXPECT_EQ(a.task_count(), 0u);
}

task<int> add_later(int x, int y) {
  co_await corio::sleep(1ms);
  co_return x + y;
}

task<int> fail_later() {
  co_await corio::sleep(0s);
  throw std::runtime_error("boom on B");
}

/// The exception a co_await of f raised, or null (hazard: no co_await inside a catch block).
template <class T> task<std::exception_ptr> error_of(corio::thread_future<T> f) {
  std::exception_ptr e;
  try {
    (void)co_await corio::wrap_future(std::move(f));
  } catch (...) {
    e = std::current_exception();
  }
  co_return e;
}

template <class E> bool holds(const std::exception_ptr& e) {
  try {
    if (e)
      std::rethrow_exception(e);
  } catch (const E&) {
    return true;
  } catch (...) {
  }
  return false;
}

/// The number of tasks on loop B, asked from a task of another loop (the asking task counts itself).
task<std::size_t> tasks_on(event_loop* b) {
  auto count = [b] { return b->task_count(); };
  auto f = corio::run_coroutine_threadsafe(*b, count);
  std::size_t n = co_await corio::wrap_future(std::move(f));
  co_return n;
}

/// Work on B that waits until `gate` (a B-thread-only event) is set, returning 1.
task<int> wait_for_gate(corio::event* gate) {
  co_await gate->wait();
  co_return 1;
}

TEST(WrapFuture, ValueComesBackOnTheAwaitingLoopWhichKeepsRunning) {
  corio::testing::hang_watchdog dog("wrap_future test", 60s);
  corio::testing::leak_check leaks;
  loop_thread b;
  event_loop a;
  corio::event gate; // loop B's thread only
  run_on_a(a, [&]() -> task<> {
    auto deadline = corio::timeout(10s);
    auto work = [&gate] { return wait_for_gate(&gate); };
    auto f = corio::run_coroutine_threadsafe(b.loop, work);
    // Opens B's gate from another task of loop A: it runs only if A is not blocked by the await below.
    auto opener = [&]() -> task<> {
      co_await corio::sleep(1ms);
      b.loop.call_soon_threadsafe([&gate] { gate.set(); });
    };
    auto h = corio::spawn(a, opener());
    int v = co_await corio::wrap_future(std::move(f));
    EXPECT_EQ(v, 1);
    EXPECT_EQ(event_loop::current(), &a); // resumed on loop A
    EXPECT_FALSE(f.valid());              // consumed
    co_await h;
    auto sum = corio::run_coroutine_threadsafe(b.loop, [] { return add_later(2, 3); });
    int s = co_await corio::wrap_future(std::move(sum));
    EXPECT_EQ(s, 5);
    // A plain callable, and a move-only result.
    auto owned = corio::run_coroutine_threadsafe(b.loop, [] { return std::make_unique<std::string>("moved"); });
    std::unique_ptr<std::string> p = co_await corio::wrap_future(std::move(owned));
    EXPECT_EQ(*p, "moved");
  });
}

TEST(WrapFuture, ExceptionIsRethrownInTheAwaitingTask) {
  corio::testing::hang_watchdog dog("wrap_future test", 60s);
  corio::testing::leak_check leaks;
  loop_thread b;
  event_loop a;
  run_on_a(a, [&]() -> task<> {
    auto deadline = corio::timeout(10s);
    auto f = corio::run_coroutine_threadsafe(b.loop, [] { return fail_later(); });
    std::exception_ptr e = co_await error_of(std::move(f));
    EXPECT_TRUE(holds<std::runtime_error>(e));
    // A plain callable that throws.
    auto throws = [] {
      throw std::logic_error("plain");
      return 0;
    };
    auto f2 = corio::run_coroutine_threadsafe(b.loop, throws);
    std::exception_ptr e2 = co_await error_of(std::move(f2));
    EXPECT_TRUE(holds<std::logic_error>(e2));
  });
}

TEST(WrapFuture, VoidResult) {
  corio::testing::hang_watchdog dog("wrap_future test", 60s);
  corio::testing::leak_check leaks;
  loop_thread b;
  event_loop a;
  std::atomic<int> ran{0};
  run_on_a(a, [&]() -> task<> {
    auto deadline = corio::timeout(10s);
    auto plain = [&ran] { ++ran; };
    auto f1 = corio::run_coroutine_threadsafe(b.loop, plain);
    co_await corio::wrap_future(std::move(f1));
    EXPECT_EQ(ran.load(), 1);
    auto coro = [&ran]() -> task<> {
      co_await corio::sleep(1ms);
      ++ran;
    };
    auto f2 = corio::run_coroutine_threadsafe(b.loop, coro);
    co_await corio::wrap_future(std::move(f2));
    EXPECT_EQ(ran.load(), 2);
    auto fails = []() -> task<> {
      co_await corio::sleep(0s);
      throw std::runtime_error("void boom");
    };
    auto f3 = corio::run_coroutine_threadsafe(b.loop, fails);
    std::exception_ptr e = co_await error_of(std::move(f3));
    EXPECT_TRUE(holds<std::runtime_error>(e));
  });
}

TEST(WrapFuture, WorkCancelledOnItsLoopRaisesCancelledError) {
  corio::testing::hang_watchdog dog("wrap_future test", 60s);
  corio::testing::leak_check leaks;
  loop_thread b;
  event_loop a;
  corio::task_ref work_task; // loop B's thread only
  corio::event started;      // loop A's thread only
  run_on_a(a, [&]() -> task<> {
    auto deadline = corio::timeout(10s);
    auto work = [&]() -> task<int> {
      work_task = corio::current_task();
      a.call_soon_threadsafe([&started] { started.set(); });
      co_await corio::sleep(1h);
      co_return 0;
    };
    auto f = corio::run_coroutine_threadsafe(b.loop, work);
    auto canceller = [&]() -> task<> {
      co_await started.wait();
      b.loop.call_soon_threadsafe([&work_task] {
        work_task.cancel();
        work_task = {}; // on its own thread: frames are counted per thread
      });
    };
    auto h = corio::spawn(a, canceller());
    std::exception_ptr e = co_await error_of(std::move(f));
    EXPECT_TRUE(holds<corio::cancelled_error>(e));
    EXPECT_FALSE(holds<corio::timeout_error>(e)); // the work's cancellation, not our deadline
    co_await h;
    std::size_t left = co_await tasks_on(&b.loop);
    EXPECT_EQ(left, 1u); // only the one counting
  });
}

TEST(WrapFuture, LoopClosedOrDestroyedBeforeTheWorkRanRaisesLoopError) {
  corio::testing::hang_watchdog dog("wrap_future test", 60s);
  corio::testing::leak_check leaks;
  event_loop a;
  run_on_a(a, [&]() -> task<> {
    auto deadline = corio::timeout(10s);
    // Closed: the start is dropped at once, the future is done already when awaited.
    {
      event_loop closed;
      closed.close();
      auto dropped = corio::run_coroutine_threadsafe(closed, [] { return 1; });
      EXPECT_TRUE(dropped.done());
      std::exception_ptr e = co_await error_of(std::move(dropped));
      EXPECT_TRUE(holds<corio::loop_error>(e));
    }
    // Never run, destroyed while this task waits: the start dies with the loop and the waiter is resumed.
    auto never = std::make_unique<event_loop>();
    auto f = corio::run_coroutine_threadsafe(*never, [] { return add_later(1, 2); });
    auto destroyer = [&]() -> task<> {
      co_await corio::sleep(0s); // the main task is suspended in wrap_future() by now
      never.reset();
    };
    auto h = corio::spawn(a, destroyer());
    std::exception_ptr e = co_await error_of(std::move(f));
    EXPECT_TRUE(holds<corio::loop_error>(e));
    EXPECT_EQ(never, nullptr);
    co_await h;
  });
}

/// Work on B that sleeps until cancelled, then (having caught the cancellation) still waits for `gate`
/// before it ends: the awaiting task must not wait for it. Reports each step to loop A.
struct slow_to_cancel {
  event_loop* a;
  corio::event* started;   // loop A's
  corio::event* unwound;   // loop A's
  corio::event* gate;      // loop B's
  std::atomic<int>* steps; // 1 started, 2 saw the cancellation, 3 ended
  task<int> operator()() const {
    ++*steps;
    a->call_soon_threadsafe([s = started] { s->set(); });
    bool cancelled = false;
    try {
      co_await corio::sleep(1h);
    } catch (const corio::cancelled_error&) {
      cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    ++*steps;
    corio::uncancel();
    co_await gate->wait();
    ++*steps;
    a->call_soon_threadsafe([u = unwound] { u->set(); });
    co_return 7;
  }
};

TEST(WrapFuture, CancellingTheAwaitingTaskRaisesAtOnceAndCancelsTheWork) {
  corio::testing::hang_watchdog dog("wrap_future test", 60s);
  corio::testing::leak_check leaks;
  loop_thread b;
  event_loop a;
  corio::event started, unwound; // loop A's thread only
  corio::event gate;             // loop B's thread only
  std::atomic<int> steps{0};
  run_on_a(a, [&]() -> task<> {
    auto deadline = corio::timeout(10s);
    slow_to_cancel work{&a, &started, &unwound, &gate, &steps};
    auto waiter = [&]() -> task<int> {
      auto f = corio::run_coroutine_threadsafe(b.loop, work);
      int v = co_await corio::wrap_future(std::move(f));
      co_return v;
    };
    auto h = corio::spawn(a, waiter());
    co_await started.wait();
    EXPECT_TRUE(h.cancel());
    std::exception_ptr e;
    try {
      (void)co_await h;
    } catch (...) {
      e = std::current_exception();
    }
    EXPECT_TRUE(holds<corio::cancelled_error>(e));
    EXPECT_TRUE(h.cancelled());
    EXPECT_LT(steps.load(), 3); // the work has not ended: the await did not wait for it
    b.loop.call_soon_threadsafe([&gate] { gate.set(); });
    co_await unwound.wait();
    EXPECT_EQ(steps.load(), 3); // the work saw the cancellation and then ended
    std::size_t left = co_await tasks_on(&b.loop);
    EXPECT_EQ(left, 1u); // only the one counting
  });
}

TEST(WrapFuture, TimeoutScopeExpiringCancelsTheWork) {
  corio::testing::hang_watchdog dog("wrap_future test", 60s);
  corio::testing::leak_check leaks;
  loop_thread b;
  event_loop a;
  corio::event started, unwound; // loop A's thread only
  std::atomic<bool> work_cancelled{false};
  run_on_a(a, [&]() -> task<> {
    auto deadline = corio::timeout(10s);
    auto work = [&]() -> task<int> {
      struct on_unwind {
        event_loop* a;
        corio::event* unwound;
        ~on_unwind() {
          a->call_soon_threadsafe([u = unwound] { u->set(); });
        }
      } guard{&a, &unwound};
      a.call_soon_threadsafe([&started] { started.set(); });
      try {
        co_await corio::sleep(1h);
      } catch (const corio::cancelled_error&) {
        work_cancelled = true;
        throw;
      }
      co_return 0;
    };
    auto f = corio::run_coroutine_threadsafe(b.loop, work);
    bool timed_out = false;
    {
      auto scope = corio::timeout(20ms);
      try {
        (void)co_await corio::wrap_future(std::move(f));
      } catch (const corio::timeout_error&) {
        timed_out = true;
      }
      EXPECT_TRUE(scope.expired());
    }
    EXPECT_TRUE(timed_out);
    co_await unwound.wait();
    EXPECT_TRUE(work_cancelled.load());
    std::size_t left = co_await tasks_on(&b.loop);
    EXPECT_EQ(left, 1u); // only the one counting
  });
}

TEST(WrapFuture, AlreadyDoneBeforeTheAwait) {
  corio::testing::hang_watchdog dog("wrap_future test", 60s);
  corio::testing::leak_check leaks;
  loop_thread b;
  event_loop a;
  auto value = corio::run_coroutine_threadsafe(b.loop, [] { return 7; });
  auto error = corio::run_coroutine_threadsafe(b.loop, [] { return fail_later(); });
  ASSERT_TRUE(value.wait_for(10s));
  ASSERT_TRUE(error.wait_for(10s));
  run_on_a(a, [&]() -> task<> {
    EXPECT_TRUE(value.done());
    int v = co_await corio::wrap_future(std::move(value));
    EXPECT_EQ(v, 7);
    std::exception_ptr e = co_await error_of(std::move(error));
    EXPECT_TRUE(holds<std::runtime_error>(e));
  });
  // A task cancelled before it awaits a done future raises at the await, as any await point.
  auto again = corio::run_coroutine_threadsafe(b.loop, [] { return 8; });
  ASSERT_TRUE(again.wait_for(10s));
  run_on_a(a, [&]() -> task<> {
    auto self = corio::current_task();
    self.cancel();
    bool cancelled = false;
    try {
      (void)co_await corio::wrap_future(std::move(again));
    } catch (const corio::cancelled_error&) {
      cancelled = true;
    }
    corio::uncancel();
    EXPECT_TRUE(cancelled);
  });
}

TEST(WrapFuture, EmptyFutureIsInvalidState) {
  corio::testing::hang_watchdog dog("wrap_future test", 60s);
  corio::testing::leak_check leaks;
  corio::thread_future<int> empty;
  EXPECT_THROW((void)corio::wrap_future(std::move(empty)), corio::invalid_state_error);
  EXPECT_THROW(empty.add_done_callback([] {}), corio::invalid_state_error);
  loop_thread b;
  event_loop a;
  run_on_a(a, [&]() -> task<> {
    auto deadline = corio::timeout(10s);
    auto f = corio::run_coroutine_threadsafe(b.loop, [] { return 3; });
    auto w = corio::wrap_future(std::move(f));
    int v = co_await w;
    EXPECT_EQ(v, 3);
    bool invalid = false;
    try {
      (void)co_await w; // awaited already: the future is gone
    } catch (const corio::invalid_state_error&) {
      invalid = true;
    }
    EXPECT_TRUE(invalid);
  });
}

TEST(ThreadFutureDoneCallback, BeforeAndAfterDone) {
  corio::testing::hang_watchdog dog("wrap_future test", 60s);
  corio::testing::leak_check leaks;
  loop_thread b;
  std::atomic<bool> release{false};
  // B's exception handler: set before B's thread can run any callback of ours.
  std::promise<std::string> handled;
  b.loop.call_soon_threadsafe([&] {
    b.loop.set_exception_handler([&](event_loop&, const corio::exception_context& c) {
      std::string what;
      try {
        std::rethrow_exception(c.exception);
      } catch (const std::exception& ex) {
        what = ex.what();
      }
      handled.set_value(c.message + ": " + what);
    });
  });
  auto f = corio::run_coroutine_threadsafe(b.loop, [&]() -> task<int> {
    while (!release.load())
      co_await corio::sleep(1ms);
    co_return 5;
  });
  std::mutex m;
  std::vector<int> order;        // guarded by m
  std::promise<bool> first_on_b; // set by the first callback
  std::promise<void> third_ran;
  f.add_done_callback([&] {
    {
      std::lock_guard lock(m);
      order.push_back(1);
    }
    first_on_b.set_value(event_loop::current() == &b.loop);
  });
  f.add_done_callback([&] {
    {
      std::lock_guard lock(m);
      order.push_back(2);
    }
    throw std::runtime_error("callback failed");
  });
  f.add_done_callback([&] {
    {
      std::lock_guard lock(m);
      order.push_back(3);
    }
    third_ran.set_value();
  });
  EXPECT_FALSE(f.done());
  release = true;
  auto first = first_on_b.get_future();
  ASSERT_EQ(first.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(first.get()); // on loop B's thread
  auto third = third_ran.get_future();
  ASSERT_EQ(third.wait_for(10s), std::future_status::ready); // after the one that threw
  auto report = handled.get_future();
  ASSERT_EQ(report.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(report.get(), "exception in a thread_future done callback: callback failed");
  {
    std::lock_guard lock(m);
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  }
  ASSERT_TRUE(f.wait_for(10s));
  // Done already: at once, on this thread; an exception goes to the default handler, not to the caller.
  bool here = false;
  const auto me = std::this_thread::get_id();
  f.add_done_callback([&] { here = std::this_thread::get_id() == me; });
  EXPECT_TRUE(here);
  ::testing::internal::CaptureStderr();
  EXPECT_NO_THROW(f.add_done_callback([] { throw std::runtime_error("late callback failed"); }));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("exception in a thread_future done callback"), std::string::npos) << err;
  EXPECT_NE(err.find("late callback failed"), std::string::npos) << err;
  EXPECT_EQ(f.get(), 5);
  b.stop();
  b.loop.set_exception_handler({}); // it refers to locals destroyed before b
}

TEST(ThreadFutureDoneCallback, RunsWhenTheLoopDropsTheWork) {
  corio::testing::hang_watchdog dog("wrap_future test", 60s);
  corio::testing::leak_check leaks;
  int calls = 0;
  corio::thread_future<int> f;
  {
    event_loop never;
    f = corio::run_coroutine_threadsafe(never, [] { return 1; });
    f.add_done_callback([&] { ++calls; });
    auto one = std::make_unique<int>(1); // a move-only callback
    f.add_done_callback([&calls, one = std::move(one)] { calls += *one * 10; });
    EXPECT_EQ(calls, 0);
  } // the start dies with the loop, on this thread
  EXPECT_EQ(calls, 11);
  EXPECT_THROW(f.get(), corio::loop_error);
}

TEST(WrapFuture, ManyRoundTripsSequentialAndConcurrent) {
  corio::testing::hang_watchdog dog("wrap_future test", 60s);
  corio::testing::leak_check leaks;
  loop_thread b;
  event_loop a;
  run_on_a(a, [&]() -> task<> {
    auto deadline = corio::timeout(30s);
    const auto start = std::chrono::steady_clock::now();
    long sum = 0;
    for (int i = 0; i < 1000; ++i) {
      auto work = [i] { return i; };
      auto f = corio::run_coroutine_threadsafe(b.loop, work);
      int v = co_await corio::wrap_future(std::move(f));
      sum += v;
    }
    EXPECT_EQ(sum, 999L * 1000 / 2);
    // 200 at once, each from a task of its own.
    long concurrent = 0;
    auto one = [&](int i) -> task<> {
      auto work = [i]() -> task<int> {
        co_await corio::sleep(0s);
        co_return i;
      };
      auto f = corio::run_coroutine_threadsafe(b.loop, work);
      int v = co_await corio::wrap_future(std::move(f));
      concurrent += v;
    };
    std::vector<corio::join_handle<>> hs;
    for (int i = 0; i < 200; ++i)
      hs.push_back(corio::spawn(a, one(i)));
    for (auto& h : hs)
      co_await h;
    EXPECT_EQ(concurrent, 199L * 200 / 2);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);
  });
}

TEST(WrapFuture, CompletionRacingWithCancellation) {
  corio::testing::hang_watchdog dog("wrap_future test", 60s);
  corio::testing::leak_check leaks;
  loop_thread b;
  event_loop a;
  run_on_a(a, [&]() -> task<> {
    auto deadline = corio::timeout(30s);
    int values = 0, cancels = 0;
    for (int i = 0; i < 300; ++i) {
      auto waiter = [&b]() -> task<int> {
        auto work = [] { return 1; };
        auto f = corio::run_coroutine_threadsafe(b.loop, work);
        int v = co_await corio::wrap_future(std::move(f));
        co_return v;
      };
      auto h = corio::spawn(a, waiter());
      // Let the work run for a varying number of loop iterations, then cancel: either the result or
      // the cancellation wins, never a crash, a hang or a result after the cancellation.
      for (int k = 0; k < i % 4; ++k)
        co_await corio::sleep(0s);
      const bool cancel_sent = h.cancel();
      std::exception_ptr e;
      int v = 0;
      try {
        v = co_await h;
      } catch (...) {
        e = std::current_exception();
      }
      if (e) {
        EXPECT_TRUE(cancel_sent);
        EXPECT_TRUE(holds<corio::cancelled_error>(e));
        ++cancels;
      } else {
        EXPECT_FALSE(cancel_sent); // a task that finished cannot be cancelled; one that did not, raises
        EXPECT_EQ(v, 1);
        ++values;
      }
    }
    EXPECT_EQ(values + cancels, 300);
  });
}

TEST(WrapFuture, AwaitingLoopTornDownWhileWaiting) {
  corio::testing::hang_watchdog dog("wrap_future test", 60s);
  corio::testing::leak_check leaks;
  loop_thread b;
  std::promise<void> work_cancelled;
  std::atomic<bool> work_started{false};
  {
    event_loop a;
    auto waiter = [&]() -> task<int> {
      auto work = [&]() -> task<int> {
        work_started = true;
        try {
          co_await corio::sleep(1h);
        } catch (const corio::cancelled_error&) {
          work_cancelled.set_value();
          throw;
        }
        co_return 0;
      };
      auto f = corio::run_coroutine_threadsafe(b.loop, work);
      int v = co_await corio::wrap_future(std::move(f));
      co_return v;
    };
    auto h = corio::spawn(a, waiter());
    auto stopper = [&]() -> task<> {
      while (!work_started.load()) // bounded by the watchdog; B starts the work promptly
        co_await corio::sleep(1ms);
      a.stop();
    };
    auto s = corio::spawn(a, stopper());
    a.run_forever();
    EXPECT_FALSE(h.done());
  } // loop A destroyed with the task suspended in wrap_future(): the await is abandoned, the work cancelled
  auto cancelled = work_cancelled.get_future();
  EXPECT_EQ(cancelled.wait_for(10s), std::future_status::ready);
}

TEST(WrapFuture, AwaitingLoopClosedByRunWhileTheWorkIsPending) {
  corio::testing::hang_watchdog dog("wrap_future test", 60s);
  corio::testing::leak_check leaks;
  loop_thread b;
  std::promise<void> work_cancelled;
  {
    // corio::run cancels the waiting task when main returns, then closes and destroys loop A; the
    // work's completion may come after that and must find nothing to resume.
    corio::run([&]() -> task<> {
      auto waiter = [&]() -> task<int> {
        auto work = [&]() -> task<int> {
          try {
            co_await corio::sleep(1h);
          } catch (const corio::cancelled_error&) {
            work_cancelled.set_value();
            throw;
          }
          co_return 0;
        };
        auto f = corio::run_coroutine_threadsafe(b.loop, work);
        int v = co_await corio::wrap_future(std::move(f));
        co_return v;
      };
      auto h = corio::spawn(*event_loop::current(), waiter());
      co_await corio::sleep(1ms);
      EXPECT_FALSE(h.done());
    }());
  }
  auto cancelled = work_cancelled.get_future();
  EXPECT_EQ(cancelled.wait_for(10s), std::future_status::ready);
}

TEST(WrapFuture, SameLoop) {
  corio::testing::hang_watchdog dog("wrap_future test", 60s);
  corio::testing::leak_check leaks;
  event_loop a;
  std::atomic<bool> work_cancelled{false};
  run_on_a(a, [&]() -> task<> {
    auto deadline = corio::timeout(10s);
    auto f = corio::run_coroutine_threadsafe(a, [] { return add_later(20, 22); });
    int v = co_await corio::wrap_future(std::move(f));
    EXPECT_EQ(v, 42);
    auto failing = corio::run_coroutine_threadsafe(a, [] { return fail_later(); });
    std::exception_ptr e = co_await error_of(std::move(failing));
    EXPECT_TRUE(holds<std::runtime_error>(e));
    // Cancelling the await cancels the work, here on the same loop.
    auto waiter = [&]() -> task<int> {
      auto work = [&]() -> task<int> {
        try {
          co_await corio::sleep(1h);
        } catch (const corio::cancelled_error&) {
          work_cancelled = true;
          throw;
        }
        co_return 0;
      };
      auto f2 = corio::run_coroutine_threadsafe(a, work);
      int r = co_await corio::wrap_future(std::move(f2));
      co_return r;
    };
    auto h = corio::spawn(a, waiter());
    co_await corio::sleep(1ms);
    h.cancel();
    std::exception_ptr e2;
    try {
      (void)co_await h;
    } catch (...) {
      e2 = std::current_exception();
    }
    EXPECT_TRUE(holds<corio::cancelled_error>(e2));
    for (int i = 0; i < 1000 && !work_cancelled; ++i)
      co_await corio::sleep(0s);
    EXPECT_TRUE(work_cancelled.load());
  });
}

} // namespace
