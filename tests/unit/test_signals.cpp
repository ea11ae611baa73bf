// corio::add_signal_handler / remove_signal_handler, and corio::run()'s Ctrl-C. Every test blocks the
// signals it raises before raising them (raise() / kill(getpid())), so a signal is never delivered with
// its default action, and restores the mask and discards what is still pending at the end — except
// the tests of a SIGINT taken by another thread, which run in a child process.
#include <corio/run.hpp>
#include <corio/signals.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/event.hpp>
#include <corio/testing/mock_clock.hpp>
#include <corio/this_task.hpp>
#include <corio/timeout.hpp>

#include <gtest/gtest.h>

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <thread>

#include "leak_check.hpp"

namespace {

using namespace std::chrono_literals;
using corio::task;

bool blocked(int signo) {
  sigset_t m;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &m);
  return ::sigismember(&m, signo) == 1;
}

bool pending(int signo) {
  sigset_t p;
  ::sigpending(&p);
  return ::sigismember(&p, signo) == 1;
}

/// Blocks `signals` for the test; at the end discards what is pending of them and restores the mask.
class blocked_signals {
public:
  blocked_signals(std::initializer_list<int> signals) {
    ::sigemptyset(&set_);
    for (int s : signals)
      ::sigaddset(&set_, s);
    ::pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  blocked_signals(const blocked_signals&) = delete;
  ~blocked_signals() {
    const timespec zero{};
    while (::sigtimedwait(&set_, nullptr, &zero) > 0) {
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  /// Takes one pending instance of signo; true if there was one.
  bool take(int signo) {
    sigset_t one;
    ::sigemptyset(&one);
    ::sigaddset(&one, signo);
    const timespec zero{};
    return ::sigtimedwait(&one, nullptr, &zero) == signo;
  }

private:
  sigset_t set_{}, old_{};
};

template <class F> auto run_mock(F body) {
  corio::testing::mock_clock clock;
  return corio::run(body(), {.clock = &clock});
}

// ---- add_signal_handler / remove_signal_handler ------------------------------------------------------

TEST(Signals, TheHandlerRunsAsACallbackWhenTheSignalArrives) {
  corio::testing::leak_check leaks;
  blocked_signals guard{SIGUSR1};
  run_mock([]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    corio::event got;
    bool in_task = true;
    corio::add_signal_handler(loop, SIGUSR1, [&] {
      in_task = loop.current_task() != nullptr;
      got.set();
    });
    EXPECT_EQ(loop.io_waiter_count(), 1u) << "one signalfd";
    ::raise(SIGUSR1);
    co_await got.wait();
    EXPECT_FALSE(in_task);
    EXPECT_TRUE(corio::remove_signal_handler(loop, SIGUSR1));
    EXPECT_FALSE(corio::remove_signal_handler(loop, SIGUSR1));
    EXPECT_EQ(loop.io_waiter_count(), 0u);
  });
  EXPECT_TRUE(blocked(SIGUSR1)) << "it was blocked before: it stays blocked";
}

TEST(Signals, AHandlerAddedAgainAfterTheLastWasRemovedStillRuns) {
  // Removing the last handler closes the signalfd; the next one usually gets the same fd number, which
  // the loop must watch afresh (it once kept the old registration and waited forever).
  corio::testing::leak_check leaks;
  blocked_signals guard{SIGUSR1};
  run_mock([]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    for (int round = 0; round < 3; ++round) {
      corio::event got;
      corio::add_signal_handler(loop, SIGUSR1, [&] { got.set(); });
      ::raise(SIGUSR1);
      co_await got.wait();
      EXPECT_TRUE(corio::remove_signal_handler(loop, SIGUSR1));
    }
  });
}

TEST(Signals, AProcessDirectedSignalReachesTheLoop) {
  blocked_signals guard{SIGUSR2};
  run_mock([]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    corio::event got;
    corio::add_signal_handler(loop, SIGUSR2, [&] { got.set(); });
    ::kill(::getpid(), SIGUSR2);
    co_await got.wait();
    corio::remove_signal_handler(loop, SIGUSR2);
  });
}

