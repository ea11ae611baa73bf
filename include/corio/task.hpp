// corio::task<T>: a lazy coroutine that can co_await, for use with the event loop (async def).
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "corio/detail/frame_pool.hpp"
#include "corio/detail/task_state.hpp"
#include "corio/errors.hpp"

namespace corio {

template <class T = void> class task;

namespace detail {

struct task_promise_base;
/// Debug mode (event_loop::options::debug): reports a task destroyed without being awaited or spawned
/// (asyncio's "coroutine ... was never awaited").
void warn_if_never_awaited(const task_promise_base& p) noexcept;

struct task_promise_base {
  std::exception_ptr exception;
  // Who takes over when the coroutine finishes: the coroutine awaiting it (a frame address), or, when it
  // was spawned, its task state (`root`). One pointer for both: a frame per task, a million tasks.
  void* next = nullptr;
  bool root = false;         // `next` is the task_state: the task was spawned
  bool inline_start = false; // being run from the awaiter's await_suspend (see task_awaiter)

  void set_continuation(std::coroutine_handle<> h) noexcept { next = h.address(); }
  void set_root(task_state* t) noexcept {
    next = t;
    root = true;
  }
  /// Awaited or spawned (else: destroyed without ever being awaited).
  [[nodiscard]] bool claimed() const noexcept { return next != nullptr; }

  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_deallocate(p, size); }

  static std::suspend_always initial_suspend() noexcept { return {}; }
  struct final_awaiter {
    static constexpr bool await_ready() noexcept { return false; }
    template <class P> static std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      task_promise_base& p = h.promise();
      if (p.root) {
        static_cast<task_state*>(p.next)->on_done(); // may destroy this frame: it is suspended, so that is allowed
        return std::noop_coroutine();
      }
      if (p.inline_start)
        return std::noop_coroutine(); // back into task_awaiter::await_suspend, which returns false
      return std::coroutine_handle<>::from_address(p.next);
    }
    static constexpr void await_resume() noexcept {}
  };
  static final_awaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { exception = std::current_exception(); }
};

template <class T> struct task_promise final : task_promise_base {
  std::optional<T> value;
  task<T> get_return_object() noexcept;
  template <class U = T> void return_value(U&& v) { value.emplace(std::forward<U>(v)); }
  T take() {
    if (exception)
      std::rethrow_exception(exception);
    if (!value)
      throw invalid_state_error("corio: task result already retrieved");
    T out = std::move(*value);
    value.reset();
    return out;
  }
};

template <class T> struct task_promise<T&> final : task_promise_base {
  T* value = nullptr;
  task<T&> get_return_object() noexcept;
  void return_value(T& v) noexcept { value = std::addressof(v); }
  T& take() {
    if (exception)
      std::rethrow_exception(exception);
    return *value;
  }
};

template <> struct task_promise<void> final : task_promise_base {
  task<void> get_return_object() noexcept;
  static void return_void() noexcept {}
  void take() const {
    if (exception)
      std::rethrow_exception(exception);
  }
};

} // namespace detail

/// A lazy coroutine returning T (Python's `async def`). Nothing runs until it is awaited
/// (`co_await t` runs it inside the awaiting task) or spawned (`corio::spawn(t)` makes it a task of its
/// own on the loop). Awaiting a task that completes without suspending costs no trip through the loop
/// and no stack: a chain of a million such awaits is flat on every compiler (HAZARDS.md §1).
/// Frames come from a recycling allocator. Move-only; awaiting it consumes its result. Await it once:
/// awaiting it from a second coroutine while the first still awaits it raises invalid_state_error, and
/// so does awaiting a finished task<T> whose value was taken; a finished task<void> or task<T&> awaited
/// again returns again, and one that failed raises its exception again.
template <class T> class [[nodiscard]] task {
public:
  using promise_type = detail::task_promise<T>;
  using value_type = T;

  task() noexcept = default;
  task(task&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
  task& operator=(task other) noexcept {
    std::swap(h_, other.h_);
    return *this;
  }
  ~task() {
    if (h_) {
      detail::warn_if_never_awaited(h_.promise());
      h_.destroy();
    }
  }

  /// True when there is a coroutine (not moved from, not spawned).
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(h_); }
  [[nodiscard]] bool done() const noexcept { return h_ && h_.done(); }

  struct awaiter {
    std::coroutine_handle<promise_type> h;

    [[nodiscard]] bool await_ready() const {
      if (!h)
        throw invalid_state_error("corio: awaiting an empty task (moved from or spawned)");
      // Awaited before and not done: another coroutine awaits it now (suspended inside it). Resuming it
      // from here would cut that wait short and leave the first awaiter waiting forever.
      if (h.promise().claimed() && !h.done())
        throw invalid_state_error("corio: a task is already being awaited (a task can be awaited once)");
      return h.done();
    }
    // The pattern that keeps the stack flat on g++ (HAZARDS.md §1): run the child right here; if it
    // finished, return false so the parent just continues; if it suspended, the parent suspends too
    // and the child's final_suspend will transfer to it.
    bool await_suspend(std::coroutine_handle<> parent) {
      promise_type& p = h.promise();
      p.set_continuation(parent);
      p.inline_start = true;
      h.resume();
      if (h.done())
        return false;
      p.inline_start = false;
      return true;
    }
    decltype(auto) await_resume() { return h.promise().take(); }
  };
  awaiter operator co_await() const& noexcept { return {h_}; }
  awaiter operator co_await() const&& noexcept { return {h_}; }

  /// Releases the coroutine (spawn takes it).
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(h_, nullptr); }

private:
  friend promise_type;
  explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

namespace detail {
template <class T> task<T> task_promise<T>::get_return_object() noexcept {
  return task<T>(std::coroutine_handle<task_promise>::from_promise(*this));
}
template <class T> task<T&> task_promise<T&>::get_return_object() noexcept {
  return task<T&>(std::coroutine_handle<task_promise>::from_promise(*this));
}
inline task<void> task_promise<void>::get_return_object() noexcept {
  return task<void>(std::coroutine_handle<task_promise>::from_promise(*this));
}
} // namespace detail

} // namespace corio
