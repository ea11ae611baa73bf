// corio::async_generator<T>: a coroutine that can co_await and co_yield (Python's async generators, PEP 525).
#pragma once

#include <concepts>
#include <coroutine>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "corio/detail/frame_pool.hpp"
#include "corio/errors.hpp"
#include "corio/task.hpp"

namespace corio {

template <class T> class async_generator;

namespace detail {

enum class agen_state : unsigned char {
  idle,     // at its initial suspend, or at a co_yield whose value next() has taken
  running,  // a next()/begin()/++it/aclose() is in flight (the body runs, or awaits something)
  yielded,  // at a co_yield; `value` points at the yielded object
  finished, // at its final suspend (returned, raised, or closed)
};

/// What does not depend on T.
struct async_generator_promise_base {
  std::coroutine_handle<> consumer; // the coroutine awaiting the next()/begin()/++it/aclose() in flight
  std::exception_ptr exception;     // escaped the body; rethrown by the await that sees the end
  agen_state state = agen_state::idle;
  bool started = false;    // resumed at least once
  bool inline_run = false; // being resumed from the consumer's await_suspend (HAZARDS.md §1)
  bool closing = false;    // aclose(): every co_yield raises generator_exit on resumption

  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_deallocate(p, size); }

  static std::suspend_always initial_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { exception = std::current_exception(); }
  static void return_void() noexcept {}

  /// Where a co_yield or the end of the body goes: back into the consumer's await_suspend (which then
  /// returns false: the consumer continues without suspending) if the body ran inline from there, else to
  /// the consumer, which suspended because the body awaited something that suspended.
  std::coroutine_handle<> suspend_to_consumer(agen_state s) noexcept {
    state = s;
    if (inline_run)
      return std::noop_coroutine();
    return consumer;
  }

  struct final_awaiter {
    static constexpr bool await_ready() noexcept { return false; }
    template <class P> static std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      return h.promise().suspend_to_consumer(agen_state::finished);
    }
    static constexpr void await_resume() noexcept {}
  };
  static final_awaiter final_suspend() noexcept { return {}; }

  /// Resumes the body from the consumer's await_suspend: the bool-returning pattern that keeps the stack
  /// flat on g++ 12 (HAZARDS.md §1). Returns true if the consumer must suspend: the body is suspended on
  /// something else (a sleep, I/O, a task), and will transfer to the consumer when it yields or ends.
  bool resume_from(std::coroutine_handle<> self, std::coroutine_handle<> awaiting) {
    consumer = awaiting;
    state = agen_state::running;
    started = true;
    inline_run = true;
    self.resume();
    inline_run = false;
    return state == agen_state::running;
  }

  /// The check before resuming the body.
  void check_not_running() const {
    if (state == agen_state::running) [[unlikely]]
      throw already_executing_error();
  }
  /// At the end: rethrows what escaped the body, once.
  void rethrow_if_failed() {
    if (exception) [[unlikely]]
      std::rethrow_exception(std::exchange(exception, nullptr));
  }
};

/// A co_yield operand that is not a T but makes one.
template <class U, class T>
concept agen_yieldable = !std::same_as<std::remove_cvref_t<U>, T> && std::constructible_from<T, U>;

