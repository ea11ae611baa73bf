// corio::task_ref, current_task(), all_tasks(): a task seen without its result type (asyncio.current_task).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "corio/detail/task_state.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"

namespace corio {

namespace detail {
/// Task.cancel(msg): the message for the cancelled_error, then the cancel; false if the task finished.
inline bool cancel_with_message(task_state& t, std::string message) {
  if (t.done)
    return false;
  t.extra().cancel_message = std::move(message);
  return t.loop->cancel_task(&t);
}

/// Cancels `target` because `waiter`, a task awaiting it (a join, or gather), is being cancelled: with
/// the waiter's message when it has one, as asyncio forwards Task.cancel(msg) to what the task awaits.
/// A timeout's cancel (no message) and a message that cannot be copied cancel plainly.
inline bool cancel_for_waiter(const task_state* waiter, task_state& target) noexcept {
  if (target.done)
    return false;
  if (waiter != nullptr && waiter->cancel_requests > 0 && waiter->extras && !waiter->extras->cancel_message.empty()) {
    try {
      target.extra().cancel_message = waiter->extras->cancel_message;
    } catch (...) { // out of memory: the cancel still goes through, without the message
    }
  }
  return target.loop->cancel_task(&target);
}
} // namespace detail

/// A counted reference to a spawned task that does not know its result type: what current_task() and
/// all_tasks() return, and what any join_handle<T> converts to. It can name, cancel and watch the task,
/// not await it or read its result (use the join_handle for that). Copyable; empty by default; the task
/// runs whether or not references remain. Calls on an empty task_ref throw invalid_state_error. Equal
/// when they refer to the same task.
class task_ref {
public:
  task_ref() noexcept = default;
  explicit task_ref(detail::task_state* t) noexcept : t_(t) {
    if (t_ != nullptr)
      t_->retain();
  }
  task_ref(const task_ref& o) noexcept : task_ref(o.t_) {}
  task_ref(task_ref&& o) noexcept : t_(std::exchange(o.t_, nullptr)) {}
  task_ref& operator=(task_ref o) noexcept {
    std::swap(t_, o.t_);
    return *this;
  }
  ~task_ref() {
    if (t_ != nullptr)
      t_->release();
  }

  [[nodiscard]] bool valid() const noexcept { return t_ != nullptr; }
  [[nodiscard]] std::uint64_t id() const { return state().id; }
  /// The name given to spawn() or set_name(); empty: none (the task is "#id" in reports).
  [[nodiscard]] const std::string& name() const { return state().task_name(); }
  /// Renames the task (asyncio's Task.set_name).
  void set_name(std::string_view n) { state().extra().name = n; }
  [[nodiscard]] bool done() const { return state().done; }
  /// Requests cancellation, as join_handle::cancel(); false if the task already finished.
  bool cancel() {
    detail::task_state& t = state();
    return !t.done && t.loop->cancel_task(&t);
  }
  /// cancel() with a message, as join_handle::cancel(message).
  bool cancel(std::string message) { return detail::cancel_with_message(state(), std::move(message)); }
  /// Cancel requests not taken back by uncancel() (asyncio's Task.cancelling()).
  [[nodiscard]] int cancelling() const { return state().cancel_requests; }

  friend bool operator==(const task_ref& a, const task_ref& b) noexcept { return a.t_ == b.t_; }

private:
  detail::task_state& state() const {
    if (t_ == nullptr)
      throw invalid_state_error("corio: empty task_ref");
    return *t_;
  }
  detail::task_state* t_ = nullptr;
};

/// The task running now on this thread's loop (asyncio.current_task()); empty outside a task (in a plain
/// callback, or with no loop running).
[[nodiscard]] inline task_ref current_task() noexcept {
  event_loop* loop = event_loop::current();
  return task_ref(loop != nullptr ? loop->current_task() : nullptr);
}

/// The tasks of `loop` that have not finished, oldest first (asyncio.all_tasks(loop)).
[[nodiscard]] inline std::vector<task_ref> all_tasks(const event_loop& loop) {
  std::vector<task_ref> out;
  for (const detail::task_state* t : loop.tasks())
    if (!t->done)
      out.emplace_back(const_cast<detail::task_state*>(t)); // a reference counts; the task is not changed
  return out;
}

/// all_tasks() of the loop running on this thread; loop_error if none is.
[[nodiscard]] inline std::vector<task_ref> all_tasks() {
  event_loop* loop = event_loop::current();
  if (loop == nullptr)
    throw loop_error("corio: all_tasks() needs a running event loop");
  return all_tasks(*loop);
}

} // namespace corio
