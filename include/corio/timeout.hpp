// corio::timeout / timeout_at scopes and corio::wait_for (asyncio.timeout, asyncio.wait_for).
#pragma once

#include <optional>
#include <utility>

#include "corio/clock.hpp"
#include "corio/detail/task_state.hpp"
#include "corio/event_loop.hpp"
#include "corio/task.hpp"
#include "corio/this_task.hpp"

namespace corio {

/// A deadline for the code of the running task while the scope is alive (asyncio.timeout, trio's
/// move_on_after without the move-on). When it expires, the await point the task is at — and every
/// later one until the scope ends — raises corio::timeout_error (a cancelled_error). The scope's end
/// takes its cancellation back, so the code after it (e.g. a catch in the caller) can await again.
///
///     auto deadline = corio::timeout(2s);
///     co_await fetch();   // raises timeout_error if it takes longer than 2 s
///
/// A scope may have no deadline (asyncio.timeout(None)): `corio::timeout(std::nullopt)` never
/// expires until reschedule() gives it one, and reschedule(std::nullopt) takes a deadline away.
///
/// Nested scopes: once a scope expired, every await point of the task raises timeout_error until *that*
/// scope ends — those inside an inner scope too, whether the inner one expired or not; an inner scope's
/// end takes back only its own expiry. (asyncio's inner scope lets the CancelledError pass and only the
/// expired one turns it into TimeoutError; C++ cannot change an exception as it leaves a scope.) So a
/// `catch (const timeout_error&)` inside an outer scope cannot tell by itself which scope expired: it
/// must rethrow when an enclosing one did — check `outer.expired()`, or corio::timeout_expired() where
/// the outer scope is out of reach. Else a retry loop retries at once, forever (each await raises):
///
///     auto overall = corio::timeout(10s);
///     for (;;) {
///       try {
///         auto attempt = corio::timeout(1s);
///         co_return co_await fetch();
///       } catch (const corio::timeout_error&) {
///         if (overall.expired()) // or corio::timeout_expired(): not this attempt's deadline
///           throw;
///       }
///     }
///
/// Neither copyable nor movable: it lives where it was made, a local of the task. It belongs to the task
/// that made it: a scope in an async generator's body, open across a co_yield, interrupts the task that
/// first drove the body there, not the one consuming it later (as asyncio's), and nothing once that
/// task is done.
class [[nodiscard]] timeout_scope {
public:
  explicit timeout_scope(std::optional<time_point> deadline) : loop_(&detail::running_loop("timeout()")) {
    task_ = loop_->current_task();
    if (task_ == nullptr)
      throw loop_error("corio: timeout() must be used inside a task");
    task_->retain(); // the scope may outlive the task: in an async generator's frame, across a co_yield
    try {
      reschedule(deadline);
    } catch (...) {
      task_->release();
      throw;
    }
  }
  timeout_scope(const timeout_scope&) = delete;
  timeout_scope& operator=(const timeout_scope&) = delete;
  ~timeout_scope() {
    timer_.cancel();
    if (expired_)
      --task_->timeouts_fired;
    task_->release();
  }

  /// True once the deadline passed (and the task was interrupted).
  [[nodiscard]] bool expired() const noexcept { return expired_; }
  /// The deadline, or nullopt when the scope has none.
  [[nodiscard]] std::optional<time_point> when() const noexcept { return deadline_; }
  /// Moves the deadline, or takes it away with nullopt (asyncio.Timeout.reschedule); no effect once
  /// expired. A deadline already reached expires the scope with call_soon(), as asyncio's does: before
  /// the task resumes from any await that waits for the next iteration (`timeout(0s)` around
  /// `sleep(0s)` raises).
  void reschedule(std::optional<time_point> deadline) {
    if (expired_)
      return;
    timer_.cancel();
    deadline_ = deadline;
    if (!deadline)
      return;
    if (*deadline <= loop_->time())
      timer_ = loop_->call_soon([this] { expire(); });
    else
      timer_ = loop_->call_at(*deadline, [this] { expire(); });
  }

private:
  void expire() noexcept {
    expired_ = true;
    ++task_->timeouts_fired;
    loop_->interrupt(task_); // nothing to interrupt in a task that is done
  }

  event_loop* loop_;
  detail::task_state* task_;
  std::optional<time_point> deadline_;
  timer_handle timer_;
  bool expired_ = false;
};

/// True while an expired timeout scope of the running task is still open: its await points raise
/// timeout_error until that scope ends. In a `catch (const timeout_error&)` placed outside the scope it
/// guards (that scope has ended), true means an enclosing scope expired: rethrow (see timeout_scope).
/// loop_error outside a task.
[[nodiscard]] inline bool timeout_expired() { return detail::running_task("timeout_expired()").timeouts_fired > 0; }

/// A timeout_scope expiring `d` from now (loop time).
inline timeout_scope timeout(duration d) {
  event_loop& loop = detail::running_loop("timeout()");
  return timeout_scope(detail::saturating_add(loop.time(), d)); // d = max: never
}
template <class Rep, class Period> timeout_scope timeout(std::chrono::duration<Rep, Period> d) {
  return timeout(detail::saturating_cast(d));
}
/// A timeout_scope with no deadline (asyncio.timeout(None)); reschedule() may give it one.
inline timeout_scope timeout(std::nullopt_t) { return timeout_scope(std::nullopt); }
/// A timeout_scope expiring at loop time `when`; nullopt: no deadline.
inline timeout_scope timeout_at(std::optional<time_point> when) { return timeout_scope(when); }

/// Awaits `aw` (a task<T>, join_handle<T> or future<T>) for at most `d` (asyncio.wait_for): its result,
/// or timeout_error once `d` passed — the work is cancelled then (a task run inline is interrupted at its
/// await point; an awaited join_handle's task or future is cancelled, and waited for).
template <class Awaitable> auto wait_for(Awaitable aw, duration d)
    -> task<decltype(std::declval<Awaitable&&>().operator co_await().await_resume())> {
  auto deadline = timeout(d);
  co_return co_await std::move(aw);
}
template <class Awaitable, class Rep, class Period> auto wait_for(Awaitable aw, std::chrono::duration<Rep, Period> d) {
  return wait_for(std::move(aw), detail::saturating_cast(d));
}
/// wait_for() whose `d` may be nullopt (asyncio.wait_for(aw, None)): then it awaits `aw` without a deadline.
template <class Awaitable> auto wait_for(Awaitable aw, std::optional<duration> d)
    -> task<decltype(std::declval<Awaitable&&>().operator co_await().await_resume())> {
  std::optional<time_point> when;
  if (d)
    when = detail::saturating_add(detail::running_loop("wait_for()").time(), *d);
  auto deadline = timeout_at(when);
  co_return co_await std::move(aw);
}

} // namespace corio