template <class T> class async_generator_promise final : public async_generator_promise_base {
public:
  T* value = nullptr; // the yielded object: in the co_yield expression, or the copy in the yield awaiter

  async_generator<T> get_return_object() noexcept;

  /// `co_yield rvalue`: handed out in place (it lives in the frame until the body resumes).
  struct yield_awaiter {
    async_generator_promise* p;
    static constexpr bool await_ready() noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<>) const noexcept {
      return p->suspend_to_consumer(agen_state::yielded);
    }
    void await_resume() const {
      if (p->closing) [[unlikely]]
        throw generator_exit{};
    }
  };
  /// `co_yield lvalue` or a value of another type: a T of its own, so the consumer may move from it
  /// without touching the body's variable.
  struct copy_yield_awaiter {
    async_generator_promise* p;
    T copy;
    static constexpr bool await_ready() noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<>) noexcept {
      p->value = std::addressof(copy);
      return p->suspend_to_consumer(agen_state::yielded);
    }
    void await_resume() const {
      if (p->closing) [[unlikely]]
        throw generator_exit{};
    }
  };

  yield_awaiter yield_value(T&& v) noexcept {
    value = std::addressof(v);
    return yield_awaiter{this};
  }
  copy_yield_awaiter yield_value(const T& v) {
    static_assert(std::is_copy_constructible_v<T>,
                  "corio::async_generator: co_yield of an lvalue copies it, and T is move-only: co_yield std::move(x)");
    return copy_yield_awaiter{this, v};
  }
  template <agen_yieldable<T> U> copy_yield_awaiter yield_value(U&& v) {
    return copy_yield_awaiter{this, T(std::forward<U>(v))};
  }
};

template <class R>
concept agen_has_co_await = requires(R r) {
  r.operator co_await();
};
template <class R>
concept agen_is_awaiter = requires(R r) {
  r.await_ready();
};
/// What for_each awaits when fn returns it: a task, or anything with a member operator co_await or await_ready.
template <class R>
concept agen_awaitable_result = agen_has_co_await<R> || agen_is_awaiter<R>;

} // namespace detail

