// corio::readable / writable: waiting for file descriptors, and bad ones.
#include <corio/io.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/testing/mock_clock.hpp>
#include <corio/timeout.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>
#include <system_error>

#include "leak_check.hpp"
#include "loop_fixture.hpp"

using namespace std::chrono_literals;
using corio::task;

namespace {

struct socket_pair {
  int fd[2];
  socket_pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd), 0); }
  ~socket_pair() {
    ::close(fd[0]);
    ::close(fd[1]);
  }
};

TEST(Io, ReadableWhenDataArrives) {
  corio::testing::leak_check leaks;
  auto body = []() -> task<std::string> {
    socket_pair sp;
    auto writer = corio::spawn([](int fd) -> task<> {
      co_await corio::sleep(10ms);
      EXPECT_EQ(::write(fd, "ping", 4), 4);
    }(sp.fd[1]));
    char buf[16];
    EXPECT_EQ(::read(sp.fd[0], buf, sizeof buf), -1); // nothing yet
    EXPECT_EQ(errno, EAGAIN);
    co_await corio::readable(sp.fd[0]);
    auto n = ::read(sp.fd[0], buf, sizeof buf);
    co_await writer;
    co_return std::string(buf, static_cast<std::size_t>(n));
  };
  EXPECT_EQ(corio::run(body()), "ping");
}

TEST(Io, RepeatedWaitsOnTheSameFd) {
  auto body = []() -> task<int> {
    socket_pair sp;
    auto writer = corio::spawn([](int fd) -> task<> {
      for (int i = 0; i < 100; ++i) {
        co_await corio::writable(fd);
        EXPECT_EQ(::write(fd, "x", 1), 1);
        co_await corio::sleep(0s);
      }
      ::shutdown(fd, SHUT_WR);
    }(sp.fd[1]));
    int total = 0;
    while (true) {
      co_await corio::readable(sp.fd[0]);
      char buf[64];
      auto n = ::read(sp.fd[0], buf, sizeof buf);
      if (n == 0)
        break; // EOF makes the fd readable too
      if (n > 0)
        total += static_cast<int>(n);
    }
    co_await writer;
    co_return total;
  };
  EXPECT_EQ(corio::run(body()), 100);
}

TEST(Io, BadFdsGiveClearErrors) {
  auto body = []() -> task<> {
    try {
      co_await corio::readable(-1);
      ADD_FAILURE();
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
      EXPECT_NE(std::string(e.what()).find("fd -1"), std::string::npos) << e.what();
    }
    try {
      co_await corio::readable(987654); // not open
      ADD_FAILURE();
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
    }
    int file = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC); // a regular file: epoll refuses it
    try {
      co_await corio::readable(file);
      ADD_FAILURE();
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EPERM);
    }
    ::close(file);
  };
  corio::run(body());
}

/// Resident memory of this process, in bytes (/proc/self/statm).
long resident_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2)
      resident = 0;
    std::fclose(f);
  }
  return resident * ::sysconf(_SC_PAGESIZE);
}

// The epoll backend sized its fd table to fd + 1 before asking the kernel: readable(10'000'000) kept
// 232 MiB for the loop's life, readable(1 << 30) raised bad_alloc. Now a huge bad fd is EBADF at no cost.
TEST(Io, AHugeBadFdNumberIsEbadfAndCostsNoMemory) {
  auto body = []() -> task<> {
    const long before = resident_bytes();
    for (int fd : {10'000'000, 1 << 30, INT32_MAX}) {
      try {
        co_await corio::readable(fd);
        ADD_FAILURE();
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EBADF);
        EXPECT_NE(std::string(e.what()).find("fd " + std::to_string(fd)), std::string::npos) << e.what();
      }
    }
    EXPECT_LT(resident_bytes() - before, 64L << 20) << "the loop grew its fd table for a bad fd";
  };
  corio::run(body());
}

TEST(Io, SecondReaderOnTheSameFdIsAnError) {
  auto body = []() -> task<> {
    socket_pair sp;
    auto first = corio::spawn([](int fd) -> task<> { co_await corio::readable(fd); }(sp.fd[0]));
    co_await corio::sleep(0s);
    EXPECT_THROW(co_await corio::readable(sp.fd[0]), corio::loop_error);
    first.cancel();
    EXPECT_THROW(co_await first, corio::cancelled_error);
    // The cancelled reader gave the fd back: waiting on it works again.
    EXPECT_EQ(::write(sp.fd[1], "z", 1), 1);
    co_await corio::readable(sp.fd[0]);
  };
  corio::run(body());
}

TEST(Io, CancelledWaitLeavesNoWaiter) {
  corio::testing::leak_check leaks;
  corio::testing::mock_clock clock;
  auto body = []() -> task<> {
    socket_pair sp;
    auto reader = corio::spawn([](int fd) -> task<> { co_await corio::readable(fd); }(sp.fd[0]));
    co_await corio::sleep(1s);
    EXPECT_EQ(corio::event_loop::current()->io_waiter_count(), 1u);
    reader.cancel();
    EXPECT_THROW(co_await reader, corio::cancelled_error);
    EXPECT_EQ(corio::event_loop::current()->io_waiter_count(), 0u);
  };
  corio::run(body(), {.clock = &clock});
}

TEST(Io, ClosedAndReusedFdNumberWorks) {
  auto body = []() -> task<> {
    for (int round = 0; round < 3; ++round) {
      socket_pair sp; // likely the same numbers every round
      EXPECT_EQ(::write(sp.fd[1], "a", 1), 1);
      co_await corio::readable(sp.fd[0]);
      co_await corio::writable(sp.fd[0]);
    }
  };
  corio::run(body());
}