TEST(Signals, SignalsPendingTogetherAreDeliveredOnce) {
  blocked_signals guard{SIGUSR1, SIGUSR2};
  run_mock([]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    int usr1 = 0, usr2 = 0;
    corio::add_signal_handler(loop, SIGUSR1, [&] { ++usr1; });
    corio::add_signal_handler(loop, SIGUSR2, [&] { ++usr2; });
    EXPECT_EQ(loop.io_waiter_count(), 1u) << "one signalfd for all signals";
    ::raise(SIGUSR1);
    ::raise(SIGUSR1); // merged with the first by the kernel
    ::raise(SIGUSR2);
    // A timer, not sleep(0): while tasks are ready the loop polls for I/O only now and then; with every
    // task asleep it polls before the (virtual) clock jumps.
    co_await corio::sleep(1s);
    co_await corio::sleep(1s);
    EXPECT_EQ(usr1, 1);
    EXPECT_EQ(usr2, 1);
    ::raise(SIGUSR1);
    co_await corio::sleep(1s);
    co_await corio::sleep(1s);
    EXPECT_EQ(usr1, 2);
    corio::remove_signal_handler(loop, SIGUSR1);
    corio::remove_signal_handler(loop, SIGUSR2);
  });
}

TEST(Signals, AddingAgainReplacesTheHandler) {
  blocked_signals guard{SIGUSR1};
  run_mock([]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    int first = 0, second = 0;
    corio::event got;
    corio::add_signal_handler(loop, SIGUSR1, [&] { ++first; });
    corio::add_signal_handler(loop, SIGUSR1, [&] {
      ++second;
      got.set();
    });
    ::raise(SIGUSR1);
    co_await got.wait();
    EXPECT_EQ(first, 0);
    EXPECT_EQ(second, 1);
    corio::remove_signal_handler(loop, SIGUSR1);
  });
}

TEST(Signals, AHandlerCanRemoveItself) {
  blocked_signals guard{SIGUSR1};
  run_mock([]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    corio::event got;
    int calls = 0;
    corio::add_signal_handler(loop, SIGUSR1, [&] {
      ++calls;
      EXPECT_TRUE(corio::remove_signal_handler(loop, SIGUSR1));
      got.set();
    });
    ::raise(SIGUSR1);
    co_await got.wait();
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(loop.io_waiter_count(), 0u);
  });
}

TEST(Signals, RemovalRestoresTheMask) {
  // SIGURG's default action is to ignore it, so unblocking it is harmless whatever happens.
  ASSERT_FALSE(blocked(SIGURG));
  corio::event_loop loop;
  corio::add_signal_handler(loop, SIGURG, [] {});
  EXPECT_TRUE(blocked(SIGURG));
  EXPECT_TRUE(corio::remove_signal_handler(loop, SIGURG));
  EXPECT_FALSE(blocked(SIGURG));
}

TEST(Signals, APendingSignalIsDiscardedOnRemoval) {
  // SIGUSR2 was not blocked: removal unblocks it, and must not let an instance that arrived while the
  // handler was installed through. A counting sigaction handler stands in for the default action.
  static volatile sig_atomic_t delivered = 0;
  struct sigaction count {
  }, old{};
  count.sa_handler = [](int) { delivered = delivered + 1; };
  ::sigaction(SIGUSR2, &count, &old);
  ASSERT_FALSE(blocked(SIGUSR2));
  {
    corio::event_loop loop;
    corio::add_signal_handler(loop, SIGUSR2, [] {});
    ::raise(SIGUSR2);
    EXPECT_TRUE(pending(SIGUSR2));
    corio::remove_signal_handler(loop, SIGUSR2);
  }
  EXPECT_FALSE(pending(SIGUSR2));
  EXPECT_FALSE(blocked(SIGUSR2));
  EXPECT_EQ(delivered, 0);
  ::sigaction(SIGUSR2, &old, nullptr);
}

