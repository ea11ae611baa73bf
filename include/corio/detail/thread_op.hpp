// One to_thread() call in flight between the loop thread and a pool thread (internal).
#pragma once

#include <atomic>
#include <exception>
#include <mutex>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "corio/context_var.hpp"
#include "corio/detail/result_slot.hpp"
#include "corio/thread_pool.hpp"

namespace corio {
class event_loop;
}

namespace corio::detail {

/// Who waits for an operation's result, on the loop thread.
class thread_op_waiter {
public:
  /// The result is in the operation (called on the loop thread, from the completion callback).
  virtual void complete() noexcept = 0;

protected:
  ~thread_op_waiter() = default;
};

/// The part of an operation shared by the awaiter (loop thread) and the job (pool thread), refcounted
/// by both. Its states:
///   created    the awaiter holds it; nothing is queued (an awaiter never awaited just frees it);
///   queued     start() gave it the loop and the waiter, and the pool holds a reference;
///   running    a pool thread runs the callable (only if the waiter was still there when it began);
///   posted     the thread passed a completion (holding a reference) to call_soon_threadsafe;
///   completed  the completion ran on the loop and woke the waiter, which takes the result.
/// abandon() (the awaiter was cancelled or destroyed) can come in any state: a job not yet running is
/// skipped, a result not yet posted is never posted, a posted completion finds no waiter and just drops
/// its reference. mutex_ orders the pool thread's "post to loop_" against abandon(): once abandon()
/// returns, no thread touches the loop for this operation, so the loop may be destroyed.
class thread_op : public pool_job {
public:
  thread_op(const thread_op&) = delete;
  thread_op& operator=(const thread_op&) = delete;

  /// Loop thread, before queueing: where to post the result and whom to tell.
  void start(event_loop* loop, thread_op_waiter* w) noexcept {
    waiter = w;
    std::lock_guard lock(mutex_);
    loop_ = loop;
  }
  /// Loop thread: nobody waits any more.
  void abandon() noexcept {
    waiter = nullptr;
    std::lock_guard lock(mutex_);
    loop_ = nullptr;
  }
  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
      delete this;
  }
  /// Pool thread: run the callable unless abandoned, then post the completion unless abandoned.
  void run() noexcept final;

  thread_op_waiter* waiter = nullptr; // loop thread only

protected:
  thread_op() = default;
  virtual ~thread_op() = default;
  /// Pool thread: calls the callable and stores its result or exception.
  virtual void invoke() noexcept = 0;

private:
  std::atomic<int> refs_{1};
  std::mutex mutex_;
  event_loop* loop_ = nullptr; // guarded by mutex_; null until start() and after abandon()
};

/// The result of an operation returning R.
template <class R> class thread_result_op : public thread_op {
public:
  /// Loop thread: the result, or the exception rethrown (see result_slot::take()).
  R take() { return result_.take(); }

protected:
  result_slot<R> result_;
};

/// An operation calling F with Args (stored decayed: the thread may outlive the caller's frame).
template <class R, class F, class... Args> class callable_op final : public thread_result_op<R> {
public:
  template <class G, class... A> explicit callable_op(G&& fn, A&&... args)
      : fn_(std::in_place, std::forward<G>(fn)), args_(std::in_place, std::forward<A>(args)...) {
    if (contexts_used.load(std::memory_order_relaxed)) [[unlikely]]
      context_ = copy_context(); // the caller's context variables, as asyncio.to_thread does
  }

private:
  void invoke() noexcept override {
    try {
      context_.run([this] {
        if constexpr (std::is_void_v<R>) {
          std::apply(std::move(*fn_), std::move(*args_));
          this->result_.set_value();
        } else {
          this->result_.set_value(std::apply(std::move(*fn_), std::move(*args_)));
        }
      });
    } catch (...) {
      this->result_.set_error(std::current_exception());
    }
    // The callable and its arguments ran on this thread and die here, not later on the loop's.
    fn_.reset();
    args_.reset();
  }
  std::optional<F> fn_;
  std::optional<std::tuple<Args...>> args_;
  context context_; // empty unless a context variable was ever set
};

} // namespace corio::detail
