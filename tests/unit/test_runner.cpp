// corio::runner (asyncio.Runner): one loop for several run() calls, close(), and corio::run on top of it.
#include <corio/debug.hpp>
#include <corio/run.hpp>
#include <corio/runner.hpp>
#include <corio/signals.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/event.hpp>
#include <corio/task.hpp>
#include <corio/testing/mock_clock.hpp>
#include <corio/this_task.hpp>
#include <corio/thread_future.hpp>
#include <corio/timeout.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "leak_check.hpp"

namespace {

using namespace std::chrono_literals;
using corio::join_handle;
using corio::runner;
using corio::task;
using corio::testing::mock_clock;

/// Sets *flag when destroyed: a task's cleanup (its frame's locals) ran.
struct set_on_exit {
  bool* flag;
  explicit set_on_exit(bool* f) : flag(f) {}
  set_on_exit(const set_on_exit&) = delete;
  ~set_on_exit() { *flag = true; }
};

/// Sleeps an hour of loop time (cancelled long before with a mock clock); records how it ended.
task<> sleeper(bool* cleaned, bool* saw_cancel) {
  set_on_exit guard{cleaned};
  try {
    co_await corio::sleep(1h);
  } catch (const corio::cancelled_error&) {
    *saw_cancel = true;
    throw;
  }
}

/// When cancelled, takes a second of loop time to clean up, then sets *cleaned.
task<> slow_to_finish(bool* cleaned) {
  try {
    co_await corio::sleep(1h);
  } catch (const corio::cancelled_error&) {
  }
  (void)corio::uncancel();
  co_await corio::sleep(1s);
  *cleaned = true;
}

task<int> add(int a, int b) { co_return a + b; }

TEST(Runner, TwoRunsShareOneLoopAndATaskLeftAliveFinishesInTheSecond) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  runner r({.clock = &clock});
  bool finished = false;
  corio::event_loop* first_loop = nullptr;
  auto first = [](bool* f, corio::event_loop** loop) -> task<join_handle<int>> {
    *loop = corio::event_loop::current();
    auto background = corio::spawn([](bool* fl) -> task<int> {
      co_await corio::sleep(10s);
      *fl = true;
      co_return 42;
    }(f));
    co_await corio::sleep(1s);
    co_return background;
  };
  join_handle<int> background = r.run(first(&finished, &first_loop));
  EXPECT_EQ(first_loop, &r.get_loop());
  EXPECT_FALSE(finished) << "the background task is still sleeping";
  EXPECT_FALSE(background.done());
  EXPECT_EQ(r.get_loop().task_count(), 1u) << "it stays alive between run() calls";

  corio::event_loop* second_loop = nullptr;
  auto second = [](join_handle<int> b, corio::event_loop** loop) -> task<int> {
    *loop = corio::event_loop::current();
    co_return co_await b;
  };
  EXPECT_EQ(r.run(second(background, &second_loop)), 42);
  EXPECT_TRUE(finished);
  EXPECT_EQ(second_loop, first_loop) << "one loop for both runs";
  corio::testing::expect_idle(r.get_loop());
  r.close();
}

TEST(Runner, ResultsAndExceptionsComeBack) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  runner r({.clock = &clock});
  EXPECT_EQ(r.run(add(2, 3)), 5);
  auto ptr = r.run([]() -> task<std::unique_ptr<std::string>> {
    co_await corio::sleep(1s);
    co_return std::make_unique<std::string>("moved out");
  }());
  ASSERT_NE(ptr, nullptr);
  EXPECT_EQ(*ptr, "moved out");
  bool ran = false;
  r.run([](bool* f) -> task<> {
    *f = true;
    co_return;
  }(&ran));
  EXPECT_TRUE(ran);
  try {
    r.run([]() -> task<int> {
      co_await corio::sleep(1s);
      throw std::runtime_error("main failed");
    }());
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "main failed");
  }
  EXPECT_EQ(r.run(add(1, 1)), 2) << "still usable after an exception";
}

TEST(Runner, TheMainTaskIsNamedMain) {
  mock_clock clock;
  runner r({.clock = &clock});
  std::string tasks =
      r.run([]() -> task<std::string> { co_return corio::format_tasks(*corio::event_loop::current()); }());
  EXPECT_NE(tasks.find("'main' running"), std::string::npos) << tasks;
}

