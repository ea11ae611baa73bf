// add_reader / add_writer / remove_reader / remove_writer (asyncio's callback-style fd watching), on
// both backends: level-triggered calls, removal and replacement from inside the callback, exceptions,
// errors, and a loop that closes with watches left.
#include <corio/event_loop.hpp>
#include <corio/io.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/event.hpp>
#include <corio/timeout.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "leak_check.hpp"

using namespace std::chrono_literals;
using corio::task;

namespace {

struct nb_pipe {
  int r = -1, w = -1;
  nb_pipe() {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    r = p[0];
    w = p[1];
  }
  ~nb_pipe() {
    if (r >= 0)
      ::close(r);
    if (w >= 0)
      ::close(w);
  }
};

/// Waits for `e`, at most 10 s of real time (a bug fails the test instead of hanging it).
task<bool> wait_set(corio::event& e) {
  try {
    auto limit = corio::timeout(10s);
    co_await e.wait();
  } catch (const corio::timeout_error&) {
  }
  co_return e.is_set();
}

// A reader is called while data is there (level-triggered): reading one byte per call takes one call per
// byte; remove_reader stops it (true once, then false) and later data calls nothing.
TEST(FdWatch, ReaderIsCalledWhileDataIsThere) {
  corio::testing::leak_check leaks;
  corio::run([]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    nb_pipe p;
    std::string got;
    int calls = 0;
    corio::event done;
    corio::add_reader(loop, p.r, [&] {
      ++calls;
      char c;
      if (::read(p.r, &c, 1) == 1)
        got += c;
      if (got.size() == 5)
        done.set();
    });
    EXPECT_EQ(::write(p.w, "hello", 5), 5);
    EXPECT_TRUE(co_await wait_set(done));
    EXPECT_EQ(got, "hello");
    EXPECT_EQ(calls, 5);
    EXPECT_TRUE(corio::remove_reader(loop, p.r));
    EXPECT_FALSE(corio::remove_reader(loop, p.r));
    EXPECT_EQ(::write(p.w, "more", 4), 4);
    co_await corio::sleep(20ms);
    EXPECT_EQ(calls, 5) << "a removed reader was called";
  }());
}

// A writer fills a pipe while it is writable, removes itself once it wrote enough, and the bytes arrive.
TEST(FdWatch, WriterWritesWhileWritableAndRemovesItself) {
  corio::testing::leak_check leaks;
  corio::run([]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    nb_pipe p;
    const std::size_t total = 1 << 20;
    std::size_t written = 0, read_back = 0;
    corio::event done;
    corio::add_writer(loop, p.w, [&] {
      char chunk[4096];
      for (std::size_t i = 0; i < sizeof chunk; ++i)
        chunk[i] = static_cast<char>((written + i) % 251);
      const ssize_t n = ::write(p.w, chunk, std::min(sizeof chunk, total - written));
      if (n > 0)
        written += static_cast<std::size_t>(n);
      if (written == total) {
        EXPECT_TRUE(corio::remove_writer(loop, p.w));
      }
    });
    corio::add_reader(loop, p.r, [&] {
      char buf[8192];
      ssize_t n;
      while ((n = ::read(p.r, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; ++i)
          EXPECT_EQ(buf[i], static_cast<char>((read_back + static_cast<std::size_t>(i)) % 251));
        read_back += static_cast<std::size_t>(n);
      }
      if (read_back == total)
        done.set();
    });
    EXPECT_TRUE(co_await wait_set(done));
    EXPECT_EQ(written, total);
    EXPECT_EQ(read_back, total);
    EXPECT_TRUE(corio::remove_reader(loop, p.r));
    EXPECT_FALSE(corio::remove_writer(loop, p.w));
  }());
}

// Inside the callback: add_reader for the same fd replaces the function (the next call is the new one's),
// an exception goes to the loop's exception handler and the fd stays watched.
TEST(FdWatch, ReplacedAndThrowingCallbacks) {
  corio::testing::leak_check leaks;
  corio::run([]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    int reported = 0;
    loop.set_exception_handler([&](corio::event_loop&, const corio::exception_context& c) {
      ++reported;
      EXPECT_NE(c.message.find("callback"), std::string::npos) << c.message;
    });
    nb_pipe p;
    int first = 0, second = 0;
    corio::event done;
    auto drain_one = [&p] {
      char c;
      (void)::read(p.r, &c, 1);
    };
    corio::add_reader(loop, p.r, [&] {
      ++first;
      drain_one();
      corio::add_reader(loop, p.r, [&] {
        ++second;
        drain_one();
        if (second == 1)
          throw std::runtime_error("reader boom");
        done.set();
      });
    });
    EXPECT_EQ(::write(p.w, "abc", 3), 3);
    EXPECT_TRUE(co_await wait_set(done));
    EXPECT_EQ(first, 1);
    EXPECT_EQ(second, 2);
    EXPECT_EQ(reported, 1);
    EXPECT_TRUE(corio::remove_reader(loop, p.r));
    loop.set_exception_handler({});
  }());
}

