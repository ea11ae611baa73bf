// corio::thread_pool, to_thread, run_in_executor, the loop's default pool.
#include <corio/gather.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/thread_pool.hpp>
#include <corio/timeout.hpp>
#include <corio/to_thread.hpp>

#include <gtest/gtest.h>

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "counted.hpp"
#include "leak_check.hpp"
#include "loop_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using corio::task;
using corio::thread_pool;
using corio::testing::counted;

int os_thread_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (const dirent* e = ::readdir(d))
      n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

/// Lets the loop run until `flag` (set by another task of this loop) is true; bounded.
task<> until(const bool& flag) {
  for (int i = 0; i < 1000 && !flag; ++i)
    co_await corio::sleep(0s);
  EXPECT_TRUE(flag);
}

/// The thread count before a test starts threads. Starts and joins one thread first: ThreadSanitizer
/// starts a background thread of its own at the first thread creation.
int baseline_threads() {
  std::thread([] {}).join();
  return os_thread_count();
}

// ---- thread_pool on its own ----------------------------------------------------------------------

TEST(ThreadPool, RunsSubmittedWorkOnOtherThreads) {
  std::atomic<int> ran{0};
  std::atomic<bool> on_caller{false};
  const auto caller = std::this_thread::get_id();
  {
    thread_pool pool({.max_threads = 3});
    for (int i = 0; i < 100; ++i)
      pool.submit([&] {
        ran.fetch_add(1);
        if (std::this_thread::get_id() == caller)
          on_caller = true;
      });
    pool.shutdown();
    EXPECT_LE(pool.thread_count(), 3u);
    EXPECT_GE(pool.thread_count(), 1u);
  }
  EXPECT_EQ(ran.load(), 100);
  EXPECT_FALSE(on_caller.load());
}

TEST(ThreadPool, StartsThreadsLazilyUpToTheMaximum) {
  const int before = baseline_threads();
  thread_pool pool({.max_threads = 2});
  EXPECT_EQ(pool.thread_count(), 0u);
  EXPECT_EQ(os_thread_count(), before);
  std::latch release(1);
  std::latch started(2);
  for (int i = 0; i < 6; ++i)
    pool.submit([&] {
      started.count_down();
      release.wait();
    });
  started.wait(); // two jobs run at once: two threads
  EXPECT_EQ(pool.thread_count(), 2u);
  EXPECT_EQ(os_thread_count(), before + 2);
  release.count_down();
  pool.shutdown();
  EXPECT_EQ(os_thread_count(), before) << "shutdown() joins every thread";
}

TEST(ThreadPool, DefaultMaximumIsAsyncios) {
  const unsigned expected = std::min(32u, std::thread::hardware_concurrency() + 4);
  EXPECT_EQ(thread_pool::default_max_threads(), expected);
  EXPECT_EQ(thread_pool().max_threads(), expected);
  EXPECT_EQ(thread_pool({.max_threads = 5}).max_threads(), 5u);
}

TEST(ThreadPool, ShutdownRunsQueuedWorkFirst) {
  std::atomic<int> ran{0};
  thread_pool pool({.max_threads = 1});
  std::latch release(1);
  pool.submit([&] {
    release.wait();
    ran.fetch_add(1);
  });
  for (int i = 0; i < 10; ++i)
    pool.submit([&] { ran.fetch_add(1); });
  release.count_down();
  pool.shutdown();
  EXPECT_EQ(ran.load(), 11);
  EXPECT_TRUE(pool.is_shutdown());
  pool.shutdown(); // idempotent
}

TEST(ThreadPool, SubmitAfterShutdownThrows) {
  thread_pool pool;
  pool.shutdown();
  try {
    pool.submit([] {});
    ADD_FAILURE() << "no exception";
  } catch (const corio::invalid_state_error& e) {
    EXPECT_NE(std::string(e.what()).find("after shutdown"), std::string::npos) << e.what();
  }
  EXPECT_THROW(pool.submit(corio::detail::unique_function{}), corio::invalid_state_error);
}

