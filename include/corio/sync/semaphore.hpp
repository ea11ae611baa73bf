// corio::semaphore and corio::bounded_semaphore: a counter of permits for tasks of one loop
// (asyncio.Semaphore, asyncio.BoundedSemaphore).
#pragma once

#include <cstddef>
#include <limits>

#include "corio/detail/wait_node.hpp"
#include "corio/errors.hpp"
#include "corio/sync/waiter.hpp"

namespace corio {

/// A counter of permits (asyncio.Semaphore): acquire() takes one, waiting while there are none;
/// release() gives one back.
///
///     auto permit = co_await sem.scoped(); // released when `permit` is destroyed
///
/// Fairness: waiters are served in arrival order. release() hands the permit directly to the first
/// waiter, so a newcomer cannot take it first. Invariant: value() > 0 ⇒ nobody waits.
/// Cancellation: a waiter cancelled while queued leaves the queue; one cancelled after a permit was
/// handed to it (woken, not yet run) passes the permit on to the next waiter, or back to the counter,
/// before raising cancelled_error. A semaphore destroyed while tasks wait (or before those it woke ran)
/// leaves them waiting; they can still be cancelled, and raise without touching it.
/// No allocation per wait. Single-threaded, like the loop.
class semaphore {
public:
  explicit semaphore(std::size_t value = 1) noexcept : value_(value) {}
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;
  ~semaphore() = default;

  /// `co_await sem.acquire()`: waits for a permit. Raises cancelled_error if cancelled first.
  [[nodiscard]] detail::acquire_awaiter<semaphore, false> acquire() noexcept {
    return detail::acquire_awaiter<semaphore, false>(*this);
  }
  /// `auto g = co_await sem.scoped()`: acquire(), returning a lock_guard that releases the permit.
  [[nodiscard]] detail::acquire_awaiter<semaphore, true> scoped() noexcept {
    return detail::acquire_awaiter<semaphore, true>(*this);
  }
  /// Takes a permit if one is free; never suspends.
  [[nodiscard]] bool try_acquire() noexcept { return try_take(); }
  /// Gives a permit back: to the first waiter if there is one, else to the counter. A
  /// bounded_semaphore raises invalid_state_error when that would exceed its initial value.
  void release() {
    if (value_ >= bound_)
      throw invalid_state_error(bound_ == std::numeric_limits<std::size_t>::max()
                                    ? "corio: semaphore value overflow"
                                    : "corio: bounded_semaphore released more times than it was acquired");
    pass_on();
  }
  /// True when acquire() would wait (asyncio's locked()).
  [[nodiscard]] bool locked() const noexcept { return value_ == 0; }
  /// Permits available now.
  [[nodiscard]] std::size_t value() const noexcept { return value_; }
  /// The number of tasks waiting for a permit.
  [[nodiscard]] std::size_t waiting() const noexcept { return waiters_.size(); }

protected:
  semaphore(std::size_t value, std::size_t bound) noexcept : value_(value), bound_(bound) {}

private:
  template <class, bool> friend class detail::acquire_awaiter;
  friend lock_guard<semaphore>;
  static constexpr const char* acquire_name = "semaphore.acquire()";
  static constexpr const char* wait_name = "semaphore";

  bool try_take() noexcept {
    if (value_ == 0)
      return false;
    --value_;
    return true;
  }
  void guard_release() { release(); }
  void pass_on() {
    if (detail::wait_node* w = waiters_.front()) { // the permit goes straight to w
      auto* s = static_cast<detail::sync_waiter*>(w);
      s->grant();
      s->enqueue(handed_); // until it runs: there it finds out the semaphore is still alive
    } else {
      ++value_;
    }
  }

  std::size_t value_;
  std::size_t bound_ = std::numeric_limits<std::size_t>::max();
  detail::wait_list waiters_;
  detail::wait_list handed_; // woken waiters, handed a permit, that have not run yet
};

/// A semaphore that refuses to be released more times than it was acquired (asyncio.BoundedSemaphore):
/// release() raises invalid_state_error when the value would go above the initial one. This catches
/// a release() too many — typically a manual release plus a guard's.
class bounded_semaphore : public semaphore {
public:
  explicit bounded_semaphore(std::size_t value = 1) noexcept : semaphore(value, value) {}
  /// The initial value: release() never takes value() above it.
  [[nodiscard]] std::size_t bound() const noexcept { return bound_value_; }

private:
  std::size_t bound_value_ = value();
};

} // namespace corio
