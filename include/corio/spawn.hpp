// corio::spawn / create_task and corio::join_handle<T>: a task of its own on the loop (asyncio.Task).
#pragma once

#include <cstdio>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "corio/context_var.hpp"
#include "corio/detail/frame_pool.hpp"
#include "corio/detail/task_state.hpp"
#include "corio/detail/unique_function.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/event_loop.hpp"
#include "corio/task.hpp"
#include "corio/task_ref.hpp"
#include "corio/this_task.hpp"

namespace corio {

namespace detail {

/// Where a finished task keeps its result once its frame is gone.
template <class T> struct task_result {
  std::optional<T> value;
  void take_from(task_promise<T>& p) noexcept { value = std::move(p.value); }
};
template <class T> struct task_result<T&> {
  T* value = nullptr;
  void take_from(task_promise<T&>& p) noexcept { value = p.value; }
};
template <> struct task_result<void> {
  static void take_from(task_promise<void>&) noexcept {}
};

/// A spawned task: the loop's task_state, the coroutine, the tasks awaiting it, done callbacks.
/// References: one while the coroutine runs, one per join_handle.
///
/// When the coroutine finishes, its result and exception move here and its frame is freed at once, so
/// what the frame's parameters own (a socket, a buffer) is released when the task ends, as asyncio
/// does, not when the last join_handle goes. (A result type whose move may throw keeps the frame until
/// then instead: the move happens where nothing may throw.)
template <class T> struct spawned final : task_state {
  static constexpr bool free_at_end =
      std::is_void_v<T> || std::is_reference_v<T> || std::is_nothrow_move_constructible_v<T>;

  spawned() noexcept : frame() {}
  spawned(const spawned&) = delete;
  spawned& operator=(const spawned&) = delete;
  ~spawned() {
    if (freed)
      error.~exception_ptr();
  }

  union {
    std::coroutine_handle<task_promise<T>> frame; // until the coroutine finished (or was abandoned)
    std::exception_ptr error;                     // after it finished and its frame was freed
  };
  int refs = 1;
  bool freed = false;     // the frame is gone and its outcome is here: `error` is the live member
  bool abandoned = false; // loop teardown destroyed the frame before it finished
  uncounted_wait_list joiners;
  [[no_unique_address]] task_result<T> result;

  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_deallocate(p, size); }

  /// The exception the task ended with (null: none); only once done and not abandoned.
  [[nodiscard]] std::exception_ptr& exception() noexcept { return freed ? error : frame.promise().exception; }

