// corio::event: a flag tasks can wait for (asyncio.Event).
#pragma once

#include <coroutine>
#include <cstddef>

#include "corio/detail/wait_node.hpp"
#include "corio/sync/waiter.hpp"

namespace corio {

class event;

namespace detail {
/// `co_await ev.wait()`.
class [[nodiscard]] event_wait final : public sync_waiter {
public:
  explicit event_wait(event& e) noexcept : ev_(&e) {}
  inline bool await_ready();
  inline void await_suspend(std::coroutine_handle<> h) noexcept;
  void await_resume() const {
    if (cancelling())
      task->raise_cancel(); // nothing to pass on: set() wakes every waiter anyway
  }
  [[nodiscard]] const char* what() const noexcept override { return "event"; }

private:
  event* ev_;
};
} // namespace detail

/// A flag, initially clear (asyncio.Event). wait() returns at once while it is set; otherwise it waits
/// until set() is called. set() wakes every waiter, in arrival order: each of them returns, even if
/// clear() is called before it runs (it was set when they were woken). Waiting is cancellable
/// (cancelled_error; the waiter just leaves the queue). No allocation per wait. Single-threaded.
class event {
public:
  event() = default;
  event(const event&) = delete;
  event& operator=(const event&) = delete;
  ~event() = default;

  /// Sets the flag and wakes every waiting task.
  void set() {
    is_set_ = true;
    while (detail::wait_node* w = waiters_.front())
      static_cast<detail::sync_waiter*>(w)->grant();
  }
  /// Clears the flag: wait() waits again.
  void clear() noexcept { is_set_ = false; }
  [[nodiscard]] bool is_set() const noexcept { return is_set_; }
  /// `co_await ev.wait()`: returns once the flag is set.
  [[nodiscard]] detail::event_wait wait() noexcept { return detail::event_wait(*this); }
  /// The number of tasks waiting.
  [[nodiscard]] std::size_t waiting() const noexcept { return waiters_.size(); }

private:
  friend detail::event_wait;
  bool is_set_ = false;
  detail::wait_list waiters_; // non-empty only while clear
};

namespace detail {
bool event_wait::await_ready() {
  start("event.wait()");
  return ev_->is_set_;
}
void event_wait::await_suspend(std::coroutine_handle<> h) noexcept { suspend_on(ev_->waiters_, h); }
} // namespace detail

} // namespace corio
