// Loop B on a thread of its own, with one task there that waits until finish(): what the cross-loop tests
// hand to a combinator awaited on loop A (the test's thread). A watchdog aborts a test that hangs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include <corio/detail/frame_pool.hpp>
#include <corio/event_loop.hpp>
#include <corio/future.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>
#include <corio/thread_future.hpp>

#include <gtest/gtest.h>

namespace corio::testing {

/// Aborts the process if it is still alive after `limit`: a hang fails instead of blocking CI (a
/// combinator waiting on loop A for a task of loop B would never return).
class hang_watchdog {
public:
  explicit hang_watchdog(const char* what, std::chrono::seconds limit = std::chrono::seconds(20))
      : thread_([this, what, limit] {
          std::unique_lock lock(mutex_);
          if (!cv_.wait_for(lock, limit, [this] { return disarmed_; })) {
            std::fprintf(stderr, "%s hung for %lld s: aborting\n", what, static_cast<long long>(limit.count()));
            std::abort();
          }
        }) {}
  hang_watchdog(const hang_watchdog&) = delete;
  hang_watchdog& operator=(const hang_watchdog&) = delete;
  ~hang_watchdog() {
    {
      std::lock_guard lock(mutex_);
      disarmed_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  std::thread thread_; // last: starts once the rest is ready
};

/// Loop B, running on its own thread from construction to the destructor, with one task that waits for
/// finish(v) and then returns v. pending() is its join_handle, for this thread: while the task waits, B's
/// thread touches neither it nor its state (the handle may be copied here); finish() and the destructor
/// hand over to B's thread and back (thread_future::get()). Drop every copy of pending() before the
/// destructor runs (the task's state must be freed on B's thread).
class other_loop {
public:
  other_loop()
      : thread_([this] {
          const long frames = detail::frame_balance();
          loop_.run_forever();
          loop_.shutdown_tasks();
          loop_.close();
          EXPECT_EQ(detail::frame_balance(), frames) << "coroutine frames leaked on loop B";
        }) {
    handle_ = run_coroutine_threadsafe(loop_, [this] {
                release_ = future<int>(); // made, set and awaited on B's thread only
                own_ = spawn(loop_, wait_for_release(release_));
                return own_;
              }).get();
  }
  other_loop(const other_loop&) = delete;
  other_loop& operator=(const other_loop&) = delete;
  ~other_loop() {
    if (!finished_)
      finish(0);
    handle_ = {}; // the task's state is B's (in its thread's frame pool): the last reference goes there
    loop_.call_soon_threadsafe([this] {
      own_ = {};
      loop_.stop();
    });
    thread_.join();
  }

  /// The waiting task's handle (a task of loop B, not done until finish()).
  [[nodiscard]] join_handle<int> pending() const { return handle_; }
  /// Lets the task return v and waits until it is done: then its handle is that of a done task of B.
  void finish(int v) {
    finished_ = true;
    run_coroutine_threadsafe(loop_, [this, v] {
      release_.set_result(v);
      return join(own_);
    }).get();
  }

private:
  static task<int> wait_for_release(future<int> f) { co_return co_await f; }
  static task<int> join(join_handle<int> h) { co_return co_await h; }

  event_loop loop_;
  future<int> release_;
  join_handle<int> handle_; // this thread's
  join_handle<int> own_;    // B's, copied on B's thread only (while this thread waits in get())
  bool finished_ = false;
  std::thread thread_; // last: starts once the rest is ready
};

/// Runs `attempt` as a task of the running loop (A, with a mock clock) and gives its result, or "still
/// waiting" if it has not finished after `limit` of loop time. A task still waiting is left to A's
/// destructor, which destroys it where it waits: cancelling it could reach B's task from this thread.
inline task<std::string> at_most(task<std::string> attempt, std::chrono::seconds limit = std::chrono::seconds(60)) {
  join_handle<std::string> h = spawn(std::move(attempt));
  co_await sleep(limit);
  if (!h.done())
    co_return "still waiting";
  co_return co_await h;
}

} // namespace corio::testing