TEST(Runner, RunFromInsideARunningLoopIsALoopError) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  runner outer({.clock = &clock});
  runner other({.clock = &clock});
  bool inner_ran = false;
  auto body = [](runner* self, runner* o, bool* ran) -> task<int> {
    int errors = 0;
    auto inner = [](bool* f) -> task<int> {
      *f = true;
      co_return 1;
    };
    runner* targets[] = {self, o};
    for (runner* target : targets) {
      try {
        (void)target->run(inner(ran));
      } catch (const corio::loop_error& e) {
        if (std::string(e.what()).find("cannot be called from a running event loop") != std::string::npos)
          ++errors;
      }
    }
    try {
      (void)corio::run(inner(ran), {});
    } catch (const corio::loop_error&) {
      ++errors;
    }
    co_await corio::sleep(1s);
    co_return errors;
  };
  EXPECT_EQ(outer.run(body(&outer, &other, &inner_ran)), 3);
  EXPECT_FALSE(inner_ran) << "the inner task was never spawned";
  EXPECT_EQ(outer.get_loop().task_count(), 0u);
  EXPECT_EQ(other.get_loop().task_count(), 0u);
}

TEST(Runner, RunAndGetLoopAfterCloseAreLoopErrors) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  runner r({.clock = &clock});
  EXPECT_EQ(r.run(add(1, 2)), 3);
  EXPECT_FALSE(r.is_closed());
  r.close();
  EXPECT_TRUE(r.is_closed());
  bool ran = false;
  EXPECT_THROW(r.run([](bool* f) -> task<> {
    *f = true;
    co_return;
  }(&ran)),
               corio::loop_error);
  EXPECT_FALSE(ran);
  EXPECT_THROW((void)r.get_loop(), corio::loop_error);
}

TEST(Runner, CloseCancelsTheTasksLeftAliveAndRunsTheirCleanup) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  bool cleaned = false, saw_cancel = false;
  runner r({.clock = &clock});
  r.run([](bool* c, bool* s) -> task<> {
    corio::spawn(sleeper(c, s));
    co_await corio::sleep(1s);
  }(&cleaned, &saw_cancel));
  EXPECT_FALSE(cleaned);
  EXPECT_EQ(r.get_loop().task_count(), 1u);
  r.close();
  EXPECT_TRUE(saw_cancel) << "cancelled at its await point, not abandoned";
  EXPECT_TRUE(cleaned);
  EXPECT_TRUE(r.is_closed());
  r.close(); // twice: nothing to do
  EXPECT_TRUE(r.is_closed());
}

TEST(Runner, CloseRunsTheLoopsCloseCallbacks) {
  corio::testing::leak_check leaks;
  // The loop's close callbacks (its default thread pool's shutdown among them) run in close(), not before.
  bool closed_callback = false;
  {
    runner r;
    r.get_loop().on_close([&closed_callback] { closed_callback = true; });
    EXPECT_EQ(r.run(add(1, 1)), 2);
    EXPECT_FALSE(closed_callback) << "the loop stays open between runs";
    r.close();
    EXPECT_TRUE(closed_callback);
  }
}

TEST(Runner, TheDestructorClosesARunnerNeverClosed) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  bool cleaned = false, saw_cancel = false, closed_callback = false;
  {
    runner r({.clock = &clock});
    r.get_loop().on_close([&closed_callback] { closed_callback = true; });
    r.run([](bool* c, bool* s) -> task<> {
      corio::spawn(sleeper(c, s));
      co_return;
    }(&cleaned, &saw_cancel));
    EXPECT_FALSE(cleaned);
  }
  EXPECT_TRUE(saw_cancel);
  EXPECT_TRUE(cleaned);
  EXPECT_TRUE(closed_callback);
}

TEST(Runner, ARunnerThatNeverRanMakesNoLoop) {
  corio::testing::leak_check leaks;
  // A shuffling loop prints its seed when it is made: the output tells whether a loop was.
  testing::internal::CaptureStderr();
  { runner never({.shuffle = true, .seed = 7}); }
  {
    runner closed({.shuffle = true, .seed = 7});
    closed.close();
    EXPECT_TRUE(closed.is_closed());
    EXPECT_THROW((void)closed.get_loop(), corio::loop_error);
  }
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, "");

  testing::internal::CaptureStderr();
  {
    runner used({.shuffle = true, .seed = 7});
    (void)used.get_loop();
  }
  err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("seed 7"), std::string::npos) << err;
}

TEST(Runner, TheLoopUsesTheOptions) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  runner r({.clock = &clock, .debug = true});
  EXPECT_EQ(r.get_loop().config().clock, &clock);
  EXPECT_TRUE(r.get_loop().config().debug);
  const auto start = clock.now();
  EXPECT_EQ(r.get_loop().time(), start);
  r.run([]() -> task<> { co_await corio::sleep(2h); }());
  EXPECT_EQ(clock.now() - start, 2h) << "virtual time: the mock clock jumped to the deadline";
  EXPECT_EQ(&r.get_loop(), &r.get_loop()) << "made once";
}

