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
/// From suspension until it runs again it is also a member of its condition (a second intrusive list,
/// as the node's own links belong to the condition's or the lock's queue), so that a condition
/// destroyed first can tell it: c_ becomes null, and the waiter never touches the condition again.
class [[nodiscard]] condition_wait final : public sync_waiter {
public:
  explicit condition_wait(condition& c) noexcept : c_(&c) {}
  inline ~condition_wait();
  inline bool await_ready();
  inline void await_suspend(std::coroutine_handle<> h);
  inline void await_resume();
  inline bool on_cancel() noexcept override;
  [[nodiscard]] const char* what() const noexcept override { return "condition"; }

private:
  friend condition;
  inline void join() noexcept;
  inline void leave() noexcept;
  condition* c_; // null once the condition is destroyed
  condition_wait* prev_member_ = nullptr;
  condition_wait* next_member_ = nullptr;
  bool member_ = false;
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
/// Destroyed while tasks wait: they keep waiting and can still be cancelled. One still queued on the
/// condition, or whose lock is destroyed too (its own lock always is), raises cancelled_error without
/// the lock (a lock_guard it holds on a destroyed lock must not outlive it either); one queued for a
/// shared lock that is still alive raises once it holds that lock. Nothing is passed on to the dead
/// condition.
class condition {
public:
  condition() noexcept : lk_(&own_) {}
  /// A condition on `lk` (which must outlive it).
  explicit condition(lock& lk) noexcept : lk_(&lk) {}
  condition(const condition&) = delete;
  condition& operator=(const condition&) = delete;
  /// Tells the tasks still waiting that it is gone (see the class comment).
  ~condition() {
    for (detail::condition_wait* w = members_; w != nullptr; w = w->next_member_) {
      w->c_ = nullptr;
      w->member_ = false;
    }
  }

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
  detail::condition_wait* members_ = nullptr; // every suspended wait() on it, in any phase
};

namespace detail {
bool condition_wait::await_ready() {
  start("condition.wait()");
  if (!c_->locked() || !c_->lk_->handed_.empty()) // unlocked, or another task's (woken, not run yet)
    throw invalid_state_error("corio: condition.wait() without holding its lock");
  return false;
}
condition_wait::~condition_wait() {
  if (member_) // a frame destroyed while suspended (loop teardown)
    leave();
}
void condition_wait::join() noexcept {
  next_member_ = c_->members_;
  if (next_member_ != nullptr)
    next_member_->prev_member_ = this;
  c_->members_ = this;
  member_ = true;
}
void condition_wait::leave() noexcept {
  (prev_member_ != nullptr ? prev_member_->next_member_ : c_->members_) = next_member_;
  if (next_member_ != nullptr)
    next_member_->prev_member_ = prev_member_;
  prev_member_ = next_member_ = nullptr;
  member_ = false;
}
void condition_wait::await_suspend(std::coroutine_handle<> h) {
  c_->lk_->release();
  suspend_on(c_->waiters_, h);
  join();
}
void condition_wait::await_resume() {
  // Resumed once it holds the lock again (granted by the lock, which keeps it in its list of woken
  // waiters until now), or, cancelled, once the condition's or the lock's queue it was in is gone.
  if (member_)
    leave();
  const bool holds_lock = linked; // granted by a lock that is still alive
  detach();
  if (cancelling()) {
    if (notified_ && holds_lock && c_ != nullptr)
      c_->notify(1); // we hold the lock: pass the notification on
    task->raise_cancel();
  }
}
bool condition_wait::on_cancel() noexcept {
  if (!linked) // the queue it was in died with its condition or lock: raise now, without the lock
    return true;
  // Not notified yet: leave the condition and queue for the lock. Raise only once it is held again.
  if (c_ != nullptr && list_ == &c_->waiters_) {
    c_->waiters_.remove(this);
    c_->lk_->take_or_enqueue(*this);
  }
  return false;
}
} // namespace detail

} // namespace corio
