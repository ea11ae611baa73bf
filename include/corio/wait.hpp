// corio::wait: wait for several tasks at once (asyncio.wait), and the watcher the combinators share.
#pragma once

#include <coroutine>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "corio/clock.hpp"
#include "corio/detail/task_state.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/spawn.hpp"
#include "corio/this_task.hpp"

namespace corio {

namespace detail {

// ---- watching several tasks at once ----------------------------------------------------------------
//
// A wait for "any of N tasks finished" cannot put its one wait_node on N tasks' `joiners` lists (a node
// is in at most one list), and one node per child does not work either: a finishing task wakes its
// joiners with loop.wake(), which schedules the node's coroutine unconditionally, so two children
// finishing in the same iteration would resume the awaiting coroutine twice. So the combinators watch
// their children through done callbacks (join_handle::add_done_callback), and decide themselves when to
// wake their single wait_node:
//
// - Each callback holds a shared_ptr to a `completion_hub` and the child's index — neither a join_handle
//   (no reference cycle through the child's own callback list) nor the awaiter (which may be gone by the
//   time the callback runs).
// - The hub points back at its listener (the awaiter) while the awaiter exists; the awaiter's destructor
//   clears that pointer, so a callback that runs after the awaiter is gone does nothing. One that runs
//   while the awaiter exists but no longer waits (woken by another child or its timeout, or cancelled)
//   only records the completion. Callbacks cannot be removed from a task, so a hub lives until the last
//   watched child finished (a few words per child).
// - No lost wake-up: the children that are done when the wait begins are counted right away; the others
//   get a callback before the coroutine suspends, and the loop runs nothing in between.
// - No double wake-up: the awaiter wakes its node only through multi_wait::finish(), which does it once
//   (`suspended_`) and cancels the timeout; the timeout is a loop callback (not a timer on the node, which
//   the loop would wake on its own) and goes through finish() too. Cancelling the awaiting task withdraws
//   the wait the same way (detach()), so a completion after that does not wake it again.
// - Cost: a callback runs one loop iteration after its task finished (call_soon), so waking through it
//   takes one iteration more than `co_await handle` does. Loop time is not affected.

/// Told when a watched child finished (by index, in completion order).
struct completion_listener {
  virtual void on_completion(std::size_t index) = 0;

protected:
  ~completion_listener() = default;
};

/// Shared by an awaiter and the done callbacks it put on its children.
struct completion_hub {
  completion_listener* listener = nullptr;
};

/// Raises loop_error, naming `what`, if h's task is not done and belongs to a loop other than `here`: its
/// done callbacks would run on that loop (another thread's, maybe), and nothing on `here` would be told it
/// finished (asyncio: ValueError "The future belonged to a different loop"). A done task of another loop
/// is accepted, as by `co_await h`. Called for every handle before anything is registered on any of them.
template <class T> void check_loop(const join_handle<T>& h, const event_loop* here, const char* what) {
  if (event_loop* l = h.loop_if_pending(); l != nullptr && l != here) [[unlikely]]
    throw loop_error(std::string("corio: ") + what +
                     ": a join_handle whose task belongs to another event loop (and is not done)");
}

/// Calls hub->listener->on_completion(index) when h's task is done (from a loop callback).
template <class T>
void watch_completion(join_handle<T>& h, const std::shared_ptr<completion_hub>& hub, std::size_t index) {
  h.add_done_callback([hub, index] {
    if (hub->listener != nullptr)
      hub->listener->on_completion(index);
  });
}

/// The wait_node of an awaiter that watches several tasks (and maybe a deadline); see above.
class multi_wait : public wait_node, public completion_listener {
public:
  multi_wait() = default;
  multi_wait(const multi_wait&) = delete;
  multi_wait& operator=(const multi_wait&) = delete;

  /// Withdraws the wait (the awaiting task was cancelled): later completions and the deadline no
  /// longer wake it.
  void detach() noexcept override {
    suspended_ = false;
    timer_.cancel();
  }

protected:
  ~multi_wait() {
    if (hub_)
      hub_->listener = nullptr;
    timer_.cancel();
    // Destroyed while suspended (its frame destroyed at loop teardown): the task no longer waits here.
    if (suspended_ && task != nullptr && task->waiting == this)
      task->waiting = nullptr;
  }

  /// await_ready's first step: the await point (raises if the task is being cancelled).
  event_loop& enter(const char* what) {
    loop_ = &await_point(what);
    return *loop_;
  }
  /// The hub to give watch_completion(); made on first use, with this as its listener.
  const std::shared_ptr<completion_hub>& hub() {
    if (!hub_) {
      hub_ = std::make_shared<completion_hub>();
      hub_->listener = this;
    }
    return hub_;
  }
  /// await_suspend: the coroutine waits until finish(), or until `deadline` (then timed_out_ is set).
  void suspend(std::coroutine_handle<> h, std::optional<time_point> deadline = std::nullopt) {
    handle = h;
    task = loop_->current_task();
    if (deadline)
      timer_ = loop_->call_at(*deadline, [this] {
        timed_out_ = true;
        finish();
      });
    suspended_ = true;
    event_loop::begin_wait(this);
  }
  /// Ends the wait and resumes the coroutine — once, however many times it is called.
  void finish() {
    if (!suspended_)
      return;
    detach();
    loop_->wake(this);
  }
  /// await_resume's first step (the protocol's step 5).
  void check_cancel() const {
    if (task != nullptr)
      task->check_cancel();
  }