/// An asynchronous generator (Python's `async def` with `yield`, PEP 525): the body can `co_await`
/// anything a corio::task can (tasks, corio::sleep, I/O, join handles) and `co_yield` values of T.
///
/// Consuming it, from inside a task (or another async generator):
///
///     while (auto v = co_await gen.next()) use(*v);                 // std::optional<T>; nullopt at the end
///     for (auto it = co_await gen.begin(); it != gen.end(); co_await ++it) use(*it); // Python's `async for`
///       // (in a function template, write `(void)co_await ++it`: g++ 12 rejects the bare form there)
///     co_await corio::for_each(std::move(gen), fn);                 // fn(T&) may return void or a task
///
/// - Lazy: the body starts at the first next()/begin(). Never consumed, it never runs.
/// - It runs *inside the consumer's task*: a yield resumes the consumer directly, without a trip through
///   the event loop and without stack growth (a million synchronous yields keep the stack flat on g++ -O0,
///   HAZARDS.md §1). When the body awaits something that suspends, the consumer's task suspends with it;
///   when the body yields or ends after that, the consumer resumes.
/// - Cancelling the consumer's task raises cancelled_error at the body's await point (it is the same
///   task); it escapes the body (unless caught), the generator is finished, and the consumer's next()
///   rethrows it.
/// - An exception escaping the body is rethrown by the next()/begin()/++it that was running it; the
///   generator is finished afterwards (next() returns nullopt, iterators compare equal to end()).
/// - Yielded values: an rvalue of type T is handed out in place; an lvalue (or a value of another type
///   convertible to T) is copied into the frame first, so the consumer may move from what it gets without
///   changing the body's variable. Move-only T works (yield rvalues). next() moves the value out;
///   `*it` is a T& into the frame, valid until the generator is resumed again.
/// - Destroying an unfinished generator destroys its frame — the destructors of the body's live locals
///   run, nothing else of the body does. Use aclose() for cleanup that must await. Do not destroy (or
///   move from) a generator while a next()/begin()/++it/aclose() on it is in flight in another task.
/// - One thing at a time: next()/begin()/++it/aclose() while one is in flight (from another task, or from
///   the body itself) throws already_executing_error.
/// - Nesting (a generator consuming another) is ordinary nesting: each level adds a few stack frames while
///   it runs, so depth is bounded by the stack (about 20,000 levels with 8 MiB on g++ -O0; fewer under
///   ASan). There is no O(1) delegation (yield_from) as generator<T> has.
/// - The frame comes from corio's frame pool and is freed with the object, finished or not.
/// - PEP 525's asend() and athrow() are not provided: the body receives nothing from its consumer.
template <class T> class [[nodiscard]] async_generator {
  static_assert(std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T> && !std::is_array_v<T>,
                "corio::async_generator<T>: T must be a non-const, non-volatile object type (values are handed "
                "out by T& and moved out by next())");

public:
  using promise_type = detail::async_generator_promise<T>;
  using value_type = T;
  using reference = T&;

  class iterator;

private:
  using handle_type = std::coroutine_handle<promise_type>;
  using state = detail::agen_state;

  /// Shared by the awaiters that resume the body.
  struct resume_awaiter {
    handle_type h;
    /// Resumes the body (see async_generator_promise_base::resume_from).
    bool await_suspend(std::coroutine_handle<> consumer) { return h.promise().resume_from(h, consumer); }
  };

public:
  /// `co_await gen.next()`: the next value (moved out of the frame), or nullopt once the body has finished.
  struct next_awaiter : resume_awaiter {
    [[nodiscard]] bool await_ready() const {
      if (!this->h)
        return true;
      promise_type& p = this->h.promise();
      p.check_not_running();
      return p.state == state::finished;
    }
    std::optional<T> await_resume() {
      if (!this->h)
        return std::nullopt;
      promise_type& p = this->h.promise();
      if (p.state == state::finished) {
        p.rethrow_if_failed();
        return std::nullopt;
      }
      p.state = state::idle;
      return std::optional<T>(std::move(*std::exchange(p.value, nullptr)));
    }
  };

  /// `co_await gen.begin()`: an iterator at the next value not yet taken by next() (starting the body or
  /// resuming it if there is none), or at the end.
  struct begin_awaiter : resume_awaiter {
    [[nodiscard]] bool await_ready() const {
      if (!this->h)
        return true;
      promise_type& p = this->h.promise();
      p.check_not_running();
      return p.state == state::finished || p.state == state::yielded;
    }
    iterator await_resume() {
      if (!this->h)
        return iterator{};
      this->h.promise().rethrow_if_failed();
      return iterator{this->h};
    }
  };

  /// A position in the generator, for Python's `async for`:
  /// `for (auto it = co_await gen.begin(); it != gen.end(); co_await ++it)`. `*it` is a T& into the
  /// frame, valid until the generator is resumed. Copies share the generator's single position.
  class iterator {
  public:
    using value_type = T;
    using reference = T&;

    /// `co_await ++it`: resumes the body to its next co_yield or its end; rethrows what escaped the body.
    struct increment_awaiter : resume_awaiter {
      iterator* it;
      [[nodiscard]] bool await_ready() const {
        if (!this->h)
          return true;
        promise_type& p = this->h.promise();
        p.check_not_running();
        return p.state == state::finished;
      }
      iterator& await_resume() const {
        if (this->h)
          this->h.promise().rethrow_if_failed();
        return *it;
      }
    };

    iterator() noexcept = default;
    [[nodiscard]] reference operator*() const noexcept { return *h_.promise().value; }
    [[nodiscard]] T* operator->() const noexcept { return h_.promise().value; }
    [[nodiscard]] increment_awaiter operator++() noexcept { return increment_awaiter{{h_}, this}; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return !it.h_ || it.h_.promise().state == state::finished;
    }

  private:
    friend async_generator;
    explicit iterator(handle_type h) noexcept : h_(h) {}
    handle_type h_;
  };

  /// `co_await gen.aclose()` (Python's aclose()): finishes the generator early.
  /// - Not started: the body never runs. Finished: nothing happens.
  /// - Suspended at a co_yield: generator_exit is raised there, so the body can clean up — awaiting
  ///   included, though not inside the catch handler (C++ forbids it there: catch, set a flag, await after) —
  ///   and must then finish. generator_exit escaping the body is the normal outcome; any other exception
  ///   is rethrown here. A body that yields again instead gets ignored_exit_error thrown here, and the
  ///   generator is finished (its frame goes with the object).
  struct close_awaiter : resume_awaiter {
    [[nodiscard]] bool await_ready() const {
      if (!this->h)
        return true;
      promise_type& p = this->h.promise();
      p.check_not_running();
      return p.state == state::finished || !p.started;
    }
    bool await_suspend(std::coroutine_handle<> consumer) {
      this->h.promise().closing = true;
      return resume_awaiter::await_suspend(consumer);
    }
    void await_resume() const {
      if (!this->h)
        return;
      promise_type& p = this->h.promise();
      if (p.state != state::finished) { // not started (never will), or it yielded instead of finishing
        const bool ignored = p.started;
        p.state = state::finished;
        p.value = nullptr;
        if (ignored)
          throw ignored_exit_error();
        return;
      }
      if (std::exception_ptr e = std::exchange(p.exception, nullptr); e && !is_exit(e))
        std::rethrow_exception(e);
    }

  private:
    static bool is_exit(const std::exception_ptr& e) noexcept {
      try {
        std::rethrow_exception(e);
      } catch (const generator_exit&) {
        return true;
      } catch (...) {
        return false;
      }
    }
  };

  async_generator() noexcept = default;
  async_generator(async_generator&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
  async_generator& operator=(async_generator other) noexcept {
    std::swap(h_, other.h_);
    return *this;
  }
  ~async_generator() {
    if (h_)
      h_.destroy();
  }

  /// The awaitables described above: `co_await next()`, `co_await begin()` (compare with end()),
  /// `co_await aclose()`.
  [[nodiscard]] next_awaiter next() noexcept { return next_awaiter{{h_}}; }
  [[nodiscard]] begin_awaiter begin() noexcept { return begin_awaiter{{h_}}; }
  static std::default_sentinel_t end() noexcept { return {}; }
  [[nodiscard]] close_awaiter aclose() noexcept { return close_awaiter{{h_}}; }

  /// True once the body has finished (or for an empty, moved-from generator).
  [[nodiscard]] bool done() const noexcept { return !h_ || h_.promise().state == state::finished; }
  /// True while a next()/begin()/++it/aclose() is in flight.
  [[nodiscard]] bool running() const noexcept { return h_ && h_.promise().state == state::running; }

private:
  friend promise_type;
  explicit async_generator(handle_type h) noexcept : h_(h) {}
  handle_type h_;
};

namespace detail {
template <class T> async_generator<T> async_generator_promise<T>::get_return_object() noexcept {
  return async_generator<T>(std::coroutine_handle<async_generator_promise>::from_promise(*this));
}
} // namespace detail

/// Calls fn on every value of gen, in order (Python's `async for v in gen: await fn(v)`). fn gets a T&
/// (or a T&& if it only accepts rvalues, e.g. a move-only T by value); if it returns an awaitable (a
/// task), that is awaited before the next value. Exceptions from gen or fn propagate; gen is destroyed at
/// the end either way. Takes both by value (HAZARDS.md §2): pass `std::move(gen)` or a fresh generator,
/// and name a capturing lambda before the co_await full-expression.
template <class T, class F> task<void> for_each(async_generator<T> gen, F fn) {
  // `(void)`: g++ 12 rejects a bare co_await as the increment of a for statement in a template
  // ("insufficient contextual information to determine type").
  for (auto it = co_await gen.begin(); it != gen.end(); (void)co_await ++it) {
    if constexpr (std::is_invocable_v<F&, T&>) {
      if constexpr (detail::agen_awaitable_result<std::invoke_result_t<F&, T&>>)
        co_await std::invoke(fn, *it);
      else
        std::invoke(fn, *it);
    } else {
      static_assert(std::is_invocable_v<F&, T&&>, "corio::for_each: fn must accept the generator's values");
      if constexpr (detail::agen_awaitable_result<std::invoke_result_t<F&, T&&>>)
        co_await std::invoke(fn, std::move(*it));
      else
        std::invoke(fn, std::move(*it));
    }
  }
}

} // namespace corio