// The epoll backend caches what it registered per fd number; an fd closed after a delivered wait and a
// new one with the same number used to skip the epoll_ctl and wait forever. forget_fd() drops the cache.
TEST(Io, ForgetFdLetsAReusedNumberBeWatched) {
  corio::testing::leak_check leaks;
  corio::testing::mock_clock clock;
  auto body = []() -> task<> {
    auto& loop = *corio::event_loop::current();
    int first_number = -1;
    for (int round = 0; round < 3; ++round) {
      int fd[2];
      EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd), 0);
      if (round == 0)
        first_number = fd[0];
      EXPECT_EQ(fd[0], first_number); // the same number every round, or the test proves nothing
      auto writer = corio::spawn([](int w) -> task<> {
        co_await corio::sleep(10ms);
        EXPECT_EQ(::write(w, "a", 1), 1);
      }(fd[1]));
      co_await corio::readable(fd[0]); // interest stays registered after this delivery
      char c;
      EXPECT_EQ(::read(fd[0], &c, 1), 1);
      co_await writer;
      loop.forget_fd(fd[0]);
      ::close(fd[0]);
      ::close(fd[1]);
    }
  };
  corio::run(body(), {.clock = &clock});
}

// A user's readable(fd) promises nothing about forget_fd(): closing the fd and reusing its number must
// still be watched correctly (each such wait re-registers with the kernel).
TEST(Io, ARawFdClosedWithoutForgetFdAndReusedIsWatched) {
  corio::testing::leak_check leaks;
  corio::testing::mock_clock clock;
  auto body = []() -> task<> {
    auto deadline = corio::timeout(1min); // a lost wake-up fails here (the mock clock jumps) instead of hanging
    int first_number = -1;
    for (int round = 0; round < 3; ++round) {
      int fd[2];
      EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd), 0);
      if (round == 0)
        first_number = fd[0];
      EXPECT_EQ(fd[0], first_number); // the same number every round, or the test proves nothing
      auto writer = corio::spawn([](int w) -> task<> {
        co_await corio::sleep(10ms);
        EXPECT_EQ(::write(w, "a", 1), 1);
      }(fd[1]));
      co_await corio::readable(fd[0]); // a kept registration would stay after this delivery
      char c;
      EXPECT_EQ(::read(fd[0], &c, 1), 1);
      co_await writer;
      ::close(fd[0]); // no forget_fd()
      ::close(fd[1]);
    }
  };
  corio::run(body(), {.clock = &clock});
}

// A kept wait (corio::socket's) on a number last used by a raw wait must not trust the stale cache.
TEST(Io, AKeptWaitAfterARawOneOnAReusedNumberIsWatched) {
  corio::testing::leak_check leaks;
  corio::testing::mock_clock clock;
  auto body = []() -> task<> {
    auto deadline = corio::timeout(1min);
    int fd[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd), 0);
    const int number = fd[0];
    EXPECT_EQ(::write(fd[1], "a", 1), 1);
    co_await corio::readable(fd[0]);
    ::close(fd[0]);
    ::close(fd[1]);
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd), 0);
    EXPECT_EQ(fd[0], number);
    auto writer = corio::spawn([](int w) -> task<> {
      co_await corio::sleep(10ms);
      EXPECT_EQ(::write(w, "b", 1), 1);
    }(fd[1]));
    co_await corio::detail::readable_kept(fd[0]);
    co_await corio::detail::readable_kept(fd[0]); // the cached registration, now trusted
    co_await writer;
    corio::event_loop::current()->forget_fd(fd[0]);
    ::close(fd[0]);
    ::close(fd[1]);
  };
  corio::run(body(), {.clock = &clock});
}

// The mock clock jumps to the next timer only when nothing is ready, and I/O the kernel already holds is
// ready: a timeout must not beat a socket that is readable now.
TEST(Io, TheMockClockDoesNotJumpPastReadyIo) {
  corio::testing::mock_clock clock;
  auto body = []() -> task<> {
    socket_pair sp;
    auto& loop = *corio::event_loop::current();
    const auto start = loop.time();
    EXPECT_EQ(::write(sp.fd[1], "x", 1), 1);
    auto deadline = corio::timeout(1s);
    auto far_timer = corio::spawn([]() -> task<> { co_await corio::sleep(10s); }());
    co_await corio::readable(sp.fd[0]);
    EXPECT_EQ(loop.time(), start) << "virtual time moved although the socket was readable";
    far_timer.cancel();
    co_await corio::testing::was_cancelled(far_timer);
    loop.forget_fd(sp.fd[0]);
  };
  corio::run(body(), {.clock = &clock});
}

TEST(Io, ForgetFdWakesItsWaiters) {
  corio::testing::mock_clock clock;
  auto body = []() -> task<> {
    socket_pair sp;
    bool woke = false;
    auto reader = corio::spawn([](int fd, bool* w) -> task<> {
      co_await corio::readable(fd);
      *w = true;
    }(sp.fd[0], &woke));
    co_await corio::sleep(1s);
    EXPECT_FALSE(woke);
    corio::event_loop::current()->forget_fd(sp.fd[0]);
    EXPECT_EQ(corio::event_loop::current()->io_waiter_count(), 0u);
    co_await reader;
    EXPECT_TRUE(woke);
  };
  corio::run(body(), {.clock = &clock});
}

} // namespace
