// Helpers for the networking tests: loop cleanliness inside a task, unique Unix socket paths, unread bytes.
#pragma once

#include <sys/ioctl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include <corio/event_loop.hpp>

namespace corio::testing {

/// Inside the main task at its end: nothing but the main task is left, and no timer or fd waiter.
inline void expect_only_main_task() {
  event_loop& loop = *event_loop::current();
  EXPECT_EQ(loop.task_count(), 1u) << "tasks left";
  EXPECT_EQ(loop.timer_count(), 0u) << "timers left";
  EXPECT_EQ(loop.io_waiter_count(), 0u) << "fd waiters left";
}

/// A Unix socket path no other test (or test process) uses.
inline std::string unique_socket_path(const char* tag) {
  static std::atomic<int> n{0};
  return "/tmp/corio-" + std::to_string(::getpid()) + "-" + tag + "-" + std::to_string(n++) + ".sock";
}

/// Bytes the kernel holds for `fd`, received and not read yet.
inline int unread_bytes(int fd) {
  int n = -1;
  EXPECT_EQ(::ioctl(fd, FIONREAD, &n), 0);
  return n;
}

} // namespace corio::testing
