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
/// Until that waiter runs, a second release() raises invalid_state_error, as asyncio's does (its lock
/// is unlocked until the woken waiter runs): it is a release too many, which would let two tasks hold
/// the lock. Once the new owner runs, any task may release it again.
/// Invariant: unlocked ⇒ nobody waits.
/// Cancellation: a waiter cancelled while queued leaves the queue; one cancelled after the lock was
/// handed to it (woken but not yet run) hands it on to the next waiter, or unlocks, and then raises
/// cancelled_error. acquire() never returns to a cancelled task, and never loses a release().
/// A lock destroyed while tasks wait for it (or before the one it was handed to ran) leaves them
/// waiting; they can still be cancelled, and raise cancelled_error without touching it.
/// No allocation: each waiter is a node in the waiting coroutine's frame.
class lock {
public:
  lock() = default;
  lock(const lock&) = delete;
  lock& operator=(const lock&) = delete;
  /// Tasks still waiting, or woken and not yet run, are unlinked (see the class comment).
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
  /// locked, or if it was just handed to a waiter that has not run yet (released twice). Any task may
  /// release it (asyncio locks have no owner).
  void release() {
    if (!locked_)
      throw invalid_state_error("corio: lock.release() on a lock that is not locked");
    if (!handed_.empty())
      throw invalid_state_error("corio: lock.release() while the lock is being handed to a woken waiter "
                                "that has not run yet (released twice?)");
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
      hand_to(*static_cast<detail::sync_waiter*>(w)); // stays locked: w owns it now
    else
      locked_ = false;
  }
  /// Wakes w, the new owner, and keeps it in handed_ until it runs (it leaves on its own).
  void hand_to(detail::sync_waiter& w) {
    w.grant();
    w.enqueue(handed_);
  }
  /// A guard's release: a lock that is not held any more (released by hand, maybe handed to a waiter
  /// since) is left alone.
  void guard_release() {
    if (locked_ && handed_.empty())
      pass_on();
  }
  /// Takes the lock for `w` if it is free (w is woken), else queues w (a condition's waiter).
  void take_or_enqueue(detail::sync_waiter& w) {
    if (try_take())
      hand_to(w);
    else
      w.enqueue(waiters_);
  }

  bool locked_ = false;
  detail::wait_list waiters_;
  detail::wait_list handed_; // the woken waiter that owns the lock but has not run yet (0 or 1)
};

} // namespace corio
