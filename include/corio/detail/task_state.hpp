// task_state: what the loop knows about a running task — cancellation and what it waits for (internal).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "corio/detail/done_callbacks.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/errors.hpp"

namespace corio {
class event_loop;
}

namespace corio::detail {

struct context_data; // context_var.hpp

/// One spawned task (asyncio.Task). Cancellation is level-triggered: while `cancel_requests` or
/// `timeouts_fired` is non-zero, every await point of the task raises (cancelled_error first, else
/// timeout_error); uncancel() and the end of a timeout scope bring the counts back down.
///
/// `cancel_unraised` is asyncio's `_must_cancel`: a cancel() was accepted while the task was not suspended
/// in a cancellable wait (it was running, about to run or not started), and no cancelled_error has been
/// raised in it since. A task that returns with it set (and cancel_requests still non-zero) ends
/// cancelled, its result dropped, so a cancel that reached no further await point is not lost. A cancel
/// that reached the wait the task was in is that await point's: it raises it, or completes anyway (its
/// result was there already) and leaves it to the next await point, level-triggered.
struct task_state {
  event_loop* loop = nullptr;
  wait_node* waiting = nullptr; // the cancellable wait the task is suspended in, if any
  int cancel_requests = 0;      // cancel() calls not yet taken back by uncancel()
  short timeouts_fired = 0;     // expired timeout scopes that are still open
  bool done = false;
  bool retrieved = false;               // the result or exception was looked at (else: "never retrieved")
  mutable bool cancel_unraised = false; // see above; raise_cancel() clears it
  /// Its first step runs even if it was cancelled before it (cancelled_error comes at its first await
  /// point instead): corio's own tasks whose body does bookkeeping that must not be skipped.
  bool starts_if_cancelled = false;
  std::uint64_t id = 0;
  /// What most tasks never have, out of line: 8 bytes in every task instead of 40.
  struct rare {
    std::string name;
    detail::done_callbacks done_callbacks;
    std::shared_ptr<const context_data> context; // the task's context variables (context_var.hpp)
    std::string cancel_message;                  // of the last cancel(msg); cleared once uncancelled
  };
  std::unique_ptr<rare> extras;    // null until a name or a done callback is given
  task_state* prev_task = nullptr; // the loop's list of live tasks
  task_state* next_task = nullptr;

  [[nodiscard]] const std::string& task_name() const noexcept {
    static const std::string unnamed;
    return extras ? extras->name : unnamed;
  }
  rare& extra() {
    if (!extras)
      extras = std::make_unique<rare>();
    return *extras;
  }
  [[nodiscard]] bool cancelling() const noexcept { return cancel_requests > 0 || timeouts_fired > 0; }
  [[noreturn]] void raise_cancel() const {
    if (cancel_requests > 0) {
      cancel_unraised = false;
      if (extras && !extras->cancel_message.empty()) [[unlikely]]
        throw cancelled_error(extras->cancel_message);
      throw cancelled_error();
    }
    throw timeout_error();
  }
  /// Raises if the task is being cancelled: the check every await point makes.
  void check_cancel() const {
    if (cancelling()) [[unlikely]]
      raise_cancel();
  }

  /// The task's first step, from the loop (a task spawned to start later). One cancelled before it
  /// (cancel() not taken back) does not start: it ends cancelled, its body never run, as in asyncio.
  virtual void start() noexcept = 0;
  /// The task's coroutine finished (called from its final suspend; may free the frame and the state).
  virtual void on_done() noexcept = 0;
  /// Destroys the task's coroutine frames without running them (loop teardown).
  virtual void abandon() noexcept = 0;
  /// A reference more / one fewer on the state (task_ref; join_handle does the same without a virtual call).
  virtual void retain() noexcept = 0;
  virtual void release() noexcept = 0;

protected:
  ~task_state() = default;
};

} // namespace corio::detail