TEST(ThreadPool, ShutdownFromAPoolThreadThrows) {
  thread_pool pool({.max_threads = 1});
  std::promise<bool> threw;
  pool.submit([&] {
    try {
      pool.shutdown();
      threw.set_value(false);
    } catch (const corio::invalid_state_error&) {
      threw.set_value(true);
    }
  });
  EXPECT_TRUE(threw.get_future().get());
}

/// Spins (bounded) until another thread's shutdown() has begun.
void wait_for_shutdown(const thread_pool& pool) {
  for (int i = 0; i < 100000 && !pool.is_shutdown(); ++i)
    std::this_thread::sleep_for(10us);
  ASSERT_TRUE(pool.is_shutdown());
}

TEST(ThreadPool, ASecondShutdownWaitsForTheRunningWork) {
  thread_pool pool({.max_threads = 1});
  std::latch started(1);
  std::latch release(1);
  std::atomic<bool> done{false};
  pool.submit([&] {
    started.count_down();
    release.wait();
    done = true;
  });
  started.wait();
  std::thread first([&] { pool.shutdown(); }); // joins the thread
  wait_for_shutdown(pool);
  // Released later: a second shutdown() that returned at once would see the work unfinished.
  std::thread releaser([&] {
    std::this_thread::sleep_for(50ms);
    release.count_down();
  });
  pool.shutdown();
  EXPECT_TRUE(done.load()) << "the second shutdown() returned while the work still ran";
  releaser.join();
  first.join();
  pool.shutdown(); // idempotent once joined
  EXPECT_TRUE(done.load());
}

TEST(ThreadPool, ShutdownFromAPoolThreadThrowsWhileAnotherShutdownJoins) {
  thread_pool pool({.max_threads = 1});
  std::promise<bool> threw;
  pool.submit([&] {
    wait_for_shutdown(pool);
    try {
      pool.shutdown(); // would wait for the joiner, which waits for this thread
      threw.set_value(false);
    } catch (const corio::invalid_state_error&) {
      threw.set_value(true);
    }
  });
  pool.shutdown();
  EXPECT_TRUE(threw.get_future().get());
}

TEST(ThreadPool, AnExceptionEscapingAJobIsReported) {
  thread_pool pool({.max_threads = 1});
  testing::internal::CaptureStderr();
  pool.submit([] { throw std::runtime_error("job failed"); });
  pool.shutdown();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("job failed"), std::string::npos) << err;
}

TEST(ThreadPool, ThreadsBlockAsynchronousSignals) {
  thread_pool pool({.max_threads = 1});
  std::promise<sigset_t> mask;
  pool.submit([&] {
    sigset_t m;
    ::pthread_sigmask(SIG_BLOCK, nullptr, &m);
    mask.set_value(m);
  });
  sigset_t m = mask.get_future().get();
  EXPECT_EQ(::sigismember(&m, SIGINT), 1);
  EXPECT_EQ(::sigismember(&m, SIGTERM), 1);
  EXPECT_EQ(::sigismember(&m, SIGCHLD), 1);
  EXPECT_EQ(::sigismember(&m, SIGSEGV), 0) << "synchronous signals stay open";
  sigset_t mine;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &mine);
  EXPECT_EQ(::sigismember(&mine, SIGTERM), 0) << "the submitting thread's mask is restored";
}

// ---- to_thread / run_in_executor ---------------------------------------------------------------------

class ToThread : public corio::testing::ordered_and_shuffled {};
INSTANTIATE_TEST_SUITE_P(Orders, ToThread, corio::testing::ready_orders());

TEST_P(ToThread, ReturnsTheResult) {
  run([]() -> task<> {
    int v = co_await corio::to_thread([] { return 42; });
    EXPECT_EQ(v, 42);
    std::string s = co_await corio::to_thread([](std::string a, int n) { return a + std::to_string(n); }, "x", 7);
    EXPECT_EQ(s, "x7");
    std::unique_ptr<int> p = co_await corio::to_thread([] { return std::make_unique<int>(5); });
    EXPECT_EQ(*p, 5);
    // g++ 12 destroys a capturing lambda twice when it is a temporary in a co_await's full-expression
    // (HAZARDS.md §2): name it first. Other temporary arguments are fine.
    const std::string long_text(100, 'z');
    auto size_of_text = [long_text] { return long_text.size(); };
    EXPECT_EQ(co_await corio::to_thread(size_of_text), 100u);
    EXPECT_EQ(co_await corio::to_thread([](const std::string& t) { return t.size(); }, std::string(50, 'y')), 50u);
    bool ran = false;
    co_await corio::to_thread([&ran] { ran = true; }); // the frame is suspended until it is done
    EXPECT_TRUE(ran);
  });
}

