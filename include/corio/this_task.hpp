// The running task: its loop, and explicit control over its cancellation.
#pragma once

#include "corio/detail/task_state.hpp"
#include "corio/event_loop.hpp"

namespace corio {

namespace detail {
/// The running loop, or loop_error naming `what` needs one.
inline event_loop& running_loop(const char* what) {
  event_loop* loop = event_loop::current();
  if (loop == nullptr)
    throw loop_error(std::string("corio: ") + what + " needs a running event loop");
  return *loop;
}
/// The running task, or loop_error.
inline task_state& running_task(const char* what) {
  task_state* t = running_loop(what).current_task();
  if (t == nullptr)
    throw loop_error(std::string("corio: ") + what + " must be called from inside a task");
  return *t;
}
/// The check every suspending await point makes first.
inline event_loop& await_point(const char* what) {
  event_loop& loop = running_loop(what);
  if (task_state* t = loop.current_task())
    t->check_cancel();
  return loop;
}
} // namespace detail

/// Takes back one cancel() of the running task (asyncio.Task.uncancel): once every cancel() is taken
/// back, await points stop raising cancelled_error. Returns the number of cancel requests left.
/// This is how a task explicitly chooses to continue after catching cancelled_error.
inline int uncancel() {
  detail::task_state& t = detail::running_task("uncancel()");
  if (t.cancel_requests > 0)
    --t.cancel_requests;
  if (t.cancel_requests == 0) {
    t.cancel_unraised = false; // every cancel taken back: the task may return its value (asyncio 3.13)
    if (t.extras)
      t.extras->cancel_message.clear(); // a later cancel() without a message raises without this one
  }
  return t.cancel_requests;
}

/// The number of pending cancel() requests of the running task (asyncio.Task.cancelling). An expired
/// timeout scope is not a cancel request: inside one this stays 0 (asyncio's timeout cancels the task,
/// making it 1); corio::timeout_expired() (timeout.hpp) tells that one expired.
[[nodiscard]] inline int cancelling() { return detail::running_task("cancelling()").cancel_requests; }

} // namespace corio
