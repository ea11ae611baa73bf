// corio::sleep: suspend the running task for a while (asyncio.sleep).
#pragma once

#include <coroutine>

#include "corio/clock.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/event_loop.hpp"
#include "corio/this_task.hpp"

namespace corio {

namespace detail {
class sleep_awaiter final : public wait_node {
public:
  /// Sleeps for `d` from the moment it is awaited, or until `when` if `absolute`.
  sleep_awaiter(duration d, time_point when, bool absolute) noexcept
      : when_(absolute ? when : time_point{} + d), absolute_(absolute) {}
  sleep_awaiter(const sleep_awaiter&) = delete;
  ~sleep_awaiter() { detach(); }

  bool await_ready() {
    loop_ = &await_point("sleep()");
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) {
    handle = h;
    task = loop_->current_task();
    if (!absolute_ && when_.time_since_epoch() <= duration::zero()) {
      loop_->schedule(h, task); // sleep(0): yield to the loop once; no timer, no clock read
      return;
    }
    const time_point now = loop_->time();
    if (!absolute_)
      when_ = now + when_.time_since_epoch(); // the delay becomes a deadline
    if (when_ <= now) {
      loop_->schedule(h, task); // already due
      return;
    }
    timer_ = loop_->add_timer(when_, this);
    event_loop::begin_wait(this);
  }
  void await_resume() {
    timer_ = {}; // fired, or cancelled by detach()
    if (task != nullptr)
      task->check_cancel();
  }
  void detach() noexcept override {
    timer_.cancel(); // no-op once fired: the handle knows its node was recycled
  }
  [[nodiscard]] const char* what() const noexcept override { return "sleep"; }

private:
  // 64 bytes, in the frame of every sleeping task: a million sleeping tasks is a million of these.
  time_point when_; // relative sleeps keep their delay here (since the epoch) until awaited
  event_loop* loop_ = nullptr;
  timer_handle timer_; // pending while the timer is
  bool absolute_;
};
} // namespace detail

/// Suspends the running task for `d` of loop time. `sleep(0)` (or any d <= 0) yields to the loop once:
/// everything else ready runs before the task continues. Cancellable; raises cancelled_error then.
[[nodiscard]] inline detail::sleep_awaiter sleep(duration d) noexcept {
  return detail::sleep_awaiter(d, time_point{}, false);
}
template <class Rep, class Period>
[[nodiscard]] detail::sleep_awaiter sleep(std::chrono::duration<Rep, Period> d) noexcept {
  return sleep(std::chrono::duration_cast<duration>(d));
}

/// Suspends the running task until loop time `when`.
[[nodiscard]] inline detail::sleep_awaiter sleep_until(time_point when) noexcept {
  return detail::sleep_awaiter(duration::zero(), when, true);
}

} // namespace corio
