// corio::condition: wait until notified, on a lock (asyncio.Condition).
#pragma once

#include <coroutine>
#include <cstddef>
#include <limits>

#include "corio/detail/wait_node.hpp"
#include "corio/errors.hpp"
#include "corio/sync/lock.hpp"
#include "corio/sync/waiter.hpp"
#include "corio/task.hpp"

namespace corio {

namespace detail {
/// `co_await cv.wait()`. Two phases, one node: first queued on the condition; once notified (or
/// cancelled) moved, without running, to the lock's queue, and woken only when it holds the lock.
class [[nodiscard]] condition_wait final : public sync_waiter {
public:
  explicit condition_wait(condition& c) noexcept : c_(&c) {}
  inline bool await_ready();
  inline void await_suspend(std::coroutine_handle<> h);
  inline void await_resume();
  inline bool on_cancel() noexcept override;
  [[nodiscard]] const char* what() const noexcept override { return "condition"; }

private:
  friend condition;
  condition* c_;
  bool notified_ = false;
};
} // namespace detail

/// A condition variable on a lock (asyncio.Condition): tasks holding the lock wait() until another
/// task notifies them. Own lock by default, or share one: `condition cv(lk)`.
///
///     auto g = co_await cv.scoped();
///     auto ready = [&] { return !items.empty(); }; // named: no lambda in a co_await expression
///     co_await cv.wait_for(ready);                 // (g++ 12 hazard, see HAZARDS.md §2)
///
/// wait(): releases the lock, waits for notify(), and returns (or raises) holding the lock again —
/// always, also when cancelled, so the caller's guard stays right. Notified waiters then queue for the
/// lock behind its current waiters, in notification order.
/// Fairness: notify(n) wakes the n longest-waiting tasks.
/// Cancellation: a waiter cancelled before it was notified re-acquires the lock and raises
/// cancelled_error; one cancelled after it was notified first passes the notification on (notify(1)),
/// so no notification is swallowed. Spurious wake-ups do not happen, but use wait_for() anyway when
/// several waiters compete for a state. No allocation per wait() (wait_for() runs in a task frame
/// from corio's frame pool). Single-threaded.
class condition {
public:
  condition() noexcept : lk_(&own_) {}
  /// A condition on `lk` (which must outlive it).
  explicit condition(lock& lk) noexcept : lk_(&lk) {}
  condition(const condition&) = delete;
  condition& operator=(const condition&) = delete;
  ~condition() = default;

  // The lock's operations.
  [[nodiscard]] auto acquire() noexcept { return lk_->acquire(); }
  [[nodiscard]] auto scoped() noexcept { return lk_->scoped(); }
  [[nodiscard]] bool try_acquire() noexcept { return lk_->try_acquire(); }
  void release() { lk_->release(); }
  [[nodiscard]] bool locked() const noexcept { return lk_->locked(); }
  [[nodiscard]] lock& underlying_lock() noexcept { return *lk_; }

  /// `co_await cv.wait()`: see the class comment. invalid_state_error if the lock is not held.
  [[nodiscard]] detail::condition_wait wait() noexcept { return detail::condition_wait(*this); }
  /// Waits until pred() is true (checked first, then after each notification), holding the lock.
  /// Pass a named predicate: it is copied into the coroutine frame.
  template <class Predicate> task<void> wait_for(Predicate pred) {
    while (!pred())
      co_await wait();
  }
  /// Wakes up to n waiting tasks, longest-waiting first. invalid_state_error if the lock is not held.
  void notify(std::size_t n = 1) {
    if (!lk_->locked())
      throw invalid_state_error("corio: condition.notify() without holding its lock");
    for (; n > 0 && !waiters_.empty(); --n) {
      auto* w = static_cast<detail::condition_wait*>(waiters_.front());
      waiters_.remove(w);
      w->notified_ = true;
      lk_->take_or_enqueue(*w); // the lock is held: w queues for it
    }
  }
  void notify_all() { notify(std::numeric_limits<std::size_t>::max()); }
  /// The number of tasks waiting to be notified.
  [[nodiscard]] std::size_t waiting() const noexcept { return waiters_.size(); }

private:
  friend detail::condition_wait;
  lock own_;
  lock* lk_;
  detail::wait_list waiters_;
};

namespace detail {
bool condition_wait::await_ready() {
  start("condition.wait()");
  if (!c_->locked())
    throw invalid_state_error("corio: condition.wait() without holding its lock");
  return false;
}
void condition_wait::await_suspend(std::coroutine_handle<> h) {
  c_->lk_->release();
  suspend_on(c_->waiters_, h);
}
void condition_wait::await_resume() {
  // Resumed only once it holds the lock again (granted by the lock).
  if (cancelling()) {
    if (notified_)
      c_->notify(1); // we hold the lock: pass the notification on
    task->raise_cancel();
  }
}
bool condition_wait::on_cancel() noexcept {
  // Not notified yet: leave the condition and queue for the lock. Raise only once it is held again.
  if (linked && list_ == &c_->waiters_) {
    c_->waiters_.remove(this);
    c_->lk_->take_or_enqueue(*this);
  }
  return false;
}
} // namespace detail

} // namespace corio