TEST(Runner, AnEmptyTaskIsAnInvalidStateErrorAndLeavesNothingBehind) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  runner r({.clock = &clock});
  task<int> t = add(20, 22);
  task<int> moved = std::move(t);
  EXPECT_THROW((void)r.run(std::move(t)), corio::invalid_state_error);
  EXPECT_EQ(r.get_loop().task_count(), 0u);
  EXPECT_EQ(r.run(std::move(moved)), 42);
  corio::testing::expect_idle(r.get_loop());
}

TEST(Runner, ALoopStoppedFromInsideIsALoopErrorAndTheTaskGoesOnInTheNextRun) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  runner r({.clock = &clock});
  bool first_finished = false;
  try {
    r.run([](bool* f) -> task<> {
      corio::event_loop::current()->stop();
      co_await corio::sleep(1s);
      *f = true;
    }(&first_finished));
    ADD_FAILURE() << "no exception";
  } catch (const corio::loop_error& e) {
    EXPECT_NE(std::string(e.what()).find("stopped before the main task finished"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(first_finished);
  EXPECT_EQ(r.get_loop().task_count(), 1u) << "the first main task is still alive";
  // The first task finishes during this run: its done callback must not stop this one.
  EXPECT_EQ(r.run([](bool* f) -> task<int> {
    co_await corio::sleep(5s);
    co_return *f ? 1 : 0;
  }(&first_finished)),
            1);
  EXPECT_TRUE(first_finished);
  corio::testing::expect_idle(r.get_loop());
}

TEST(Runner, ALeftoverMainTaskFinishingDuringCloseDoesNotStopTheShutdown) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  bool cleaned = false;
  runner r({.clock = &clock});
  EXPECT_THROW(r.run([](bool* c) -> task<> {
    corio::spawn_eager(slow_to_finish(c)); // started: a task cancelled before it starts never runs
    corio::event_loop::current()->stop();
    co_await corio::sleep(1h);
  }(&cleaned)),
               corio::loop_error);
  EXPECT_EQ(r.get_loop().task_count(), 2u);
  // close() cancels both: the main task ends at once, the other one a second later.
  EXPECT_NO_THROW(r.close());
  EXPECT_TRUE(cleaned);
}

// A task spawned during close()'s shutdown after the last cancelled task ended (in the same batch) made
// close() throw "task(s) still pending". It now gets its iteration and runs; the shutdown goes on.
TEST(Runner, ATaskSpawnedAfterTheLastCancelledTaskEndedRunsAndCloseSucceeds) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  bool cleaned = false, saw_cancel = false, late_ran = false;
  runner r({.clock = &clock});
  r.run([](bool* c, bool* s) -> task<> {
    corio::spawn(sleeper(c, s));
    co_return;
  }(&cleaned, &saw_cancel));
  // Taken by close()'s first iteration after the sleeper's cancellation was scheduled: it spawns the
  // late task once the sleeper has ended.
  r.get_loop().call_soon_threadsafe([&late_ran] {
    corio::spawn([](bool* ran) -> task<> {
      *ran = true;
      co_return;
    }(&late_ran));
  });
  EXPECT_NO_THROW(r.close());
  EXPECT_TRUE(saw_cancel);
  EXPECT_TRUE(late_ran) << "it got its loop iteration";
  EXPECT_TRUE(r.is_closed());
}

// The same from another thread: a run_coroutine_threadsafe() posted between run() and close() gets
// its result (it gave loop_error, as close() threw and the loop was destroyed).
TEST(Runner, ARunCoroutineThreadsafePostedBeforeCloseGetsItsResult) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  bool cleaned = false, saw_cancel = false;
  runner r({.clock = &clock});
  r.run([](bool* c, bool* s) -> task<> {
    corio::spawn(sleeper(c, s));
    co_return;
  }(&cleaned, &saw_cancel));
  corio::thread_future<int> f;
  std::thread poster(
      [&f, &r] { f = corio::run_coroutine_threadsafe(r.get_loop(), []() -> task<int> { co_return 1; }); });
  poster.join();
  EXPECT_NO_THROW(r.close());
  EXPECT_TRUE(saw_cancel);
  EXPECT_EQ(f.get(), 1);
}

