// corio::run_coroutine_threadsafe and corio::thread_future<T>: start work on a loop from another thread
// and wait for its result there (asyncio.run_coroutine_threadsafe and concurrent.futures.Future).
#pragma once

#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>

#include "corio/detail/remote_call.hpp"
#include "corio/detail/result_slot.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/spawn.hpp"
#include "corio/task.hpp"

namespace corio {

template <class T> class thread_future;
template <class F> thread_future<detail::remote_result_t<F>> run_coroutine_threadsafe(event_loop& loop, F fn);

namespace detail {

/// Shared by a thread_future (any thread) and the task that computes its result (the loop's thread).
/// States: posted (the start is queued on the loop) → running (a task of its own there) → done (result or
/// exception stored, waiters notified). Ends early in done with loop_error when the loop drops the start
/// (closed) or destroys the task unstarted (torn down): a waiter never hangs on a loop that is gone.
template <class T> struct threadsafe_call {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;             // guarded by mutex
  bool cancel_requested = false; // guarded by mutex
  result_slot<T> result;         // written before done is set, read after
  join_handle<> task;            // the loop's thread only
  event_loop* loop;

  explicit threadsafe_call(event_loop* l) noexcept : loop(l) {}
  /// Stores an exception as the result, unless one is there already. Any thread.
  void fail(std::exception_ptr e) noexcept {
    std::lock_guard lock(mutex);
    if (done)
      return;
    result.set_error(std::move(e));
    done = true;
    done_cv.notify_all();
  }
};

/// Fails the call with loop_error if it is destroyed before the call finished: the loop dropped the
/// posted start (closed) or destroyed the task's frame unstarted (torn down).
template <class T> class threadsafe_call_guard {
public:
  explicit threadsafe_call_guard(std::shared_ptr<threadsafe_call<T>> c) noexcept : call_(std::move(c)) {}
  threadsafe_call_guard(threadsafe_call_guard&&) noexcept = default;
  threadsafe_call_guard& operator=(threadsafe_call_guard&&) = delete;
  ~threadsafe_call_guard() {
    if (call_)
      call_->fail(std::make_exception_ptr(
          loop_error("corio: the loop closed before run_coroutine_threadsafe()'s call finished")));
  }
  [[nodiscard]] std::shared_ptr<threadsafe_call<T>> share() const noexcept { return call_; }
  threadsafe_call<T>& operator*() const noexcept { return *call_; }
  threadsafe_call<T>* operator->() const noexcept { return call_.get(); }

private:
  std::shared_ptr<threadsafe_call<T>> call_;
};

} // namespace detail

/// The result of run_coroutine_threadsafe(), for a thread that is not the loop's: wait for it, take it,
/// or cancel the work. Move-only; get() takes the result once (as std::future). Destroying it does not
/// cancel the work: the task runs to its end, and its result is dropped.
template <class T> class [[nodiscard]] thread_future {
public:
  thread_future() noexcept = default;
  thread_future(thread_future&&) noexcept = default;
  thread_future& operator=(thread_future&&) noexcept = default;

  [[nodiscard]] bool valid() const noexcept { return call_ != nullptr; }
  /// True once the result (a value or an exception) is there.
  [[nodiscard]] bool done() const {
    std::lock_guard lock(need().mutex);
    return call_->done;
  }
  /// Blocks until done(). loop_error instead if called on the loop's own thread while the loop runs there
  /// and the work is not done: waiting would block the loop the work needs.
  void wait() const {
    std::unique_lock lock(need().mutex);
    if (!call_->done)
      check_not_on_loop();
    call_->done_cv.wait(lock, [&] { return call_->done; });
  }
  /// Blocks until done() or for at most `d`; returns done().
  template <class Rep, class Period> bool wait_for(std::chrono::duration<Rep, Period> d) const {
    std::unique_lock lock(need().mutex);
    if (!call_->done)
      check_not_on_loop();
    return call_->done_cv.wait_for(lock, d, [&] { return call_->done; });
  }
  /// wait(), then the result or its exception rethrown: cancelled_error if the work was cancelled,
  /// loop_error if the loop closed first. Leaves the future invalid.
  T get() {
    wait();
    std::shared_ptr<detail::threadsafe_call<T>> c = std::move(call_);
    return c->result.take();
  }
  /// Asks the loop to cancel the work (it raises cancelled_error at its await point, and get() then
  /// throws cancelled_error unless the work catches it). Returns false if the work is already done.
  /// Any thread; asynchronous: done() may still be false when it returns.
  bool cancel() {
    detail::threadsafe_call<T>& c = need();
    {
      std::lock_guard lock(c.mutex);
      if (c.done)
        return false;
      if (c.cancel_requested)
        return true;
      c.cancel_requested = true;
    }
    c.loop->call_soon_threadsafe([call = call_] {
      if (call->task.valid())
        call->task.cancel();
      // else: the start has not run yet, and sees cancel_requested when it does
    });
    return true;
  }

private:
  template <class F> friend thread_future<detail::remote_result_t<F>> run_coroutine_threadsafe(event_loop&, F);
  explicit thread_future(std::shared_ptr<detail::threadsafe_call<T>> c) noexcept : call_(std::move(c)) {}

  detail::threadsafe_call<T>& need() const {
    if (!call_)
      throw invalid_state_error("corio: use of an empty thread_future");
    return *call_;
  }
  void check_not_on_loop() const {
    if (event_loop::current() == call_->loop && call_->loop->is_running())
      throw loop_error("corio: thread_future waited for on its own loop's thread (it would never finish); "
                       "co_await the work there instead");
  }

  std::shared_ptr<detail::threadsafe_call<T>> call_;
};

namespace detail {
template <class T, class F> task<> run_threadsafe_body(threadsafe_call_guard<T> call, F fn) {
  result_slot<T> r;
  co_await call_into(&r, &fn);
  {
    std::lock_guard lock(call->mutex);
    call->result = std::move(r);
    call->done = true;
    call->done_cv.notify_all();
  }
  call->task = {}; // the handle belongs to this loop's thread: drop it here
}
} // namespace detail

/// From any thread that is not running `loop` (asyncio.run_coroutine_threadsafe): calls fn() on the loop's
/// thread — a callable returning task<T> (awaited there as a task of its own) or a plain value — and returns
/// a thread_future for its result. fn is moved to the loop's thread and destroyed there, so it may be a
/// lambda coroutine with captures. The loop may be running, or run later; it must outlive the call's start
/// (as for call_soon_threadsafe). If the loop closes before the work ends, the future holds loop_error
/// (or cancelled_error if closing cancelled the running task), never hangs.
///
///     std::thread t([&] {
///       auto f = corio::run_coroutine_threadsafe(loop, [] { return fetch(); });
///       int v = f.get(); // blocks this thread, not the loop
///     });
template <class F> thread_future<detail::remote_result_t<F>> run_coroutine_threadsafe(event_loop& loop, F fn) {
  using T = detail::remote_result_t<F>;
  auto call = std::make_shared<detail::threadsafe_call<T>>(&loop);
  loop.call_soon_threadsafe([guard = detail::threadsafe_call_guard<T>(call), fn = std::move(fn)]() mutable {
    std::shared_ptr<detail::threadsafe_call<T>> c = guard.share();
    join_handle<> h =
        spawn(*c->loop, detail::run_threadsafe_body<T, F>(std::move(guard), std::move(fn)), "run_coroutine_threadsafe");
    bool cancel;
    {
      std::lock_guard lock(c->mutex);
      cancel = c->cancel_requested;
    }
    if (!h.done())
      c->task = h; // for a cancel() that comes later: its callback runs after this one
    if (cancel)
      h.cancel();
  });
  return thread_future<T>(std::move(call));
}

} // namespace corio