TEST_P(ToThread, RunsOnAnotherThreadWithoutCoroutineFrames) {
  run([]() -> task<> {
    const auto loop_thread = std::this_thread::get_id();
    auto r = co_await corio::to_thread([] {
      return std::pair{std::this_thread::get_id(), corio::detail::frame_balance()};
    });
    EXPECT_NE(r.first, loop_thread);
    EXPECT_EQ(r.second, 0);
  });
}

TEST_P(ToThread, RethrowsTheExceptionInTheAwaitingTask) {
  run([]() -> task<> {
    try {
      co_await corio::to_thread([]() -> int { throw std::runtime_error("from the thread"); });
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "from the thread");
    }
  });
}

TEST_P(ToThread, ManyAtOnce) {
  run([]() -> task<> {
    std::vector<corio::join_handle<int>> handles;
    for (int i = 0; i < 64; ++i)
      handles.push_back(
          corio::spawn([](int x) -> task<int> { co_return co_await corio::to_thread([x] { return x * x; }); }(i)));
    int sum = 0;
    for (auto& h : handles)
      sum += co_await h;
    int expected = 0;
    for (int i = 0; i < 64; ++i)
      expected += i * i;
    EXPECT_EQ(sum, expected);
  });
}

TEST_P(ToThread, RunInExecutorUsesTheGivenPool) {
  thread_pool pool({.max_threads = 1});
  std::vector<std::thread::id> ids;
  run([&]() -> task<> {
    for (int i = 0; i < 5; ++i)
      ids.push_back(co_await corio::run_in_executor(pool, [] { return std::this_thread::get_id(); }));
  });
  EXPECT_EQ(pool.thread_count(), 1u);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), ids.front()), 5);
}

TEST_P(ToThread, VirtualTimeStandsStillWhileTheThreadWorks) {
  // A mock clock jumps to the next timer when every task waits; not while a thread is working for one.
  run([]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    const auto start = loop.time();
    int v = co_await corio::wait_for(corio::to_thread([] {
                                       std::this_thread::sleep_for(5ms);
                                       return 3;
                                     }),
                                     1s);
    EXPECT_EQ(v, 3);
    EXPECT_EQ(loop.time(), start);
    co_return;
  });
}

TEST_P(ToThread, CancelRaisesAtOnceAndTheWorkFinishesInTheBackground) {
  corio::testing::lifetime_check lives;
  struct shared {
    std::latch started{1}, release{1};
    std::atomic<bool> finished{false};
  };
  auto st = std::make_shared<shared>();
  run([&]() -> task<> {
    bool submitted = false;
    auto waiter = corio::spawn([](std::shared_ptr<shared> s, bool& sub) -> task<int> {
      auto job = [s] {
        s->started.count_down();
        s->release.wait();
        s->finished = true;
        return counted(7);
      };
      auto call = corio::to_thread(job);
      sub = true;
      counted c = co_await std::move(call);
      co_return c.value;
    }(st, submitted));
    co_await until(submitted);
    st->started.wait(); // the job runs, blocked on `release` (blocking the loop thread here is fine)
    waiter.cancel();
    EXPECT_TRUE(co_await corio::testing::was_cancelled(waiter));
    EXPECT_FALSE(st->finished.load()) << "cancelled while the thread was still blocked";
    st->release.count_down();
  });
  // run() closed the loop, which shut its default pool down: the job has finished, its result dropped.
  EXPECT_TRUE(st->finished.load());
  EXPECT_EQ(lives.alive(), 0);
}