TEST(Signals, ClosingTheLoopRemovesEveryHandler) {
  corio::testing::leak_check leaks; // the signalfd is closed
  ASSERT_FALSE(blocked(SIGURG));
  {
    corio::event_loop loop;
    corio::add_signal_handler(loop, SIGURG, [] {});
    EXPECT_TRUE(blocked(SIGURG));
    loop.close();
    EXPECT_FALSE(blocked(SIGURG));
    EXPECT_EQ(loop.io_waiter_count(), 0u);
    EXPECT_THROW(corio::add_signal_handler(loop, SIGURG, [] {}), corio::loop_error);
    EXPECT_FALSE(corio::remove_signal_handler(loop, SIGURG));
  }
  {
    corio::event_loop never_closed;
    corio::add_signal_handler(never_closed, SIGURG, [] {});
  } // its destructor removes the handler
  EXPECT_FALSE(blocked(SIGURG));
}

TEST(Signals, BadArgumentsAreRejected) {
  corio::event_loop loop;
  for (int bad : {0, -1, NSIG, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL})
    EXPECT_THROW(corio::add_signal_handler(loop, bad, [] {}), std::invalid_argument) << bad;
  try {
    corio::add_signal_handler(loop, SIGKILL, [] {});
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("SIGKILL"), std::string::npos) << e.what();
  }
  EXPECT_THROW(corio::add_signal_handler(loop, SIGUSR1, corio::detail::unique_function{}), std::invalid_argument);
  EXPECT_EQ(loop.io_waiter_count(), 0u);
  EXPECT_FALSE(corio::remove_signal_handler(loop, SIGUSR1));
}

// ---- corio::run() and Ctrl-C -------------------------------------------------------------------------

/// Waits "forever" (a real-time safety net: 30 s, raising timeout_error, not keyboard_interrupt).
task<> wait_forever() {
  corio::event never;
  auto deadline = corio::timeout(30s);
  co_await never.wait();
}

TEST(SignalsRun, CtrlCCancelsTheMainTaskAndRunRaisesKeyboardInterrupt) {
  corio::testing::leak_check leaks;
  blocked_signals guard{SIGINT};
  bool cancelled = false;
  auto body = [](bool* c) -> task<> {
    ::raise(SIGINT); // as if the user pressed Ctrl-C
    try {
      co_await wait_forever();
    } catch (const corio::timeout_error&) {
      throw;
    } catch (const corio::cancelled_error&) {
      *c = true;
      throw;
    }
  };
  EXPECT_THROW(corio::run(body(&cancelled)), corio::keyboard_interrupt);
  EXPECT_TRUE(cancelled);
  EXPECT_TRUE(blocked(SIGINT)) << "the mask is as it was before run()";
  EXPECT_FALSE(pending(SIGINT));
}

/// In a child process, so that a SIGINT getting the default action ends the child, not the test runner:
/// a thread started before run() (so SIGINT is not blocked there) sends SIGINT while main waits — to the
/// process (kill; the kernel picks a thread that does not block it), or to itself (raise: the case of a
/// process-directed SIGINT that lands on that thread). Returns what happened, as text.
std::string sigint_from_a_thread_started_before_run(bool to_the_process) {
  std::atomic<bool> main_waits{false};
  std::thread helper([&main_waits, to_the_process] {
    while (!main_waits.load()) // main sets it as soon as it runs
      std::this_thread::yield();
    if (to_the_process)
      ::kill(::getpid(), SIGINT);
    else
      ::raise(SIGINT);
  });
  std::string out;
  bool cancelled = false;
  try {
    corio::run([](std::atomic<bool>* waits, bool* c) -> task<> {
      waits->store(true);
      try {
        co_await wait_forever();
      } catch (const corio::timeout_error&) {
        throw;
      } catch (const corio::cancelled_error&) {
        *c = true;
        throw;
      }
    }(&main_waits, &cancelled));
    out = "run() returned";
  } catch (const corio::keyboard_interrupt&) {
    out = "keyboard_interrupt";
  } catch (const std::exception& e) {
    out = std::string("exception: ") + e.what();
  }
  helper.join();
  if (!cancelled)
    out += ", main not cancelled";
  return out;
}

