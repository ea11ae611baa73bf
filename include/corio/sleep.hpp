// corio::sleep: suspend the running task for a while (asyncio.sleep).
#pragma once

#include <coroutine>

#include "corio/clock.hpp"
#include "corio/detail/timer_slot.hpp"
#include "corio/event_loop.hpp"
#include "corio/this_task.hpp"

namespace corio {

namespace detail {
/// Sleeps for a delay from the moment it is awaited (Absolute = false: `when_` holds the delay since the
/// epoch until then), or until a deadline (Absolute = true).
template <bool Absolute> class sleep_awaiter final : public timed_wait {
public:
  explicit sleep_awaiter(time_point when) noexcept : when_(when) {}
  sleep_awaiter(const sleep_awaiter&) = delete;
  ~sleep_awaiter() { detach(); }

  bool await_ready() {
    loop_ = &await_point("sleep()");
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) {
    handle = h;
    task = loop_->current_task();
    if (!Absolute && when_.time_since_epoch() <= duration::zero()) {
      loop_->schedule(h, task); // sleep(0): yield to the loop once; no timer, no clock read
      return;
    }
    const time_point now = loop_->time();
    if (!Absolute)
      when_ = saturating_add(now, when_.time_since_epoch()); // the delay becomes a deadline (max: never)
    if (when_ <= now) {
      loop_->schedule(h, task); // already due
      return;
    }
    loop_->add_timer(when_, this);
    event_loop::begin_wait(this);
  }
  void await_resume() const {
    if (task != nullptr)
      task->check_cancel();
  }
  void detach() noexcept override {
    if (scheduled()) // not once fired; loop_ is set whenever the timer was
      loop_->remove_timer(this);
  }
  [[nodiscard]] const char* what() const noexcept override { return "sleep"; }

private:
  // 48 bytes with the timer in it, in the frame of every sleeping task: a million sleeping tasks is a
  // million of these, and nothing else per sleep.
  time_point when_;
  event_loop* loop_ = nullptr;
};
} // namespace detail

/// Suspends the running task for `d` of loop time. `sleep(0)` (or any d <= 0) yields to the loop once:
/// everything else ready runs before the task continues. A delay past the end of loop time
/// (duration::max(), hours::max()) sleeps until cancelled. Cancellable; raises cancelled_error then.
[[nodiscard]] inline detail::sleep_awaiter<false> sleep(duration d) noexcept {
  return detail::sleep_awaiter<false>(time_point{} + d);
}
/// Any other duration type, clamped to corio::duration's range; a NaN raises std::invalid_argument.
template <class Rep, class Period>
[[nodiscard]] detail::sleep_awaiter<false> sleep(std::chrono::duration<Rep, Period> d) {
  return sleep(detail::saturating_cast(d));
}

/// Suspends the running task until loop time `when`.
[[nodiscard]] inline detail::sleep_awaiter<true> sleep_until(time_point when) noexcept {
  return detail::sleep_awaiter<true>(when);
}

} // namespace corio