  event_loop* loop_ = nullptr;
  bool timed_out_ = false;

private:
  std::shared_ptr<completion_hub> hub_;
  timer_handle timer_;
  bool suspended_ = false;
};

} // namespace detail

/// When wait() returns (asyncio's FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED).
enum class wait_condition {
  all_completed,   ///< every task finished
  first_completed, ///< any task finished
  first_exception, ///< any task finished by raising (not by being cancelled), or every task finished
};
inline constexpr wait_condition all_completed = wait_condition::all_completed;
inline constexpr wait_condition first_completed = wait_condition::first_completed;
inline constexpr wait_condition first_exception = wait_condition::first_exception;

struct wait_options {
  wait_condition return_when = wait_condition::all_completed;
  /// Return at the latest this long after the wait began (with what is done by then). Zero or less:
  /// do not wait at all. Nothing is cancelled when it expires.
  std::optional<duration> timeout = std::nullopt;
};

/// What wait() gives back: every handle it was given, in their original order, split by whether its
/// task was done when the wait ended.
template <class T> struct wait_result {
  std::vector<join_handle<T>> done;
  std::vector<join_handle<T>> pending;
};

namespace detail {

template <class T> class [[nodiscard]] wait_awaitable final : public multi_wait {
public:
  wait_awaitable(std::vector<join_handle<T>> handles, wait_options options)
      : handles_(std::move(handles)), options_(options) {}

  bool await_ready() {
    event_loop& here = enter("wait()");
    if (std::exchange(begun_, true))
      throw invalid_state_error("corio: a wait() can be awaited only once");
    for (const auto& h : handles_)
      check_loop(h, &here, "wait()");
    for (auto& h : handles_)
      if (h.done())
        count(h);
    if (satisfied() || (options_.timeout && *options_.timeout <= duration::zero()))
      return true;
    for (std::size_t i = 0; i < handles_.size(); ++i)
      if (!handles_[i].done())
        watch_completion(handles_[i], hub(), i);
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) {
    std::optional<time_point> deadline;
    if (options_.timeout)
      deadline = detail::saturating_add(loop_->time(), *options_.timeout);
    suspend(h, deadline);
  }
  wait_result<T> await_resume() {
    check_cancel();
    wait_result<T> out;
    for (auto& h : handles_)
      (h.done() ? out.done : out.pending).push_back(std::move(h));
    handles_.clear();
    return out;
  }

  void on_completion(std::size_t index) override {
    count(handles_[index]);
    if (satisfied())
      finish();
  }
  [[nodiscard]] const char* what() const noexcept override { return "wait()"; }

private:
  void count(join_handle<T>& h) {
    ++finished_;
    if (options_.return_when == wait_condition::first_exception && !failed_) {
      std::exception_ptr e = h.exception(); // marks it retrieved, as asyncio does
      failed_ = e != nullptr && !is_cancellation(e);
    }
  }
  [[nodiscard]] bool satisfied() const noexcept {
    switch (options_.return_when) {
    case wait_condition::first_completed:
      return finished_ > 0 || handles_.empty();
    case wait_condition::first_exception:
      return failed_ || finished_ == handles_.size();
    case wait_condition::all_completed:
      break;
    }
    return finished_ == handles_.size();
  }

  std::vector<join_handle<T>> handles_;
  wait_options options_;
  std::size_t finished_ = 0;
  bool failed_ = false;
  bool begun_ = false;
};

} // namespace detail

/// Waits for the tasks of `handles` (asyncio.wait): until every one finished (`all_completed`, the
/// default), any one did (`first_completed`), any one raised (`first_exception`: a task raising an error
/// other than cancelled_error; or every one finished), or `options.timeout` passed. Returns every handle,
/// split into `done` and `pending` (each in the original order).
///
/// It does not raise the tasks' exceptions (look at them with `handle.exception()` / `result()`), does
/// not cancel anything on timeout, and — unlike `co_await handle` and gather() — cancelling the awaiting
/// task does not cancel the tasks it waits for: the awaiter gets cancelled_error, the tasks run on.
/// With no handles it returns at once (asyncio raises ValueError). Awaiting it is an await point (it
/// raises cancelled_error at once if the task is being cancelled). A handle whose task belongs to another
/// loop and is not done raises loop_error before anything is watched (asyncio: ValueError "The future
/// belonged to a different loop"); a done one is accepted, as by `co_await handle`.
///
///     corio::wait_options options{.return_when = corio::first_completed, .timeout = 5s};
///     auto [done, pending] = co_await corio::wait(std::move(handles), options);
///
/// (Name the options first: a braced temporary in the same full-expression as co_await miscompiles on
/// g++ 12, HAZARDS.md §2.)
template <class T>
[[nodiscard]] detail::wait_awaitable<T> wait(std::vector<join_handle<T>> handles, wait_options options = {}) {
  return detail::wait_awaitable<T>(std::move(handles), options);
}

} // namespace corio