// A late task that does not end by itself is cancelled in the next round (close() neither throws nor
// waits for it), and a run_coroutine_threadsafe() caller sees that cancellation.
TEST(Runner, ALateTaskThatWouldWaitIsCancelledInTheNextRound) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  bool cleaned = false, saw_cancel = false, late_cleaned = false, late_saw_cancel = false;
  runner r({.clock = &clock});
  r.run([](bool* c, bool* s) -> task<> {
    corio::spawn(sleeper(c, s));
    co_return;
  }(&cleaned, &saw_cancel));
  r.get_loop().call_soon_threadsafe(
      [&late_cleaned, &late_saw_cancel] { corio::spawn(sleeper(&late_cleaned, &late_saw_cancel)); });
  corio::thread_future<int> f;
  std::thread poster([&f, &r] {
    f = corio::run_coroutine_threadsafe(r.get_loop(), []() -> task<int> {
      co_await corio::sleep(1h);
      co_return 1;
    });
  });
  poster.join();
  const corio::time_point start = clock.now();
  EXPECT_NO_THROW(r.close());
  EXPECT_TRUE(saw_cancel);
  EXPECT_TRUE(late_saw_cancel);
  EXPECT_TRUE(late_cleaned);
  EXPECT_EQ(clock.now(), start) << "cancelled, not slept through";
  EXPECT_THROW((void)f.get(), corio::cancelled_error);
}

/// A task that refuses to end when cancelled: it stops the loop and sleeps on.
task<> stubborn() {
  try {
    co_await corio::sleep(1h);
  } catch (const corio::cancelled_error&) {
  }
  (void)corio::uncancel();
  corio::event_loop::current()->stop();
  co_await corio::sleep(1h);
}

TEST(Runner, CloseThatFailsStillClosesTheRunner) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  runner r({.clock = &clock});
  r.run([]() -> task<> {
    corio::spawn(stubborn());
    co_await corio::sleep(1s);
  }());
  EXPECT_THROW(r.close(), corio::loop_error) << "a task still pending";
  EXPECT_TRUE(r.is_closed());
  EXPECT_NO_THROW(r.close());
  EXPECT_THROW((void)r.get_loop(), corio::loop_error);
}

TEST(Runner, TheDestructorReportsAFailedCloseInsteadOfThrowing) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  testing::internal::CaptureStderr();
  {
    runner r({.clock = &clock});
    r.run([]() -> task<> {
      corio::spawn(stubborn());
      co_await corio::sleep(1s);
    }());
  } // a throwing destructor would terminate the test
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("runner::close()"), std::string::npos) << err;
  EXPECT_NE(err.find("still pending"), std::string::npos) << err;
}

TEST(Runner, CloseFromInsideALoopIsALoopErrorAndChangesNothing) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  runner r({.clock = &clock});
  runner idle({.clock = &clock}); // no loop yet: closing it needs no loop
  int errors = r.run([](runner* self, runner* i) -> task<int> {
    int n = 0;
    try {
      self->close();
    } catch (const corio::loop_error&) {
      ++n;
    }
    i->close();
    co_await corio::sleep(1s);
    co_return n;
  }(&r, &idle));
  EXPECT_EQ(errors, 1);
  EXPECT_FALSE(r.is_closed());
  EXPECT_TRUE(idle.is_closed());
  EXPECT_EQ(r.run(add(1, 1)), 2);
}

// A runner destroyed by its own main task (the last owner let go inside the loop): run() still returns
// the result, then shuts the loop down as close() would (a task left alive is cancelled and its
// cleanup runs); nothing is destroyed under the running loop, nothing leaks.
TEST(Runner, DestroyedByItsOwnTaskClosesTheLoopWhenRunReturns) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  auto r = std::make_unique<runner>(corio::event_loop::options{.clock = &clock});
  bool cleaned = false;
  auto leftover = [](bool* flag) -> task<> {
    struct on_exit {
      bool* flag;
      ~on_exit() { *flag = true; }
    } guard{flag};
    co_await corio::sleep(1h);
  };
  runner* raw = r.get();
  int got = raw->run([](std::unique_ptr<runner>* owner, task<> left) -> task<int> {
    (void)corio::spawn(std::move(left));
    co_await corio::sleep(1s);
    owner->reset(); // the runner goes; its loop is running this very task
    co_await corio::sleep(1s);
    co_return 42;
  }(&r, leftover(&cleaned)));
  EXPECT_EQ(got, 42);
  EXPECT_EQ(r, nullptr);
  EXPECT_TRUE(cleaned) << "the task left alive was not cancelled";
  EXPECT_EQ(corio::event_loop::current(), nullptr);
}