/// Runs it in a child; what it returned, or how the child ended.
std::string in_child(bool to_the_process) {
  int out[2];
  if (::pipe(out) != 0)
    return "pipe failed";
  const pid_t pid = ::fork();
  if (pid < 0)
    return "fork failed";
  if (pid == 0) {
    ::close(out[0]);
    std::string what;
    try {
      what = sigint_from_a_thread_started_before_run(to_the_process);
    } catch (...) {
      what = "exception escaped";
    }
    [[maybe_unused]] auto n = ::write(out[1], what.data(), what.size());
    ::_exit(0);
  }
  ::close(out[1]);
  std::string what;
  char buf[256];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) != 0;)
    if (n > 0)
      what.append(buf, static_cast<std::size_t>(n));
    else if (errno != EINTR)
      break;
  ::close(out[0]);
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid)
    return "waitpid failed";
  if (WIFSIGNALED(status))
    return "the child was killed by signal " + std::to_string(WTERMSIG(status));
  return what;
}

// A thread that existed before run() did not inherit the SIGINT blocked for run()'s signalfd: a SIGINT
// sent to the process went to it, with the default action (the process ended, exit status 130).
TEST(SignalsRun, CtrlCSentToTheProcessWithAnotherThreadNotBlockingIt) {
  EXPECT_EQ(in_child(true), "keyboard_interrupt");
}

TEST(SignalsRun, CtrlCTakenByAnotherThread) { EXPECT_EQ(in_child(false), "keyboard_interrupt"); }

TEST(SignalsRun, KeyboardInterruptIsACancellation) {
  blocked_signals guard{SIGINT};
  try {
    corio::run([]() -> task<int> {
      ::raise(SIGINT);
      co_await wait_forever();
      co_return 1;
    }());
    ADD_FAILURE() << "no exception";
  } catch (const corio::cancelled_error& e) {
    EXPECT_NE(dynamic_cast<const corio::keyboard_interrupt*>(&e), nullptr);
    EXPECT_NE(std::string(e.what()).find("SIGINT"), std::string::npos) << e.what();
  }
}

TEST(SignalsRun, AMainTaskThatHandlesTheCancellationReturnsItsResult) {
  blocked_signals guard{SIGINT};
  int result = corio::run([]() -> task<int> {
    ::raise(SIGINT);
    bool interrupted = false;
    try {
      co_await wait_forever();
    } catch (const corio::cancelled_error&) {
      interrupted = true;
    }
    EXPECT_TRUE(interrupted);
    EXPECT_EQ(corio::uncancel(), 0);
    // The first Ctrl-C removed run()'s handler: a second one is left to the default action (here it
    // stays pending, as the test blocks SIGINT) and cancels nothing.
    ::raise(SIGINT);
    co_await corio::sleep(1ms); // every task asleep: the loop polls
    co_await corio::sleep(1ms);
    EXPECT_EQ(corio::cancelling(), 0);
    co_return 42;
  }());
  EXPECT_EQ(result, 42);
  EXPECT_TRUE(guard.take(SIGINT)) << "the second SIGINT was not consumed by corio";
}

TEST(SignalsRun, OtherExceptionsPassThrough) {
  blocked_signals guard{SIGINT};
  EXPECT_THROW(corio::run([]() -> task<> {
                 ::raise(SIGINT);
                 try {
                   co_await wait_forever();
                 } catch (const corio::cancelled_error&) {
                 }
                 throw std::runtime_error("cleanup failed");
               }()),
               std::runtime_error);
}

TEST(SignalsRun, NotInstalledWithAVirtualClock) {
  blocked_signals guard{SIGINT};
  run_mock([]() -> task<> {
    ::raise(SIGINT);
    co_await corio::sleep(1s);
    EXPECT_EQ(corio::event_loop::current()->io_waiter_count(), 0u);
  });
  EXPECT_TRUE(guard.take(SIGINT));
}

TEST(SignalsRun, NotInstalledWhenTheProgramHandlesSigint) {
  blocked_signals guard{SIGINT};
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGINT, &ignore, &old);
  corio::run([]() -> task<> {
    EXPECT_EQ(corio::event_loop::current()->io_waiter_count(), 0u);
    co_return;
  }());
  ::sigaction(SIGINT, &old, nullptr);
}

TEST(SignalsRun, InstalledOnlyWhileMainRuns) {
  blocked_signals guard{SIGINT};
  corio::run([]() -> task<> {
    EXPECT_EQ(corio::event_loop::current()->io_waiter_count(), 1u) << "run()'s SIGINT eventfd";
    co_return;
  }());
  EXPECT_TRUE(blocked(SIGINT));
}

} // namespace
