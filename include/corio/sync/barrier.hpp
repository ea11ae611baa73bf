// corio::barrier: a meeting point for a fixed number of tasks (asyncio.Barrier, Python 3.11).
#pragma once

#include <coroutine>
#include <cstddef>
#include <stdexcept>

#include "corio/detail/wait_node.hpp"
#include "corio/sync/waiter.hpp"

namespace corio {

/// Raised by barrier::wait() when the barrier is broken: abort()ed, or reset() while tasks waited
/// (asyncio.BrokenBarrierError).
class broken_barrier_error : public std::runtime_error {
public:
  broken_barrier_error() : std::runtime_error("corio: the barrier is broken (aborted, or reset while waiting)") {}
};

class barrier;

namespace detail {
/// `co_await b.wait()`: the arrival index once all parties arrived.
class [[nodiscard]] barrier_wait final : public sync_waiter {
public:
  explicit barrier_wait(barrier& b) noexcept : b_(&b) {}
  inline bool await_ready();
  inline void await_suspend(std::coroutine_handle<> h) noexcept;
  std::size_t await_resume() const {
    if (cancelling())
      task->raise_cancel();
    if (broken_)
      throw broken_barrier_error();
    return index_;
  }
  [[nodiscard]] const char* what() const noexcept override { return "barrier"; }

private:
  friend barrier;
  barrier* b_;
  std::size_t index_ = 0;
  bool broken_ = false;
};
} // namespace detail

/// A barrier for `parties` tasks (asyncio.Barrier): each wait() blocks until `parties` tasks are
/// waiting, then all of them return together and the barrier is ready for the next round (it is
/// cyclic). wait() returns the task's arrival index in the round, 0 .. parties-1 (the last to arrive
/// gets parties-1 and does not suspend): unique, in arrival order.
///
/// abort() breaks the barrier: waiters and every later wait() raise broken_barrier_error until reset().
/// reset() makes it empty and usable again; tasks waiting at that moment raise broken_barrier_error.
/// Cancellation: a task cancelled while waiting withdraws its arrival (the round then needs one more
/// task, as in asyncio); one cancelled after the round completed raises cancelled_error and the others
/// are unaffected. No allocation per wait. Single-threaded.
class barrier {
public:
  /// std::invalid_argument if parties is 0.
  explicit barrier(std::size_t parties) : parties_(parties) {
    if (parties == 0)
      throw std::invalid_argument("corio: a barrier needs at least one party");
  }
  barrier(const barrier&) = delete;
  barrier& operator=(const barrier&) = delete;
  ~barrier() = default;

  /// `std::size_t i = co_await b.wait()`. broken_barrier_error if broken; cancelled_error if cancelled.
  [[nodiscard]] detail::barrier_wait wait() noexcept { return detail::barrier_wait(*this); }
  /// Empties the barrier: current waiters raise broken_barrier_error; it is no longer broken.
  void reset() {
    wake_all_broken();
    broken_ = false;
  }
  /// Breaks the barrier: current and future waiters raise broken_barrier_error until reset().
  void abort() {
    broken_ = true;
    wake_all_broken();
  }
  [[nodiscard]] std::size_t parties() const noexcept { return parties_; }
  /// Tasks waiting in the current round.
  [[nodiscard]] std::size_t n_waiting() const noexcept { return waiters_.size(); }
  [[nodiscard]] bool broken() const noexcept { return broken_; }

private:
  friend detail::barrier_wait;
  /// The last party arrived: everyone waiting goes, with its index; a new round begins.
  void trip() {
    std::size_t i = 0;
    while (detail::wait_node* w = waiters_.front()) {
      auto* b = static_cast<detail::barrier_wait*>(w);
      b->index_ = i++;
      b->grant();
    }
  }
  void wake_all_broken() {
    while (detail::wait_node* w = waiters_.front()) {
      auto* b = static_cast<detail::barrier_wait*>(w);
      b->broken_ = true;
      b->grant();
    }
  }

  std::size_t parties_;
  bool broken_ = false;
  detail::wait_list waiters_; // this round's arrivals, in order
};

namespace detail {
bool barrier_wait::await_ready() {
  start("barrier.wait()");
  if (b_->broken_)
    throw broken_barrier_error();
  if (b_->waiters_.size() + 1 < b_->parties_)
    return false;
  index_ = b_->parties_ - 1;
  b_->trip();
  return true;
}
void barrier_wait::await_suspend(std::coroutine_handle<> h) noexcept { suspend_on(b_->waiters_, h); }
} // namespace detail

} // namespace corio
