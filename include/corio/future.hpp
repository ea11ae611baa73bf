// corio::future<T>: a result that someone sets later (asyncio.Future).
#pragma once

#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "corio/detail/done_callbacks.hpp"
#include "corio/detail/unique_function.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/none.hpp"
#include "corio/this_task.hpp"

namespace corio {

template <class T = void> class future;

namespace detail {

template <class T> struct future_state {
  using value_type = void_to_none_t<T>;
  event_loop* loop = nullptr; // bound on first use: creation inside a loop, first await, or first set
  std::optional<value_type> value;
  std::exception_ptr error;
  bool done = false;
  bool cancelled = false;
  bool taken = false; // a move-only result was moved out
  wait_list waiters;
  done_callbacks callbacks;

  void bind() noexcept {
    if (loop == nullptr)
      loop = event_loop::current();
  }
  /// Marks the future done: wakes every waiter (in the order they came) and schedules the callbacks.
  void finish() {
    done = true;
    bind();
    while (wait_node* w = waiters.pop_front())
      loop->wake(w);
    callbacks.drain([this](unique_function cb) {
      if (loop != nullptr)
        loop->call_soon(std::move(cb));
      else
        cb(); // no loop anywhere: run them now
    });
  }
};

/// A coroutine awaiting a future. Cancelling the awaiting task cancels the future (asyncio's rule),
/// which wakes every waiter with cancelled_error.
template <class T> struct future_wait final : listed_wait_node {
  std::shared_ptr<future_state<T>> state;
  void detach() noexcept override { state->waiters.remove(this); }
  bool on_cancel() noexcept override {
    detach();
    if (!state->done) {
      state->cancelled = true;
      state->error = std::make_exception_ptr(cancelled_error());
      state->finish();
    }
    return true;
  }
  [[nodiscard]] const char* what() const noexcept override { return "awaiting a future"; }
};

} // namespace detail

/// A future: set_result / set_exception / cancel once, awaited by any number of tasks (each gets the
/// result: a copy when T is copyable; a move-only result goes to the first, and any later attempt to
/// take it throws invalid_state_error). Copies share one state. Single-threaded like the loop: from
/// another thread, set it through call_soon_threadsafe. It belongs to one loop: the one running where
/// it was made, else the first that awaits or completes it; awaiting it from a task of another loop
/// while it is not done raises loop_error (asyncio: "attached to a different loop").
template <class T> class future {
  using state_t = detail::future_state<T>;

public:
  using value_type = typename state_t::value_type;

  future() : s_(std::make_shared<state_t>()) { s_->bind(); }

  /// Done: a result or an exception was set, or it was cancelled.
  [[nodiscard]] bool done() const noexcept { return s_->done; }
  [[nodiscard]] bool cancelled() const noexcept { return s_->cancelled; }

  /// Completes the future with v. invalid_state_error if it is already done.
  template <class U = value_type> void set_result(U&& v) {
    check_pending("set_result");
    s_->value.emplace(std::forward<U>(v));
    s_->finish();
  }
  void set_result() requires std::is_void_v<T> { set_result(none); }
  /// Completes the future with the exception e (not null). invalid_state_error if it is already done.
  void set_exception(std::exception_ptr e) {
    if (!e)
      throw invalid_state_error("corio: future::set_exception(nullptr)");
    check_pending("set_exception");
    s_->error = std::move(e);
    s_->finish();
  }
  /// Cancels the future: waiters get cancelled_error. Returns false if it was already done.
  bool cancel() {
    if (s_->done)
      return false;
    s_->cancelled = true;
    s_->error = std::make_exception_ptr(cancelled_error());
    s_->finish();
    return true;
  }

  /// The result (see the class comment), or the exception rethrown; invalid_state_error if not done.
  decltype(auto) result() const {
    if (!s_->done)
      throw invalid_state_error("corio: future::result(): the future is not done");
    if (s_->error)
      std::rethrow_exception(s_->error);
    if constexpr (std::is_void_v<T>) {
      return;
    } else if constexpr (std::is_copy_constructible_v<T>) {
      return T(*s_->value);
    } else {
      if (s_->taken)
        throw invalid_state_error("corio: the future's move-only result was already taken");
      s_->taken = true;
      return T(std::move(*s_->value));
    }
  }
  /// The exception, or null; invalid_state_error if not done. A cancelled future gives its
  /// cancelled_error (asyncio's exception() raises CancelledError instead).
  [[nodiscard]] std::exception_ptr exception() const {
    if (!s_->done)
      throw invalid_state_error("corio: future::exception(): the future is not done");
    return s_->error;
  }
  /// Runs fn on the loop (call_soon) when the future is done; at once (scheduled) if it already is.
  /// Returns a key for remove_done_callback(): 0 when the future was already done.
  std::uint64_t add_done_callback(detail::unique_function fn) {
    if (!s_->done)
      return s_->callbacks.add(std::move(fn));
    s_->bind();
    if (s_->loop != nullptr)
      s_->loop->call_soon(std::move(fn));
    else
      fn();
    return 0;
  }
  /// Withdraws a callback add_done_callback() returned `key` for (asyncio's remove_done_callback): true
  /// if removed; false once the future is done or for a key that names none.
  bool remove_done_callback(std::uint64_t key) noexcept { return !s_->done && s_->callbacks.remove(key); }

  struct awaiter {
    std::shared_ptr<state_t> s;
    detail::future_wait<T> wait{};

    bool await_ready() {
      event_loop& loop = detail::await_point("awaiting a future");
      if (s->loop == nullptr)
        s->loop = &loop;
      else if (s->loop != &loop && !s->done) // its waiters are woken on its own loop: we never would be
        throw loop_error("corio: awaiting a future that belongs to another event loop");
      return s->done;
    }
    void await_suspend(std::coroutine_handle<> h) {
      wait.handle = h;
      wait.task = s->loop->current_task();
      wait.state = s;
      s->waiters.push_back(&wait);
      event_loop::begin_wait(&wait);
    }
    decltype(auto) await_resume() {
      if (wait.task != nullptr)
        wait.task->check_cancel();
      return future(s).result();
    }
    ~awaiter() {
      if (wait.linked)
        s->waiters.remove(&wait);
    }
  };
  awaiter operator co_await() const { return awaiter{s_}; }

private:
  explicit future(std::shared_ptr<state_t> s) noexcept : s_(std::move(s)) {}
  void check_pending(const char* op) const {
    if (s_->done)
      throw invalid_state_error(std::string("corio: future::") + op + "(): the future is already done");
  }
  std::shared_ptr<state_t> s_;
};

} // namespace corio