TEST_P(ToThread, CancelledBeforeItStartedIsSkipped) {
  thread_pool pool({.max_threads = 1});
  std::latch started(1), release(1);
  std::atomic<bool> second_ran{false};
  run([&]() -> task<> {
    bool queued1 = false, queued2 = false;
    auto first = corio::spawn([](thread_pool& p, std::latch& s, std::latch& r, bool& q) -> task<> {
      auto job = [&s, &r] {
        s.count_down();
        r.wait();
      };
      auto call = corio::run_in_executor(p, job);
      q = true;
      co_await std::move(call);
    }(pool, started, release, queued1));
    co_await until(queued1);
    started.wait(); // the only thread is busy with the first job
    auto second = corio::spawn([](thread_pool& p, std::atomic<bool>& ran, bool& q) -> task<> {
      auto job = [&ran] { ran = true; };
      auto call = corio::run_in_executor(p, job);
      q = true;
      co_await std::move(call);
    }(pool, second_ran, queued2));
    co_await until(queued2);
    second.cancel();
    EXPECT_TRUE(co_await corio::testing::was_cancelled(second));
    release.count_down();
    co_await first;
  });
  pool.shutdown();
  EXPECT_FALSE(second_ran.load());
}

TEST_P(ToThread, ACompletionThatArrivesAfterTheCancelIsDropped) {
  corio::testing::lifetime_check lives;
  thread_pool pool({.max_threads = 1});
  run([&]() -> task<> {
    bool queued = false;
    auto waiter = corio::spawn([](thread_pool& p, bool& q) -> task<int> {
      auto call = corio::run_in_executor(p, [] { return counted(1); });
      q = true;
      counted c = co_await std::move(call);
      co_return c.value;
    }(pool, queued));
    co_await until(queued);
    pool.shutdown(); // blocks until the job ran and posted its completion to this loop...
    waiter.cancel(); // ...which has not run yet
    EXPECT_TRUE(co_await corio::testing::was_cancelled(waiter));
    co_await corio::sleep(0s); // the completion runs, finds nobody, drops the result
  });
  EXPECT_EQ(lives.alive(), 0);
}

TEST_P(ToThread, ATimeoutCancelsTheAwait) {
  std::latch release(1); // declared first: it must outlive the pool, whose destructor joins the waiting worker
  thread_pool pool({.max_threads = 1});
  run([&]() -> task<> {
    // With a mock clock the deadline cannot pass while the thread works, so the timeout is already due.
    auto deadline = corio::timeout(0s);
    EXPECT_THROW(co_await corio::run_in_executor(pool, [&release] { release.wait(); }), corio::timeout_error);
  });
  release.count_down();
}

TEST_P(ToThread, AShutDownPoolRaisesAtTheAwait) {
  thread_pool pool;
  pool.shutdown();
  run([&]() -> task<> {
    EXPECT_THROW(co_await corio::run_in_executor(pool, [] { return 1; }), corio::invalid_state_error);
    EXPECT_EQ(corio::event_loop::current()->task_count(), 1u);
  });
}

TEST_P(ToThread, AwaitingTwiceIsAnError) {
  run([]() -> task<> {
    auto op = corio::to_thread([] { return 1; });
    EXPECT_EQ(co_await op, 1);
    EXPECT_THROW(co_await op, corio::invalid_state_error);
  });
}

TEST(ToThreadLoop, DefaultPoolIsShutDownWhenTheLoopCloses) {
  corio::testing::leak_check leaks;
  const int before = baseline_threads();
  {
    corio::event_loop loop;
    thread_pool* pool = nullptr;
    corio::run_until_complete(loop, [](thread_pool** out) -> task<> {
      corio::event_loop& l = *corio::event_loop::current();
      *out = &corio::default_thread_pool(l);
      EXPECT_EQ(*out, &corio::default_thread_pool(l)) << "one per loop";
      co_await corio::to_thread([] {});
    }(&pool));
    EXPECT_GE(pool->thread_count(), 1u);
    EXPECT_GT(os_thread_count(), before);
    loop.close();
    EXPECT_EQ(os_thread_count(), before) << "close() joined the default pool's threads";
    EXPECT_THROW((void)corio::default_thread_pool(loop), corio::loop_error);
  }
  EXPECT_EQ(os_thread_count(), before);
}