// A callback that closes its own fd (without remove_reader): the watch cannot be armed again, which goes
// to the exception handler, its message without the "corio: " the default handler prints before it.
TEST(FdWatch, ACallbackThatClosesItsFdIsReported) {
  corio::testing::leak_check leaks;
  corio::run([]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    std::vector<std::string> reports;
    loop.set_exception_handler(
        [&](corio::event_loop&, const corio::exception_context& c) { reports.push_back(c.message); });
    nb_pipe p;
    const int fd = p.r;
    corio::add_reader(loop, p.r, [&p] {
      ::close(p.r);
      p.r = -1;
    });
    EXPECT_EQ(::write(p.w, "x", 1), 1);
    for (int i = 0; i < 1000 && reports.empty(); ++i)
      co_await corio::sleep(1ms);
    EXPECT_EQ(reports.size(), 1u);
    if (!reports.empty()) {
      EXPECT_EQ(reports[0], "fd " + std::to_string(fd) +
                                " can no longer be watched (closed before remove_reader / remove_writer?)");
    }
    (void)corio::remove_reader(loop, fd);
    loop.set_exception_handler({});
  }());
}

// The caller closed a watched fd without remove_reader and the number now names another pipe: adding a
// reader for it again registers the new file (the old registration is gone with the old file), so the
// new reader is called.
TEST(FdWatch, AddingAgainAfterTheFdNumberWasReused) {
  corio::testing::leak_check leaks;
  corio::run([]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    nb_pipe first;
    int old_calls = 0;
    corio::add_reader(loop, first.r, [&] { ++old_calls; });
    co_await corio::sleep(0s);
    nb_pipe second;
    EXPECT_EQ(::dup2(second.r, first.r), first.r); // closes the old read end: the number is reused
    corio::event done;
    std::string got;
    corio::add_reader(loop, first.r, [&] {
      char c;
      while (::read(first.r, &c, 1) == 1)
        got += c;
      if (got == "new")
        done.set();
    });
    EXPECT_EQ(::write(second.w, "new", 3), 3);
    EXPECT_TRUE(co_await wait_set(done)) << "the reader of the reused fd number was never called";
    EXPECT_EQ(old_calls, 0);
    EXPECT_TRUE(corio::remove_reader(loop, first.r));
  }());
}

// Errors: an empty callback, a negative fd, a closed fd, an fd a task awaits in that direction, a call
// from another thread while the loop runs; a closed loop.
TEST(FdWatch, ErrorsAreClear) {
  corio::testing::leak_check leaks;
  corio::run([]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    nb_pipe p;
    EXPECT_THROW(corio::add_reader(loop, p.r, {}), std::invalid_argument);
    EXPECT_THROW(corio::add_reader(loop, -1, [] {}), std::invalid_argument);
    const int closed = ::dup(p.r);
    ::close(closed);
    bool failed = false;
    try {
      corio::add_reader(loop, closed, [] {});
    } catch (const std::system_error& e) {
      failed = e.code().value() == EBADF;
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
    (void)corio::remove_reader(loop, closed); // io_uring reports a bad fd only when it polls
    EXPECT_TRUE(failed || loop.backend() != corio::backend_kind::epoll);
    auto waiting = corio::spawn([](int fd) -> task<> { co_await corio::readable(fd); }(p.r));
    co_await corio::sleep(0s); // it waits now
    EXPECT_THROW(corio::add_reader(loop, p.r, [] {}), corio::loop_error);
    EXPECT_FALSE(corio::remove_reader(loop, p.r));
    waiting.cancel();
    try {
      co_await waiting;
    } catch (const corio::cancelled_error&) {
    }
    bool wrong_thread = false;
    std::thread other([&] {
      try {
        corio::add_writer(loop, p.w, [] {});
      } catch (const corio::loop_error&) {
        wrong_thread = true;
      }
    });
    other.join();
    EXPECT_TRUE(wrong_thread);
  }());
  corio::event_loop closed_loop;
  closed_loop.close();
  nb_pipe p;
  EXPECT_THROW(corio::add_reader(closed_loop, p.r, [] {}), corio::loop_error);
  EXPECT_FALSE(corio::remove_reader(closed_loop, p.r));
}

// A loop that ends with readers and writers still added removes them (no leak, no call after the end),
// and a later loop can watch the same fds.
TEST(FdWatch, ClosingTheLoopRemovesTheWatches) {
  corio::testing::leak_check leaks;
  nb_pipe p;
  int calls = 0;
  corio::run([&]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    corio::add_reader(loop, p.r, [&] { ++calls; }); // never drained: level-triggered, called every turn
    corio::add_writer(loop, p.w, [&] { ++calls; });
    EXPECT_EQ(::write(p.w, "x", 1), 1);
    co_await corio::sleep(5ms);
  }());
  EXPECT_GT(calls, 0);
  corio::run([&]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    corio::event done;
    corio::add_reader(loop, p.r, [&] { done.set(); });
    EXPECT_TRUE(co_await wait_set(done));
    EXPECT_TRUE(corio::remove_reader(loop, p.r));
  }());
}

} // namespace
