// corio::run_coroutine_threadsafe and corio::thread_future<T>: start work on a loop from another thread
// and wait for its result there (asyncio.run_coroutine_threadsafe and concurrent.futures.Future), or
// await it from a task of another loop (asyncio.wrap_future).
#pragma once

#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <exception>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "corio/detail/remote_call.hpp"
#include "corio/detail/result_slot.hpp"
#include "corio/detail/task_state.hpp"
#include "corio/detail/unique_function.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/spawn.hpp"
#include "corio/task.hpp"
#include "corio/this_task.hpp"

namespace corio {

template <class T> class thread_future;
template <class F> thread_future<detail::remote_result_t<F>> run_coroutine_threadsafe(event_loop& loop, F fn);

namespace detail {

/// Runs one thread_future done callback on the thread that completed the future. An exception escaping
/// it goes to `loop`'s exception handler when this is `loop`'s thread while it runs, else to the default
/// handler (stderr): it never escapes into the completing thread's code, and the other callbacks still run.
inline void run_thread_future_callback(event_loop* loop, unique_function& fn) noexcept {
  try {
    fn();
  } catch (...) {
    const exception_context c{"exception in a thread_future done callback", std::current_exception(), {}};
    if (event_loop::current() == loop)
      loop->call_exception_handler(c);
    else
      event_loop::default_exception_handler(c);
  }
}

/// Shared by a thread_future (any thread) and the task that computes its result (the loop's thread).
/// States: posted (the start is queued on the loop) → running (a task of its own there) → done (result or
/// exception stored, waiters notified, done callbacks run). Ends early in done with loop_error when the loop
/// drops the start (closed) or destroys the task unstarted (torn down): a waiter never hangs on a loop that
/// is gone.
template <class T> struct threadsafe_call {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;                      // guarded by mutex
  bool cancel_requested = false;          // guarded by mutex
  std::vector<unique_function> callbacks; // guarded by mutex; taken (and run outside it) when done is set
  result_slot<T> result;                  // written before done is set, read after
  join_handle<> task;                     // the loop's thread only
  event_loop* loop;

  explicit threadsafe_call(event_loop* l) noexcept : loop(l) {}
  /// Unless done already: fill(result), done, waiters woken, then the done callbacks run on this thread,
  /// outside the mutex, in the order they were added. Any thread.
  template <class Fill> void finish(Fill fill) {
    std::vector<unique_function> ready;
    {
      std::lock_guard lock(mutex);
      if (done)
        return;
      fill(result);
      done = true;
      ready.swap(callbacks);
      done_cv.notify_all();
    }
    for (unique_function& fn : ready)
      run_thread_future_callback(loop, fn);
  }
  /// Stores an exception as the result, unless one is there already. Any thread.
  void fail(std::exception_ptr e) noexcept {
    finish([&](result_slot<T>& r) noexcept { r.set_error(std::move(e)); });
  }
};

/// Fails the call with loop_error if it is destroyed before the call finished: the loop dropped the
/// posted start (closed) or destroyed the task's frame (torn down, started or not).
template <class T> class threadsafe_call_guard {
public:
  explicit threadsafe_call_guard(std::shared_ptr<threadsafe_call<T>> c) noexcept : call_(std::move(c)) {}
  threadsafe_call_guard(threadsafe_call_guard&&) noexcept = default;
  threadsafe_call_guard& operator=(threadsafe_call_guard&&) = delete;
  /// As a parameter of the task's frame, runs on the loop's thread when the frame goes, so the task's
  /// handle is dropped here, before the failure wakes the waiter: the waiting thread may hold the last
  /// reference to the call, and a join_handle released there would touch the loop thread's task state
  /// (its reference count, its frame pool) from another thread.
  ~threadsafe_call_guard() {
    if (!call_)
      return;
    if (call_->task.valid())
      call_->task = {};
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
    std::lock_guard lock(c.mutex);
    if (c.done)
      return false;
    if (c.cancel_requested)
      return true;
    c.cancel_requested = true;
    // Posted under the mutex: the loop cannot finish the call (which needs the mutex), so it cannot be
    // destroyed, while this thread is inside its call_soon_threadsafe.
    c.loop->call_soon_threadsafe([call = call_] {
      if (call->task.valid())
        call->task.cancel();
      // else: the start has not run yet, and sees cancel_requested when it does
    });
    return true;
  }
  /// Calls fn() once the result is there (concurrent.futures.Future.add_done_callback, without the
  /// future as argument: to read the result, signal whoever holds the future, whose get() then returns
  /// at once). fn runs on the thread that completes the future — the loop's, or the one where the loop
  /// dropped or tore down the work — or at once on this thread if the future is done already; never
  /// under the future's lock, so it may use the future (its get() returns at once). Callbacks run in the
  /// order they were added, once each, also when the future object was moved or destroyed meanwhile. An
  /// exception escaping fn goes to the loop's exception handler when fn runs on the loop's thread while
  /// it runs, else to event_loop::default_exception_handler (stderr); it never reaches the completing
  /// thread's code. fn may be move-only; it is destroyed on the thread that ran it.
  template <class F>
  requires(std::is_invocable_v<F&>) void add_done_callback(F fn) {
    detail::threadsafe_call<T>& c = need();
    detail::unique_function f(std::move(fn));
    {
      std::lock_guard lock(c.mutex);
      if (!c.done) {
        c.callbacks.push_back(std::move(f));
        return;
      }
    }
    detail::run_thread_future_callback(c.loop, f);
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
  call->finish([&](result_slot<T>& out) { out = std::move(r); });
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
    // Started even if cancelled first, so that its body reports the end (fn then is not called).
    auto body = detail::run_threadsafe_body<T, F>(std::move(guard), std::move(fn));
    join_handle<> h = c->loop->eager_tasks() ? spawn_eager(*c->loop, std::move(body), "run_coroutine_threadsafe")
                                             : detail::spawn_lazy(*c->loop, std::move(body), "run_coroutine_threadsafe",
                                                                  detail::start_policy::always);
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

namespace detail {

/// What a wrap_future() await shares with the done callback it gave the thread_future, which runs on the
/// thread that completes the future. The callback posts the completion to the awaiting loop unless the
/// await was abandoned (cancelled, or its frame destroyed); `mutex` orders the post against abandon(), so
/// once abandon() returns no thread touches the loop for this await and the loop may be destroyed (as
/// thread_op does for to_thread). The posted completion holds the link, not the frame: it finds no waiter
/// if the await was abandoned after the post, and the loop drops it if it closed meanwhile.
class future_link {
public:
  /// Who is resumed, on the awaiting loop's thread.
  class waiter {
  public:
    virtual void complete() noexcept = 0;

  protected:
    ~waiter() = default;
  };

  future_link(event_loop* loop, waiter* w) noexcept : waiter_(w), loop_(loop) {}
  future_link(const future_link&) = delete;
  future_link& operator=(const future_link&) = delete;

  /// Any thread (the future's done callback): queues the completion on the awaiting loop unless abandoned.
  static void post(const std::shared_ptr<future_link>& self) noexcept {
    std::lock_guard lock(self->mutex_);
    if (self->loop_ != nullptr)
      self->loop_->call_soon_threadsafe([link = self]() noexcept {
        if (waiter* w = std::exchange(link->waiter_, nullptr)) // null: abandoned after the post
          w->complete();
      });
  }
  /// The awaiting loop's thread: nobody waits any more.
  void abandon() noexcept {
    waiter_ = nullptr;
    std::lock_guard lock(mutex_);
    loop_ = nullptr;
  }

private:
  waiter* waiter_; // the awaiting loop's thread only
  std::mutex mutex_;
  event_loop* loop_; // guarded by mutex_; null after abandon()
};

/// The await of a wrap_future(): gives the future a done callback that resumes the awaiting task through
/// its loop's call_soon_threadsafe, and suspends. Cancelling the awaiting task (or a timeout scope
/// expiring) resumes it at once with the cancellation, and cancels the work (thread_future::cancel());
/// destroying the suspended frame (loop teardown) does the same. A future done already is not waited for.
template <class T> class future_awaiter final : public wait_node, future_link::waiter {
public:
  explicit future_awaiter(thread_future<T> f) noexcept : future_(std::move(f)) {}
  future_awaiter(const future_awaiter&) = delete;
  ~future_awaiter() { detach(); }

  bool await_ready() {
    event_loop& loop = running_loop("wrap_future()");
    if (!future_.valid())
      throw invalid_state_error("corio: wrap_future() of an empty thread_future (default-constructed, moved "
                                "from, taken by get(), or its wrap_future() awaited already)");
    loop_ = &loop;
    task = loop.current_task();
    if (task != nullptr && task->cancelling()) {
      (void)future_.cancel(); // the future is consumed: its work is unwanted, as when cancelled later
      task->raise_cancel();
    }
    return future_.done();
  }
  void await_suspend(std::coroutine_handle<> h) {
    handle = h;
    auto link = std::make_shared<future_link>(loop_, static_cast<future_link::waiter*>(this));
    // Runs at once, on this thread, if the future was done meanwhile: the completion is queued all the same.
    future_.add_done_callback([link]() noexcept { future_link::post(link); });
    link_ = std::move(link);
    waiting_ = true;
    loop_->begin_external_wait();
    event_loop::begin_wait(this);
  }
  T await_resume() {
    if (task != nullptr)
      task->check_cancel();
    return future_.get(); // done: returns at once
  }

  void complete() noexcept override {
    waiting_ = false;
    loop_->end_external_wait();
    loop_->wake(this);
  }
  void detach() noexcept override {
    if (!waiting_)
      return;
    waiting_ = false;
    link_->abandon();
    loop_->end_external_wait();
    (void)future_.cancel(); // false if the work is done already: its result is dropped with the future
  }
  [[nodiscard]] const char* what() const noexcept override { return "wrap_future()"; }

private:
  thread_future<T> future_;
  std::shared_ptr<future_link> link_;
  event_loop* loop_ = nullptr;
  bool waiting_ = false;
};

/// What wrap_future() returns: the future, not awaited yet. Movable until awaited; awaiting consumes it.
template <class T> class [[nodiscard]] wrapped_future {
public:
  explicit wrapped_future(thread_future<T> f) noexcept : future_(std::move(f)) {}
  future_awaiter<T> operator co_await() && noexcept { return future_awaiter<T>(std::move(future_)); }
  future_awaiter<T> operator co_await() & noexcept { return future_awaiter<T>(std::move(future_)); }

private:
  thread_future<T> future_;
};

} // namespace detail

/// Awaits a thread_future from a task, on any loop (asyncio.wrap_future): typically the result of
/// run_coroutine_threadsafe(other_loop, fn) called by a task of this loop. The task is suspended — no
/// thread blocks, nothing polls — and resumed on its own loop (through call_soon_threadsafe) once the
/// future is done; the await returns the value or rethrows the exception (cancelled_error if the work was
/// cancelled, loop_error if the other loop closed first). The future is consumed. Cancelling the awaiting
/// task, or a timeout scope expiring, raises at the await at once and cancels the work
/// (thread_future::cancel()), as asyncio's chained futures do; so does destroying the waiting frame. The
/// future may also belong to the awaiting task's own loop. invalid_state_error if f is empty.
///
///     auto f = corio::run_coroutine_threadsafe(other, [] { return fetch(); });
///     int v = co_await corio::wrap_future(std::move(f)); // this loop keeps running meanwhile
template <class T> [[nodiscard]] detail::wrapped_future<T> wrap_future(thread_future<T> f) {
  if (!f.valid())
    throw invalid_state_error("corio: wrap_future() of an empty thread_future (default-constructed, moved "
                              "from, or taken by get())");
  return detail::wrapped_future<T>(std::move(f));
}

} // namespace corio
