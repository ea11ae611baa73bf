// One runtime::run_on() call in flight between the caller's loop and the target loop (internal).
#pragma once

#include <atomic>
#include <coroutine>
#include <exception>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "corio/detail/result_slot.hpp"
#include "corio/detail/task_state.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/event_loop.hpp"
#include "corio/spawn.hpp"
#include "corio/task.hpp"
#include "corio/this_task.hpp"

namespace corio::detail {

template <class T> struct remote_result { using type = T; };
template <class T> struct remote_result<task<T>> { using type = T; };
/// What `co_await run_on(i, fn)` gives: fn's result, or the result of the task fn returns.
template <class F> using remote_result_t = typename remote_result<std::invoke_result_t<F&>>::type;

/// Calls (*fn)() — awaiting the task<T> it returns, if it returns one — and stores its result or its
/// exception in *out. The pointers are the awaiting frame's: it outlives this task. The first thing its
/// caller does, in a task that starts even if cancelled first (start_policy::always): cancelled before it
/// started, fn is not called (asyncio never starts such a task) and *out gets the cancelled_error.
template <class T, class F> task<> call_into(result_slot<T>* out, F* fn) {
  try {
    running_task("run_on()").check_cancel();
    if constexpr (std::is_void_v<T>) {
      if constexpr (std::is_void_v<std::invoke_result_t<F&>>)
        (*fn)();
      else
        co_await (*fn)();
      out->set_value();
    } else if constexpr (std::is_same_v<std::invoke_result_t<F&>, task<T>>) {
      T v = co_await (*fn)();
      out->set_value(std::move(v));
    } else {
      out->set_value((*fn)());
    }
  } catch (...) {
    out->set_error(std::current_exception());
  }
}

/// The awaiter side of a call: `waiting` is true from the post until the delivery or abandon().
struct remote_waiter : wait_node {
  bool waiting = false;

protected:
  remote_waiter() = default;
  ~remote_waiter() = default;
};

/// The state shared by the caller's awaiter and the task on the target loop, refcounted by both.
///   created    the awaiter holds it; nothing is posted yet;
///   posted     await_suspend posted the start to the target loop (holding a reference);
///   running    the target loop runs fn (as a task of its own, `remote`);
///   completed  the task stored the result or exception and posted deliver() to the caller's loop;
///   delivered  deliver() woke the awaiter, which takes the result.
/// abandon() (the awaiting task was cancelled, or its frame destroyed) may come in any state: the task on
/// the target loop is cancelled, its result is never posted, or a posted delivery finds no waiter. mutex_
/// orders the target's "post to caller_" against abandon(): once abandon() returns, nothing touches the
/// caller's loop for this call. The target loop must outlive the call (a runtime's loops do).
template <class T> class remote_op {
public:
  remote_op(event_loop* target) noexcept : target_(target) {}
  remote_op(const remote_op&) = delete;
  remote_op& operator=(const remote_op&) = delete;

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
      delete this;
  }

  /// Caller's thread: post the start of fn on the target loop.
  template <class F> void start(event_loop* caller, remote_waiter* w, F fn) {
    waiter_ = w;
    {
      std::lock_guard lock(mutex_);
      caller_ = caller;
    }
    try {
      target_->call_soon_threadsafe([this, self = reference(this), fn = std::move(fn)]() mutable {
        remote_ = spawn_lazy(*target_, body(reference(this), std::move(fn)), "run_on", start_policy::always);
        if (cancel_early_)
          remote_.cancel();
      });
    } catch (...) {
      caller_ = nullptr;
      throw;
    }
  }
  /// Caller's thread: nobody waits any more; cancel the task on the target loop.
  void abandon() noexcept {
    waiter_ = nullptr;
    {
      std::lock_guard lock(mutex_);
      caller_ = nullptr;
    }
    try {
      target_->call_soon_threadsafe([this, self = reference(this)] {
        if (remote_.valid())
          remote_.cancel();
        else
          cancel_early_ = true; // the start has not run yet (or the task is over: harmless)
      });
    } catch (...) {
      // out of memory: the task runs to its end, and its result is dropped
    }
  }
  /// Caller's thread, after the delivery: the result, or the exception rethrown.
  T take() { return result_.take(); }

private:
  ~remote_op() = default;

  /// One counted reference, released when destroyed: a coroutine parameter of body(), so the frame
  /// releases it however it ends (also when destroyed unstarted at loop teardown).
  class reference {
  public:
    explicit reference(remote_op* p) noexcept : p_(p) { p_->retain(); }
    reference(reference&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    reference& operator=(reference&&) = delete;
    ~reference() {
      if (p_ != nullptr)
        p_->release();
    }
    remote_op* operator->() const noexcept { return p_; }

  private:
    remote_op* p_;
  };

  template <class F> static task<> body(reference self, F fn) {
    co_await call_into(&self->result_, &fn);
    self->remote_ = {}; // the handle belongs to this loop's thread: drop it here
    self->complete();
  }
  /// Target thread: post the delivery unless abandoned.
  void complete() noexcept {
    std::lock_guard lock(mutex_);
    if (caller_ == nullptr)
      return;
    try {
      caller_->call_soon_threadsafe([this, self = reference(this)] { deliver(); });
    } catch (...) {
      // out of memory: the caller waits until cancelled
    }
  }
  /// Caller's thread.
  void deliver() {
    if (remote_waiter* w = std::exchange(waiter_, nullptr)) {
      w->waiting = false;
      event_loop* loop = event_loop::current();
      loop->end_external_wait();
      loop->wake(w);
    }
  }

  std::atomic<int> refs_{1};
  event_loop* const target_;
  std::mutex mutex_;
  event_loop* caller_ = nullptr;    // guarded by mutex_; null until start() and after abandon()
  remote_waiter* waiter_ = nullptr; // caller's thread only
  join_handle<> remote_;            // target's thread only
  bool cancel_early_ = false;       // target's thread only
  result_slot<T> result_;
};

/// `co_await rt.run_on(i, fn)`: starts fn on loop i when awaited, and waits for its result. Cancelling
/// the awaiting task resumes it at once with cancelled_error and cancels the task on loop i.
template <class T, class F> class [[nodiscard]] remote_awaiter final : public remote_waiter {
public:
  remote_awaiter(event_loop* target, F fn) : op_(new remote_op<T>(target)), fn_(std::move(fn)) {}
  remote_awaiter(remote_awaiter&& o) noexcept : op_(std::exchange(o.op_, nullptr)), fn_(std::move(o.fn_)) {}
  ~remote_awaiter() {
    detach();
    if (op_ != nullptr)
      op_->release();
  }

  bool await_ready() {
    loop_ = &await_point("run_on()");
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) {
    handle = h;
    task = loop_->current_task();
    op_->start(loop_, this, std::move(*fn_));
    fn_.reset();
    waiting = true;
    loop_->begin_external_wait();
    event_loop::begin_wait(this);
  }
  T await_resume() {
    if (task != nullptr)
      task->check_cancel();
    return op_->take();
  }
  void detach() noexcept override {
    if (!waiting)
      return;
    waiting = false;
    op_->abandon();
    loop_->end_external_wait();
  }
  [[nodiscard]] const char* what() const noexcept override { return "run_on()"; }

private:
  remote_op<T>* op_;
  std::optional<F> fn_;
  event_loop* loop_ = nullptr;
};

} // namespace corio::detail