  void start() noexcept override {
    if (cancel_requests > 0 && !starts_if_cancelled) [[unlikely]]
      return end_unstarted();
    frame.resume();
  }
  /// Cancelled before its first step (asyncio: the CancelledError is thrown into the coroutine before its
  /// first line): the body never runs. The task ends as if its first await point had raised the cancel:
  /// its frame goes (its parameters' destructors run), its awaiters wake, its done callbacks run.
  void end_unstarted() noexcept {
    task_promise<T>& p = frame.promise();
    try {
      raise_cancel(); // cancelled_error with the cancel's message
    } catch (...) {
      p.exception = std::current_exception();
    }
    on_done();
  }
  void on_done() noexcept override {
    done = true;
    loop->remove_task(this);
    end_cancelled_if_cancel_unraised();
    if constexpr (free_at_end) {
      // We are inside the frame's final suspend: it is suspended, so destroying it here is allowed,
      // and nothing touches it afterwards.
      task_promise<T>& p = frame.promise();
      result.take_from(p);
      std::exception_ptr e = std::move(p.exception);
      frame.destroy();
      new (&error) std::exception_ptr(std::move(e));
      freed = true;
    }
    while (wait_node* w = joiners.pop_front())
      loop->wake(w);
    if (extras)
      extras->done_callbacks.drain([this](unique_function fn) { loop->call_soon(std::move(fn)); });
    release();
  }
  /// A task that returned while a cancel() it never saw raised is pending ends cancelled, its result
  /// dropped (asyncio: "Task is cancelled right before coro stops"). One that raised keeps its exception.
  void end_cancelled_if_cancel_unraised() noexcept {
    if (!cancel_unraised || cancel_requests == 0) [[likely]]
      return;
    task_promise<T>& p = frame.promise();
    if (p.exception)
      return;
    if constexpr (std::is_reference_v<T>)
      p.value = nullptr;
    else if constexpr (!std::is_void_v<T>)
      p.value.reset();
    try {
      raise_cancel(); // cancelled_error with the cancel's message
    } catch (...) {
      p.exception = std::current_exception();
    }
  }
  void abandon() noexcept override {
    // Loop teardown: the coroutine never finishes. Its frame goes now (running its locals'
    // destructors); the state stays for join_handles still held.
    done = true;
    abandoned = true;
    frame.destroy();
    frame = {};
    ++refs; // done callbacks may hold join_handles on us: drop them while we are pinned
    if (extras)
      extras->done_callbacks.clear();
    release(); // the pin
    release(); // the running reference
  }
  void retain() noexcept override { ++refs; }
  void release() noexcept override {
    if (--refs > 0)
      return;
    if (done && !abandoned && !retrieved && exception() && !is_cancellation(exception()))
      report_never_retrieved();
    if (!freed && frame)
      frame.destroy();
    delete this;
  }
  /// To the loop's exception handler when on its thread (it exists then); else (a join_handle dropped
  /// after its loop closed) the default, which needs no loop.
  void report_never_retrieved() noexcept {
    try {
      std::string l = label();
      exception_context c{"task " + l + " exception was never retrieved", exception(), std::move(l)};
      if (event_loop::current() == loop)
        loop->call_exception_handler(c);
      else
        event_loop::default_exception_handler(c);
    } catch (...) {
      std::fputs("corio: a task's exception was never retrieved\n", stderr); // out of memory
    }
  }
  [[nodiscard]] std::string label() const {
    const std::string& n = task_name();
    std::string out = n.empty() ? "#" : "'";
    out.append(n.empty() ? std::to_string(id) : n);
    if (!n.empty())
      out.push_back('\'');
    return out;
  }
};

/// A coroutine awaiting a join_handle. Cancelling the awaiting task cancels the awaited one too (as
/// asyncio does) and keeps waiting for it to finish; shield() prevents that.
template <class T> struct join_wait final : listed_wait_node {
  spawned<T>* target = nullptr;
  void detach() noexcept override { target->joiners.remove(this); }
  bool on_cancel() noexcept override {
    cancel_for_waiter(task, *target);
    return false;
  }
  [[nodiscard]] const char* what() const noexcept override { return "awaiting a task"; }
  [[nodiscard]] const task_state* awaited_task() const noexcept override { return target; }
};

} // namespace detail