// The same with a main task that fails: its exception comes out of run(), the loop is still closed.
TEST(Runner, DestroyedByItsOwnFailingTaskStillRaises) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  auto r = std::make_unique<runner>(corio::event_loop::options{.clock = &clock});
  runner* raw = r.get();
  EXPECT_THROW(raw->run([](std::unique_ptr<runner>* owner) -> task<> {
    owner->reset();
    co_await corio::sleep(1s);
    throw std::runtime_error("after the runner went");
  }(&r)),
               std::runtime_error);
  EXPECT_EQ(r, nullptr);
}

// ---- Ctrl-C: a SIGINT guard per run() ----------------------------------------------------------------

/// Blocks SIGINT for the test (raise() then leaves it pending for the loop's signalfd); at the end
/// discards what is still pending and restores the mask.
class blocked_sigint {
public:
  blocked_sigint() {
    ::sigemptyset(&set_);
    ::sigaddset(&set_, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  blocked_sigint(const blocked_sigint&) = delete;
  ~blocked_sigint() {
    const timespec zero{};
    while (::sigtimedwait(&set_, nullptr, &zero) > 0) {
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

private:
  sigset_t set_{}, old_{};
};

/// Waits "forever" (a real-time safety net: 30 s, raising timeout_error, not keyboard_interrupt).
task<> wait_forever() {
  corio::event never;
  auto deadline = corio::timeout(30s);
  co_await never.wait();
}

TEST(Runner, EachRunHandlesCtrlC) {
  blocked_sigint guard;
  runner r; // a real clock: with a virtual one the handler is not installed
  for (int i = 0; i < 2; ++i) {
    EXPECT_THROW(r.run([]() -> task<> {
      ::raise(SIGINT); // pending now: the loop reads it at its next poll
      co_await wait_forever();
    }()),
                 corio::keyboard_interrupt)
        << "run " << i;
  }
  EXPECT_EQ(r.run([]() -> task<std::size_t> { co_return corio::event_loop::current()->io_waiter_count(); }()), 1u)
      << "the guard is installed while main runs";
  EXPECT_EQ(r.get_loop().io_waiter_count(), 0u) << "and removed after it";
}

// ---- corio::run on top of the runner -----------------------------------------------------------------

TEST(Runner, RunStoppedFromInsideIsALoopErrorAndCleansUp) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  bool cleaned = false;
  try {
    corio::run(
        [](bool* c) -> task<> {
          corio::spawn_eager(slow_to_finish(c)); // started: a task cancelled before it starts never runs
          corio::event_loop::current()->stop();
          co_await corio::sleep(1h);
        }(&cleaned),
        {.clock = &clock});
    ADD_FAILURE() << "no exception";
  } catch (const corio::loop_error& e) {
    EXPECT_NE(std::string(e.what()).find("stopped before the main task finished"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(cleaned);
}

TEST(Runner, RunReturnsAfterClosingTheLoop) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  bool closed_callback = false;
  int result = corio::run(
      [](bool* c) -> task<int> {
        corio::event_loop::current()->on_close([c] { *c = true; });
        co_await corio::sleep(1s);
        co_return 7;
      }(&closed_callback),
      {.clock = &clock});
  EXPECT_EQ(result, 7);
  EXPECT_TRUE(closed_callback);
}

// A task whose run_until_complete() ended early (the loop was stopped) must not stop a later run when
// it finishes: its stopping callback is withdrawn.
TEST(Runner, RunUntilCompleteStoppedEarlyDoesNotStopALaterRun) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  corio::event_loop loop({.clock = &clock});
  auto first = []() -> task<int> {
    corio::event_loop::current()->stop();
    co_await corio::sleep(1s); // ends while the second run_until_complete runs
    co_return 1;
  };
  EXPECT_THROW(corio::run_until_complete(loop, first()), corio::loop_error);
  auto second = []() -> task<int> {
    co_await corio::sleep(5s); // a stop when the first ends (at 1 s) would cut this short
    co_return 2;
  };
  EXPECT_EQ(corio::run_until_complete(loop, second()), 2);
  loop.shutdown_tasks();
  loop.close();
}

// A task that stops the loop as it ends: its run_until_complete() returns its result, and the stop
// callback it scheduled on the way out must not cut the next run short.
TEST(Runner, RunUntilCompleteWhoseTaskStopsTheLoopAsItEndsDoesNotStopALaterRun) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  corio::event_loop loop({.clock = &clock});
  auto first = []() -> task<int> {
    corio::event_loop::current()->stop(); // this iteration is the last; the task ends in it
    co_return 1;
  };
  EXPECT_EQ(corio::run_until_complete(loop, first()), 1);
  auto second = []() -> task<int> {
    co_await corio::sleep(5s);
    co_return 2;
  };
  EXPECT_EQ(corio::run_until_complete(loop, second()), 2);
  loop.close();
}

} // namespace
