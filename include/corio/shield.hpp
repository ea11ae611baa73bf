// corio::shield: await a task without letting a cancellation of the awaiter reach it (asyncio.shield).
#pragma once

#include <coroutine>
#include <cstddef>
#include <utility>

#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/spawn.hpp"
#include "corio/task.hpp"
#include "corio/wait.hpp"

namespace corio {

namespace detail {

template <class T> class [[nodiscard]] shield_awaitable final : public multi_wait {
public:
  explicit shield_awaitable(join_handle<T> h) : h_(std::move(h)) {
    if (!h_.valid())
      throw invalid_state_error("corio: shield() of an empty join_handle");
  }

  bool await_ready() {
    check_loop(h_, &enter("shield()"), "shield()");
    if (h_.done())
      return true;
    watch_completion(h_, hub(), 0);
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) { suspend(h); }
  decltype(auto) await_resume() {
    check_cancel(); // cancelled_error for the awaiter only: the shielded task was not told
    return h_.result();
  }

  void on_completion(std::size_t) override { finish(); }
  // on_cancel(): the default — withdraw the wait and resume the awaiter, which raises. The shielded
  // task is not cancelled (a plain `co_await handle` would cancel it).
  [[nodiscard]] const char* what() const noexcept override { return "shield()"; }

  /// The shielded task (to await it again, e.g. after catching cancelled_error and uncancel()).
  [[nodiscard]] const join_handle<T>& handle() const noexcept { return h_; }

private:
  join_handle<T> h_;
};

} // namespace detail

/// Awaits the task of `h` and gives its result (or raises its exception), but if the awaiting task is
/// cancelled, only the awaiter is: it gets cancelled_error at once, and the shielded task runs on
/// untouched (asyncio.shield). Cancelling the shielded task itself (h.cancel()) still cancels it, and
/// the awaiter then gets its cancelled_error as its result.
///
///     try {
///       co_await corio::shield(save);   // save: a join_handle<>
///     } catch (const corio::cancelled_error&) {
///       ...                              // the save goes on; await `save` later to know how it ended
///     }
///
/// Awaiting it is an await point: if the task is already being cancelled, cancelled_error is raised
/// at once (the task still runs). A task of another loop that is not done raises loop_error (a done one
/// gives its result, as `co_await h` does).
template <class T> [[nodiscard]] detail::shield_awaitable<T> shield(join_handle<T> h) {
  return detail::shield_awaitable<T>(std::move(h));
}

/// shield() of a task: spawns it at once — not when the shield is awaited — so that it runs even if
/// the awaiting task is cancelled before it gets there (asyncio.shield(coro) schedules it too). Needs a
/// running loop (loop_error otherwise). If the awaiter is cancelled, the task runs on with no handle left
/// to it; an exception it raises then is reported as never retrieved. Keep a handle (spawn it yourself
/// and shield the handle) to learn how it ended.
template <class T> [[nodiscard]] detail::shield_awaitable<T> shield(task<T> t) {
  return detail::shield_awaitable<T>(spawn(std::move(t)));
}

} // namespace corio
