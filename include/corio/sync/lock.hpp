// corio::lock: mutual exclusion between tasks of one loop (asyncio.Lock).
#pragma once

#include <cstddef>

#include "corio/detail/wait_node.hpp"
#include "corio/errors.hpp"
#include "corio/sync/waiter.hpp"

namespace corio {

class condition;
namespace detail {
class condition_wait;
}

/// A non-reentrant lock for tasks on one event loop (asyncio.Lock). Not thread-safe: like everything
/// on a loop, use it from that loop's tasks only.
///
///     auto g = co_await lk.scoped(); // held until g is destroyed (or g.unlock())
///     co_await lk.acquire(); ... lk.release();
///
/// Fairness: waiters are served strictly in arrival order. release() hands the lock directly to the
/// first waiter (the lock stays locked, owned by that waiter from then on), so a task that calls
/// acquire() in between queues behind it instead of barging in.
/// Invariant: unlocked ⇒ nobody waits.
/// Cancellation: a waiter cancelled while queued leaves the queue; one cancelled after the lock was
/// handed to it (woken but not yet run) hands it on to the next waiter, or unlocks, and then raises
/// cancelled_error. acquire() never returns to a cancelled task, and never loses a release().
/// No allocation: each waiter is a node in the waiting coroutine's frame.
class lock {
public:
  lock() = default;
  lock(const lock&) = delete;
  lock& operator=(const lock&) = delete;
  /// Tasks still waiting (only possible at loop teardown) are unlinked.
  ~lock() = default;

  /// `co_await lk.acquire()`: waits until the lock is this task's. Raises cancelled_error if the task
  /// is cancelled first (the lock is then not held).
  [[nodiscard]] detail::acquire_awaiter<lock, false> acquire() noexcept {
    return detail::acquire_awaiter<lock, false>(*this);
  }
  /// `auto g = co_await lk.scoped()`: acquire(), returning a lock_guard that releases it.
  [[nodiscard]] detail::acquire_awaiter<lock, true> scoped() noexcept {
    return detail::acquire_awaiter<lock, true>(*this);
  }
  /// Takes the lock if it is free (then nobody waits either); never suspends.
  [[nodiscard]] bool try_acquire() noexcept { return try_take(); }
  /// Releases the lock: the first waiter, if any, owns it now. invalid_state_error if it is not
  /// locked. Any task may release it (asyncio locks have no owner).
  void release() {
    if (!locked_)
      throw invalid_state_error("corio: lock.release() on a lock that is not locked");
    pass_on();
  }
  [[nodiscard]] bool locked() const noexcept { return locked_; }
  /// The number of tasks queued for the lock.
  [[nodiscard]] std::size_t waiting() const noexcept { return waiters_.size(); }

private:
  template <class, bool> friend class detail::acquire_awaiter;
  friend lock_guard<lock>;
  friend class condition;
  friend class detail::condition_wait;
  static constexpr const char* acquire_name = "lock.acquire()";
  static constexpr const char* wait_name = "lock";

  bool try_take() noexcept {
    if (locked_)
      return false;
    locked_ = true;
    return true;
  }
  void pass_on() {
    if (detail::wait_node* w = waiters_.front())
      static_cast<detail::sync_waiter*>(w)->grant(); // stays locked: w owns it now
    else
      locked_ = false;
  }
  void guard_release() {
    if (locked_)
      pass_on();
  }
  /// Takes the lock for `w` if it is free (w is woken), else queues w (a condition's waiter).
  void take_or_enqueue(detail::sync_waiter& w) {
    if (try_take())
      w.grant();
    else
      w.enqueue(waiters_);
  }

  bool locked_ = false;
  detail::wait_list waiters_;
};

} // namespace corio
