// corio::to_thread / run_in_executor: await a blocking call run on a thread pool (asyncio.to_thread).
#pragma once

#include <coroutine>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "corio/detail/thread_op.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/task.hpp"
#include "corio/this_task.hpp"
#include "corio/thread_pool.hpp"

namespace corio {

/// The default thread pool of `loop` (what to_thread() uses): created on first use with the default
/// options, shut down — queued work run, threads joined — when the loop closes. The reference is valid
/// until then. loop_error if the loop is closed.
[[nodiscard]] thread_pool& default_thread_pool(event_loop& loop);

/// asyncio's loop.set_default_executor(executor): from now on to_thread() and the toolkit's own blocking
/// calls (resolve_dns, read_file...) run on `pool`, for instance one with fewer threads. Calls already
/// queued on the previous default finish there; it is kept until the loop closes. The loop shuts `pool`
/// down when it closes (queued work run, threads joined), as it does its own default, even if the caller
/// still holds it. std::invalid_argument for null, invalid_state_error for a pool already shut down,
/// loop_error from another thread while the loop runs or on a closed loop.
void set_default_thread_pool(event_loop& loop, std::shared_ptr<thread_pool> pool);

namespace detail {

template <class T> inline constexpr bool is_task_v = false;
template <class T> inline constexpr bool is_task_v<task<T>> = true;

/// The await of a thread_call: queues the operation and suspends until its completion comes back
/// through call_soon_threadsafe. Cancelling the awaiting task resumes it at once with cancelled_error;
/// the operation is abandoned (see thread_op for what that means for the thread).
template <class R> class thread_awaiter final : public wait_node, thread_op_waiter {
public:
  thread_awaiter(thread_result_op<R>* op, thread_pool* pool) noexcept : op_(op), pool_(pool) {}
  thread_awaiter(const thread_awaiter&) = delete;
  ~thread_awaiter() {
    detach();
    if (op_ != nullptr)
      op_->release();
  }

  bool await_ready() {
    loop_ = &await_point("to_thread()");
    if (op_ == nullptr)
      throw invalid_state_error("corio: a to_thread() call can be awaited only once");
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) {
    thread_pool& pool = pool_ != nullptr ? *pool_ : default_thread_pool(*loop_);
    handle = h;
    task = loop_->current_task();
    op_->start(loop_, this);
    op_->retain(); // the pool's reference, dropped by the job when it is done
    try {
      pool.submit(op_);
    } catch (...) {
      op_->abandon();
      op_->release();
      throw; // raised at the co_await
    }
    waiting_ = true;
    loop_->begin_external_wait();
    event_loop::begin_wait(this);
  }
  R await_resume() {
    if (task != nullptr)
      task->check_cancel();
    return op_->take();
  }

  void complete() noexcept override {
    waiting_ = false;
    op_->waiter = nullptr;
    loop_->end_external_wait();
    loop_->wake(this);
  }
  void detach() noexcept override {
    if (!waiting_)
      return;
    waiting_ = false;
    op_->abandon();
    loop_->end_external_wait();
  }
  [[nodiscard]] const char* what() const noexcept override { return "to_thread()"; }

private:
  thread_result_op<R>* op_;
  thread_pool* pool_; // null: the loop's default pool
  event_loop* loop_ = nullptr;
  bool waiting_ = false;
};

/// What to_thread() returns: a call not queued yet (like a task, nothing runs until it is awaited).
/// Movable until awaited; awaiting it consumes it.
template <class R> class [[nodiscard]] thread_call {
public:
  thread_call(thread_result_op<R>* op, thread_pool* pool) noexcept : op_(op), pool_(pool) {}
  thread_call(thread_call&& o) noexcept : op_(std::exchange(o.op_, nullptr)), pool_(o.pool_) {}
  thread_call& operator=(thread_call o) noexcept {
    std::swap(op_, o.op_);
    std::swap(pool_, o.pool_);
    return *this;
  }
  ~thread_call() {
    if (op_ != nullptr)
      op_->release();
  }
  thread_awaiter<R> operator co_await() && noexcept { return {std::exchange(op_, nullptr), pool_}; }
  thread_awaiter<R> operator co_await() & noexcept { return {std::exchange(op_, nullptr), pool_}; }

private:
  thread_result_op<R>* op_;
  thread_pool* pool_;
};

template <class F, class... Args> using thread_result_t =
    std::remove_cvref_t<std::invoke_result_t<std::decay_t<F>&&, std::decay_t<Args>&&...>>;

template <class F, class... Args>
thread_call<thread_result_t<F, Args...>> make_thread_call(thread_pool* pool, F&& fn, Args&&... args) {
  using R = thread_result_t<F, Args...>;
  static_assert(!is_task_v<R>, "corio::to_thread runs plain callables: a coroutine's frame must not be created "
                               "on a pool thread (await the task on the loop instead)");
  auto* op =
      new callable_op<R, std::decay_t<F>, std::decay_t<Args>...>(std::forward<F>(fn), std::forward<Args>(args)...);
  return thread_call<R>(op, pool);
}

} // namespace detail

/// Runs fn(args...) on the running loop's default thread pool and returns its result (by value) in the
/// awaiting task, or rethrows its exception there (asyncio.to_thread). fn and the arguments are copied or
/// moved into the operation, which is queued when awaited. Cancelling the awaiting task raises
/// cancelled_error in it at once; a call not yet started is then skipped, one already running finishes
/// in the background and its result is destroyed on the pool thread. So what fn refers to must outlive
/// it even when the await is cancelled (capture by value, not references into the awaiting frame), and
/// fn must not create or destroy corio coroutines. Queuing fails at the co_await with the pool's
/// errors (thread_pool::submit): invalid_state_error once it is shut down, std::system_error when it has
/// no thread and cannot start one.
///
///     auto load = [path] { return slurp(path); };  // g++ 12: name a capturing lambda (HAZARDS.md §2)
///     std::string text = co_await corio::to_thread(load);
template <class F, class... Args> [[nodiscard]] auto to_thread(F&& fn, Args&&... args) {
  return detail::make_thread_call(nullptr, std::forward<F>(fn), std::forward<Args>(args)...);
}

/// to_thread() on a given pool (loop.run_in_executor), which must be alive when the call is awaited
/// (shutting it down or destroying it later runs the queued call first).
template <class F, class... Args> [[nodiscard]] auto run_in_executor(thread_pool& pool, F&& fn, Args&&... args) {
  return detail::make_thread_call(&pool, std::forward<F>(fn), std::forward<Args>(args)...);
}

} // namespace corio