// set_default_thread_pool (asyncio's set_default_executor): to_thread goes to the new pool (one thread:
// the calls run one after another on it); a call already queued on the old default finishes there; the
// loop shuts both down at close, also the one the test still holds.
TEST(ToThreadLoop, SetDefaultThreadPool) {
  corio::testing::leak_check leaks;
  const int before = baseline_threads();
  auto mine = std::make_shared<thread_pool>(thread_pool::options{.max_threads = 1});
  {
    corio::event_loop loop;
    corio::run_until_complete(loop, [](std::shared_ptr<thread_pool> pool) -> task<> {
      corio::event_loop& l = *corio::event_loop::current();
      thread_pool& old = corio::default_thread_pool(l);
      std::latch release(1);
      auto on_old = [&release] {
        release.wait();
        return std::this_thread::get_id();
      };
      auto slow = corio::spawn(
          [](decltype(on_old) fn) -> task<std::thread::id> { co_return co_await corio::to_thread(fn); }(on_old));
      co_await corio::sleep(0ms); // the call is queued on the old default
      corio::set_default_thread_pool(l, pool);
      EXPECT_EQ(&corio::default_thread_pool(l), pool.get());
      corio::set_default_thread_pool(l, pool); // again: nothing changes
      auto id = [] { return std::this_thread::get_id(); };
      auto a =
          corio::spawn([](decltype(id) fn) -> task<std::thread::id> { co_return co_await corio::to_thread(fn); }(id));
      auto b =
          corio::spawn([](decltype(id) fn) -> task<std::thread::id> { co_return co_await corio::to_thread(fn); }(id));
      const std::thread::id ta = co_await a, tb = co_await b;
      EXPECT_EQ(ta, tb) << "a one-thread pool ran them on two threads";
      EXPECT_EQ(pool->thread_count(), 1u);
      release.count_down();
      const std::thread::id t_old = co_await slow;
      EXPECT_NE(t_old, ta) << "the call queued before ran on the new pool";
      EXPECT_FALSE(old.is_shutdown());
      EXPECT_THROW(corio::set_default_thread_pool(l, nullptr), std::invalid_argument);
      auto done = std::make_shared<thread_pool>();
      done->shutdown();
      EXPECT_THROW(corio::set_default_thread_pool(l, done), corio::invalid_state_error);
    }(mine));
    EXPECT_FALSE(mine->is_shutdown());
    loop.close();
    EXPECT_TRUE(mine->is_shutdown()) << "the loop's close did not shut its default down";
    EXPECT_EQ(os_thread_count(), before) << "close() joined every default pool's threads";
    EXPECT_THROW(corio::set_default_thread_pool(loop, std::make_shared<thread_pool>()), corio::loop_error);
  }
  EXPECT_THROW(mine->submit([] {}), corio::invalid_state_error);
}

TEST(ToThreadLoop, LoopsHaveTheirOwnDefaultPools) {
  corio::event_loop a, b;
  EXPECT_NE(&corio::default_thread_pool(a), &corio::default_thread_pool(b));
}

TEST(ToThreadLoop, LoopDestroyedWhileTheThreadStillWorks) {
  // The awaiting task is abandoned at loop teardown; the job finishes later and must not touch the loop.
  corio::testing::lifetime_check lives;
  thread_pool pool({.max_threads = 1});
  std::latch started(1), release(1);
  {
    corio::event_loop loop;
    corio::run_until_complete(loop, [](thread_pool& p, std::latch& s, std::latch& r) -> task<> {
      corio::spawn([](thread_pool& p2, std::latch& s2, std::latch& r2) -> task<> {
        counted c = co_await corio::run_in_executor(p2, [&s2, &r2] {
          s2.count_down();
          r2.wait();
          return counted(1);
        });
      }(p, s, r));
      co_await corio::sleep(0s);
    }(pool, started, release));
    started.wait();
  } // the loop is destroyed with the task waiting
  release.count_down();
  pool.shutdown();
  EXPECT_EQ(lives.alive(), 0);
}

TEST(ToThreadLoop, RealClockRoundTrips) {
  corio::testing::leak_check leaks;
  int sum = corio::run([]() -> task<int> {
    int s = 0;
    for (int i = 0; i < 200; ++i)
      s += co_await corio::to_thread([i] { return i; });
    co_return s;
  }());
  EXPECT_EQ(sum, 199 * 200 / 2);
}