/// A handle on a spawned task (asyncio.Task): await it for its result, cancel it, ask how it ended.
/// Copyable; the task runs to completion whether or not handles remain. `co_await h` from a task of
/// another loop raises loop_error while the task is not done (asyncio: "attached to a different loop"),
/// and from the task itself invalid_state_error ("a task cannot await itself").
template <class T = void> class join_handle {
public:
  join_handle() noexcept = default;
  explicit join_handle(detail::spawned<T>* s) noexcept : s_(s) { ++s_->refs; }
  join_handle(const join_handle& o) noexcept : s_(o.s_) {
    if (s_)
      ++s_->refs;
  }
  join_handle(join_handle&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  join_handle& operator=(join_handle o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~join_handle() {
    if (s_)
      s_->release();
  }

  [[nodiscard]] bool valid() const noexcept { return s_ != nullptr; }
  [[nodiscard]] bool done() const { return state().done; }
  /// Requests cancellation: cancelled_error is raised at the task's current await point, or at its
  /// next one if it is running or about to run. A task cancelled before it started never starts, as in
  /// asyncio: its body does not run, its frame is destroyed (its parameters with it) and it ends
  /// cancelled. A task that returns before reaching an await point ends cancelled, its result dropped,
  /// as in asyncio. Returns false if the task already finished.
  bool cancel() noexcept { return s_ != nullptr && s_->loop->cancel_task(s_); }
  /// cancel() with a message (asyncio's Task.cancel(msg)): the cancelled_error raised in the task carries
  /// it (what(), message()); the last message given wins. A task it awaits (`co_await handle`) and the
  /// children of a gather() it awaits are cancelled in turn with the same message, as in asyncio; the
  /// children a task_group cancels are not (asyncio's TaskGroup cancels them without one).
  bool cancel(std::string message) { return s_ != nullptr && detail::cancel_with_message(*s_, std::move(message)); }
  /// Cancels the task because `waiter`, a task awaiting it, is being cancelled: with the waiter's message
  /// if it has one (internal: gather()).
  bool cancel_for_waiter(const detail::task_state* waiter) noexcept {
    return s_ != nullptr && detail::cancel_for_waiter(waiter, *s_);
  }
  /// The loop the task runs on while it is not done; null once it is done (internal: what wait(),
  /// gather(), shield() and as_completed() check, as `co_await h` does, before watching the task).
  [[nodiscard]] event_loop* loop_if_pending() const {
    auto& s = state();
    return s.done ? nullptr : s.loop;
  }
  /// True if the task finished by raising cancelled_error (or timeout_error).
  [[nodiscard]] bool cancelled() const {
    auto& s = state();
    if (!s.done)
      return false;
    return s.abandoned || is_cancellation(s.exception());
  }
  /// The task's result (a copy when T is copyable, else moved out: a second call then throws
  /// invalid_state_error), or its exception rethrown. invalid_state_error if it has not finished.
  decltype(auto) result() {
    auto& s = state();
    if (!s.done)
      throw invalid_state_error("corio: the task has not finished");
    if (s.abandoned)
      throw cancelled_error(); // abandoned at loop teardown
    s.retrieved = true;
    if constexpr (!detail::spawned<T>::free_at_end) {
      auto& p = s.frame.promise();
      if constexpr (!std::is_copy_constructible_v<T>) {
        return p.take();
      } else {
        if (p.exception)
          std::rethrow_exception(p.exception);
        return T(*p.value);
      }
    } else {
      if (s.error)
        std::rethrow_exception(s.error);
      if constexpr (std::is_void_v<T>) {
        return;
      } else if constexpr (std::is_reference_v<T>) {
        return static_cast<T>(*s.result.value);
      } else if constexpr (std::is_copy_constructible_v<T>) {
        return T(*s.result.value);
      } else {
        if (!s.result.value)
          throw invalid_state_error("corio: task result already retrieved");
        T out = std::move(*s.result.value);
        s.result.value.reset();
        return out;
      }
    }
  }
  /// The exception the task finished with, or null. invalid_state_error if it has not finished. A
  /// cancelled task gives its cancelled_error (asyncio's exception() raises CancelledError instead).
  [[nodiscard]] std::exception_ptr exception() {
    auto& s = state();
    if (!s.done)
      throw invalid_state_error("corio: the task has not finished");
    s.retrieved = true;
    return s.abandoned ? std::make_exception_ptr(cancelled_error()) : s.exception();
  }
  /// Runs fn on the loop (call_soon) once the task is done; at once if it already is. Returns a key for
  /// remove_done_callback(): 0 when the task was already done (fn is scheduled then, for good).
  std::uint64_t add_done_callback(detail::unique_function fn) {
    auto& s = state();
    if (s.done) {
      s.loop->call_soon(std::move(fn));
      return 0;
    }
    return s.extra().done_callbacks.add(std::move(fn));
  }
  /// Withdraws a callback that add_done_callback() returned `key` for (asyncio's remove_done_callback).
  /// True if it was removed; false once the task is done (its callbacks were scheduled then) or for a
  /// key that names none.
  bool remove_done_callback(std::uint64_t key) {
    auto& s = state();
    return !s.done && s.extras && s.extras->done_callbacks.remove(key);
  }
  /// A handle on the task that does not know its result type (what current_task() gives).
  operator task_ref() const noexcept { return task_ref(s_); } // NOLINT(google-explicit-constructor)
  [[nodiscard]] std::uint64_t id() const { return state().id; }
  /// The name given to spawn() or set_name(); empty: none (the task is "#id" in reports).
  [[nodiscard]] const std::string& name() const { return state().task_name(); }
  /// Renames the task (asyncio's Task.set_name): dump_tasks() and error reports show the new name.
  void set_name(std::string_view n) { state().extra().name = n; }

  struct awaiter {
    detail::spawned<T>* s;
    join_handle* h;
    detail::join_wait<T> wait{};

    [[nodiscard]] bool await_ready() const {
      event_loop* here = event_loop::current();
      if (here != s->loop && !s->done) // nothing on this loop would ever wake us
        throw loop_error("corio: awaiting a join_handle whose task belongs to another event loop");
      // The awaiting task is the running loop's (a done task's loop may be another one, or gone).
      if (detail::task_state* t = here != nullptr ? here->current_task() : nullptr) {
        if (t == s)
          throw invalid_state_error("corio: a task cannot await its own join_handle");
        t->check_cancel();
      }
      return s->done;
    }
    void await_suspend(std::coroutine_handle<> c) {
      wait.handle = c;
      wait.task = s->loop->current_task();
      wait.target = s;
      s->joiners.push_back(&wait);
      event_loop::begin_wait(&wait);
    }
    decltype(auto) await_resume() {
      if (wait.task != nullptr && wait.task->cancelling()) {
        s->retrieved = true; // the awaited task was cancelled along with us: its outcome is ours
        wait.task->raise_cancel();
      }
      return h->result();
    }
    ~awaiter() {
      if (wait.linked)
        s->joiners.remove(&wait);
    }
  };
  awaiter operator co_await() & { return awaiter{&state(), this}; }
  awaiter operator co_await() && { return awaiter{&state(), this}; }

private:
  detail::spawned<T>& state() const {
    if (s_ == nullptr)
      throw invalid_state_error("corio: empty join_handle");
    return *s_;
  }
  detail::spawned<T>* s_ = nullptr;
};

namespace detail {
/// The task state for t on loop, registered as a live task, its coroutine not started yet.
template <class T> spawned<T>* make_spawned(event_loop& loop, task<T>& t, std::string_view name) {
  if (!t.valid())
    throw invalid_state_error("corio: spawn() of an empty task (moved from or already spawned)");
  if (loop.is_closed())
    throw loop_error("corio: spawn() on a closed event loop");
  auto owner = std::unique_ptr<spawned<T>>(new spawned<T>());
  if (!name.empty())
    owner->extra().name = name;
  if (contexts_used.load(std::memory_order_relaxed)) [[unlikely]]
    inherit_context(*owner); // a copy of the spawner's context (context_var.hpp)
  auto* s = owner.release();
  s->frame = t.release();
  s->frame.promise().set_root(s);
  loop.add_task(s);
  return s;
}
} // namespace detail

/// Unlike spawn() on a lazy loop, the task starts at once, inside this call, and runs until its first suspension
/// (asyncio's eager_start=True / eager_task_factory): a task that finishes without waiting for
/// anything is done when spawn_eager returns, without a trip through the loop. While it runs it is the
/// current task (cancellation, timeouts and dump_tasks see it); then the caller goes on. Called when
/// `loop` is not running on this thread, it schedules the task as spawn() does.
template <class T> join_handle<T> spawn_eager(event_loop& loop, task<T> t, std::string_view name = {}) {
  auto* s = detail::make_spawned(loop, t, name);
  join_handle<T> h(s); // holds the state if the task ends inside run_eagerly
  if (event_loop::current() == &loop && loop.is_running())
    loop.run_eagerly(s->frame, s);
  else
    loop.schedule_start(s);
  return h;
}

/// spawn_eager() on the loop running this thread; loop_error if none is.
template <class T> join_handle<T> spawn_eager(task<T> t, std::string_view name = {}) {
  return spawn_eager(detail::running_loop("spawn_eager()"), std::move(t), name);
}

namespace detail {
/// What spawn_lazy() does with a task cancelled before its first step.
enum class start_policy : bool {
  skip_if_cancelled, // it never starts (asyncio; what spawn() does)
  always,            // it starts, and the cancel comes at its first await point: corio's own wrappers
                     // whose body does bookkeeping (reports an outcome, unregisters) that must not be skipped
};
/// spawn() that starts the task at the loop's next iteration whatever the loop's eager_tasks() says:
/// corio's own tasks, whose spawners finish setting up what the task uses after spawning it.
template <class T> join_handle<T> spawn_lazy(event_loop& loop, task<T> t, std::string_view name = {},
                                             start_policy policy = start_policy::skip_if_cancelled) {
  auto* s = make_spawned(loop, t, name);
  s->starts_if_cancelled = policy == start_policy::always;
  loop.schedule_start(s);
  return join_handle<T>(s);
}
} // namespace detail

/// Schedules `t` as a task of its own on `loop` (asyncio.create_task): it starts at the loop's next
/// iteration and runs whether or not the returned handle is kept. On a loop with eager_tasks() on
/// (asyncio's loop.set_task_factory(asyncio.eager_task_factory)) it is spawn_eager().
template <class T> join_handle<T> spawn(event_loop& loop, task<T> t, std::string_view name = {}) {
  if (loop.eager_tasks())
    return spawn_eager(loop, std::move(t), name);
  return detail::spawn_lazy(loop, std::move(t), name);
}

/// spawn() on the loop running this thread; loop_error if none is.
template <class T> join_handle<T> spawn(task<T> t, std::string_view name = {}) {
  return spawn(detail::running_loop("spawn()"), std::move(t), name);
}

/// asyncio's name for spawn().
template <class T> join_handle<T> create_task(task<T> t, std::string_view name = {}) {
  return spawn(std::move(t), name);
}

} // namespace corio
