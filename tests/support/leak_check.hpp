// Asserts that a test leaves nothing behind: coroutine frames, file descriptors.
#pragma once

#include <dirent.h>

#include <gtest/gtest.h>

#include <corio/detail/frame_pool.hpp>
#include <corio/event_loop.hpp>

namespace corio::testing {

inline int open_fd_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr)
      ++n;
    ::closedir(d);
  }
  return n;
}

/// Construct at the start of a test; the destructor checks every frame and fd made since is gone.
class leak_check {
public:
  leak_check() : frames_(detail::frame_balance()), fds_(open_fd_count()) {}
  leak_check(const leak_check&) = delete;
  ~leak_check() {
    EXPECT_EQ(detail::frame_balance(), frames_) << "coroutine frames leaked";
    EXPECT_EQ(open_fd_count(), fds_) << "file descriptors leaked";
  }

private:
  long frames_;
  int fds_;
};

/// Asserts a loop is idle: no task, no timer, no fd waiter left.
inline void expect_idle(const event_loop& loop) {
  EXPECT_EQ(loop.task_count(), 0u) << "tasks left";
  EXPECT_EQ(loop.timer_count(), 0u) << "timers left";
  EXPECT_EQ(loop.io_waiter_count(), 0u) << "fd waiters left";
}

} // namespace corio::testing