// ---- a thread that cannot start ---------------------------------------------------------------------

task<int> five_in(thread_pool* pool) {
  auto f = [] { return 5; };
  co_return co_await corio::run_in_executor(*pool, f);
}

/// In a forked child, as user nobody with RLIMIT_NPROC at 1 (new threads fail with EAGAIN): a pool
/// with a thread keeps a job it cannot start a thread for (that thread runs it); a pool without one
/// throws and keeps nothing. What went wrong, or "" (77: thread creation did not fail here).
std::string thread_start_failure_child() {
  std::string failures;
  auto check = [&](bool ok, const std::string& what) {
    if (!ok)
      failures += what + "\n";
  };
  if (::getuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) // root ignores RLIMIT_NPROC
    return "cannot become user nobody";
  thread_pool with_thread({.max_threads = 4});
  std::atomic<bool> running{false}, release{false}, second_ran{false};
  with_thread.submit([&] {
    running = true;
    while (!release)
      std::this_thread::sleep_for(1ms);
  });
  for (int i = 0; i < 10000 && !running; ++i)
    std::this_thread::sleep_for(1ms);
  check(running, "the first job did not start");
  const rlimit one{1, 1};
  if (::setrlimit(RLIMIT_NPROC, &one) != 0)
    return "setrlimit";
  try {
    std::thread([] {}).join();
    ::_exit(77);
  } catch (const std::system_error&) { // EAGAIN: what the pool meets below
  }

  // The pool has a thread (busy): the jobs stay queued, no error, and that thread runs them later.
  try {
    with_thread.submit([&] { second_ran = true; });
  } catch (const std::exception& e) {
    check(false, std::string("submit() threw: ") + e.what());
  }
  corio::testing::run_mock([&](auto*) -> task<> {
    auto h = corio::spawn(five_in(&with_thread));
    co_await corio::sleep(0s); // h has queued its job behind the busy one
    release = true;
    int v = 0;
    try {
      v = co_await h;
    } catch (const std::exception& e) {
      check(false, std::string("run_in_executor threw: ") + e.what());
    }
    check(v == 5, "run_in_executor gave " + std::to_string(v));
  });
  with_thread.shutdown();
  check(second_ran, "the second job did not run");
  check(with_thread.thread_count() == 1, "threads: " + std::to_string(with_thread.thread_count()));

  // No thread at all: submit() and run_in_executor throw, naming what failed, and keep nothing.
  thread_pool without({.max_threads = 4});
  auto held = std::make_shared<int>(0);
  std::string what;
  int code = 0;
  try {
    without.submit([held] { ++*held; });
  } catch (const std::system_error& e) {
    what = e.what();
    code = e.code().value();
  }
  check(code == EAGAIN, "submit() error code " + std::to_string(code));
  check(what == "corio: thread_pool: cannot start a worker thread: " + std::generic_category().message(EAGAIN),
        "submit() error: " + what);
  check(held.use_count() == 1, "the job was kept");
  code = 0;
  corio::testing::run_mock([&](auto*) -> task<> {
    try {
      (void)co_await five_in(&without);
    } catch (const std::system_error& e) {
      code = e.code().value();
    }
  });
  check(code == EAGAIN, "run_in_executor error code " + std::to_string(code));
  without.shutdown();
  check(without.thread_count() == 0 && *held == 0, "the failed job ran");
  return failures;
}

TEST(ThreadPoolStartFailure, JobsWaitForTheThreadsThereAreOrFailCleanlyWithNone) {
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(out[0]);
    std::string failures;
    try {
      failures = thread_start_failure_child();
    } catch (const std::exception& e) {
      failures = std::string("exception: ") + e.what();
    }
    [[maybe_unused]] auto n = ::write(out[1], failures.data(), failures.size());
    ::_exit(0);
  }
  ::close(out[1]);
  std::string failures;
  char buf[512];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) != 0;)
    if (n > 0)
      failures.append(buf, static_cast<std::size_t>(n));
    else if (errno != EINTR)
      break;
  ::close(out[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
    GTEST_SKIP() << "RLIMIT_NPROC does not stop thread creation here";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child died: status " << status;
  EXPECT_EQ(failures, "");
}

} // namespace
