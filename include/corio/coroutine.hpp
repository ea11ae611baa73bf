// corio::coroutine<Y, S, R>: a two-way coroutine (PEP 342) with delegation and return values (PEP 380).
#pragma once

#include <concepts>
#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "corio/detail/chain.hpp"
#include "corio/errors.hpp"
#include "corio/none.hpp"
#include "corio/step.hpp"
#include "corio/yield_from.hpp"

namespace corio {

namespace detail {
/// Python's None among the values a coroutine<Y, S> can be sent: corio::none, or an empty optional.
template <class T> bool is_none_value(const T&) noexcept { return std::is_same_v<T, none_t>; }
template <class T> bool is_none_value(const std::optional<T>& v) noexcept { return !v.has_value(); }

template <class R> struct return_slot {
  std::optional<R> result;
  template <class U = R> void return_value(U&& v) { result.emplace(std::forward<U>(v)); }
};
template <> struct return_slot<void> {
  static void return_void() noexcept {}
};

} // namespace detail

/// A coroutine that yields Y (`void`: yields corio::none), receives S from send() (`void`: nothing)
/// and returns R. Lazy: the body starts at the first next().
///
/// Driving it, as in Python:
/// - `next()` resumes it with nothing sent (starts it; later, `co_yield` evaluates to `S{}`).
/// - `send(v)` resumes it and makes the pending `co_yield` evaluate to v. Sending to a coroutine that has
///   not started throws corio::just_started_error (`send(corio::none)` is next(), like send(None); so
///   is `send(std::nullopt)` when S is a std::optional).
/// - `throw_(e)` raises e at the suspension point; what the coroutine does next is the result.
///   Throwing into a coroutine that has not started finishes it and rethrows e, as does throwing into a
///   finished one. While delegating, e reaches the innermost frame; a corio::generator_exit closes the
///   delegates as close() does (PEP 380), and only the root may answer it with a yield.
/// - `close()` raises corio::generator_exit at the suspension point. Finishing, or letting
///   generator_exit (or nothing) escape, is a clean close; yielding instead throws
///   corio::ignored_exit_error; any other exception propagates. Closing a finished or never-started
///   coroutine just finishes it. While delegating, close() closes the delegate first: generator_exit
///   reaches the innermost frame, and each delegate that finishes cleanly makes generator_exit rise in
///   its delegator (PEP 380). One difference from Python: a delegate that yields instead makes close()
///   raise ignored_exit_error at once, with the whole chain left suspended there (Python raises the
///   RuntimeError in the delegator and drops the delegate).
/// - Each of next/send/throw_ returns a corio::step: yielded value, return value (Python's
///   StopIteration.value), or "exhausted" when it had already finished. Whatever the coroutine throws
///   propagates to the caller and finishes it. Resuming it from inside itself throws
///   corio::already_executing_error.
/// - `auto r = co_await corio::yield_from(sub);` delegates to `sub` (a coroutine<Y, S, R2>, or a
///   generator<Y> when S is void) exactly as PEP 380 says, with O(1) forwarding at any depth. Delegating
///   to a coroutine whose return value was already taken raises corio::coroutine_error (Python gives
///   None, which an R cannot hold; with R = void it simply ends at once).
/// Destroying an unfinished coroutine destroys its frames (innermost first) without running any more of
/// its code; call close() first for Python's close-on-collect behaviour.
template <class Y, class S = void, class R = void> class [[nodiscard]] coroutine {
  using object = detail::void_to_none_t<Y>;
  using chain = detail::chain_promise<object, S, false>;
  static_assert(!std::is_reference_v<Y>, "coroutine<Y, S, R>: Y must be an object type or void");
  static_assert(!std::is_reference_v<S>, "coroutine<Y, S, R>: S must be an object type or void");

public:
  using yield_type = object;
  using send_type = S;
  using return_type = R;
  using step_type = step<Y, R>;

private:
  struct no_send {}; // stands in for S = void, where send() does not exist
  using send_param = std::conditional_t<std::is_void_v<S>, no_send, S>;

public:
  class promise_type : public chain, public detail::return_slot<R> {
  public:
    promise_type() noexcept { this->attach(std::coroutine_handle<promise_type>::from_promise(*this)); }
    coroutine get_return_object() noexcept { return coroutine(this->self); }

    using chain::yield_value;
    template <detail::chain_source<chain> Source> auto await_transform(yield_from_t<Source> request) {
      return detail::delegate_awaiter<Source, chain>{std::forward<Source>(request.source), this};
    }
    /// Only `yield_from` may be awaited; a coroutine suspends at `co_yield`.
    template <class U> void await_transform(U&&) = delete;
  };

  coroutine() noexcept = default;
  coroutine(coroutine&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  coroutine& operator=(coroutine other) noexcept {
    std::swap(handle_, other.handle_);
    return *this;
  }
  ~coroutine() {
    if (handle_)
      detail::destroy_chain(promise());
  }

  /// Resumes with nothing sent: starts the coroutine, or makes the pending `co_yield` evaluate to S{}.
  step_type next() { return resume(); }

  /// Resumes it with `value` as the result of the pending `co_yield`; just_started_error if it has not
  /// started. Python's send(None) is next(), which starts it: `send(corio::none)`, and with S =
  /// std::optional<T>, `send(std::nullopt)`.
  step_type send(send_param value) requires(!std::is_void_v<S>) {
    if (!handle_)
      return {};
    promise_type& p = promise();
    if (p.value == nullptr) [[unlikely]] { // not waiting at a yield
      if (p.state == detail::chain_state::finished)
        return exhausted();
      detail::check_not_executing(p);
      if (detail::is_none_value(value))
        return resume(); // send(None) starts it
      throw just_started_error();
    }
    p.send = &value;
    detail::drive(p);
    return collect();
  }
  step_type send(none_t) requires(!std::is_void_v<S> && !std::is_same_v<S, none_t>) { return next(); }

  /// Raises `e` (an exception_ptr or an exception object) at the suspension point; see the class comment.
  step_type throw_(std::exception_ptr e) {
    if (!e)
      throw coroutine_error("coroutine::throw_: null exception_ptr");
    bool exit = false;
    try {
      std::rethrow_exception(e);
    } catch (const generator_exit&) {
      exit = true;
    } catch (...) {
    }
    return throw_exception(std::move(e), exit);
  }
  template <class E>
  requires(!std::is_same_v<std::remove_cvref_t<E>, std::exception_ptr>) step_type throw_(E&& e) {
    constexpr bool exit = std::is_base_of_v<generator_exit, std::remove_cvref_t<E>>;
    return throw_exception(std::make_exception_ptr(std::forward<E>(e)), exit);
  }

  /// Raises generator_exit at the suspension point; see the class comment.
  void close();

  /// Finished: returned, raised, closed, or moved from.
  [[nodiscard]] bool done() const noexcept { return !handle_ || promise().state == detail::chain_state::finished; }
  /// True while the body runs (Python's gi_running), also as the delegate of another coroutine's
  /// yield_from while that chain runs.
  [[nodiscard]] bool running() const noexcept {
    if (!handle_)
      return false;
    const detail::chain_link& root = *promise().root;
    return root.state == detail::chain_state::started && root.value == nullptr;
  }
  /// True once next()/send()/throw_() resumed the body.
  [[nodiscard]] bool started() const noexcept { return !handle_ || promise().state != detail::chain_state::initial; }

private:
  friend detail::chain_access;
  explicit coroutine(std::coroutine_handle<> h) noexcept : handle_(h) {}

  promise_type& promise() const noexcept {
    return std::coroutine_handle<promise_type>::from_address(handle_.address()).promise();
  }

  void finish() noexcept { std::exchange(handle_, nullptr).destroy(); }

  /// throw_(): `exit` says e is a generator_exit. PEP 380 treats that one as close() for the delegates:
  /// each one that finishes without raising makes generator_exit rise in its delegator, and one that
  /// yields instead makes throw_() raise ignored_exit_error, the chain left suspended there (as close()
  /// does). The root may answer it as it likes: a yield or a return is the result.
  step_type throw_exception(std::exception_ptr e, bool exit) {
    if (!handle_)
      std::rethrow_exception(e);
    promise_type& p = promise();
    detail::check_not_executing(p);
    if (p.value == nullptr) { // not started, or finished by a delegation
      finish();
      std::rethrow_exception(e);
    }
    if constexpr (!std::is_void_v<S>)
      p.send = nullptr; // the yield raises instead of reading a sent value
    const bool delegating = p.active != &p;
    if (exit && delegating)
      detail::mark_closing(p, true);
    detail::set_pending_throw(std::move(e));
    detail::drive(p);
    detail::clear_pending_throw();
    if (exit && delegating && p.value != nullptr) {
      const bool ignored = detail::delegate_closing(p);
      detail::mark_closing(p, false);
      if (ignored)
        throw ignored_exit_error();
    }
    return collect();
  }

  /// For yield_from: the return value of a sub-coroutine that has just finished.
  R take_result() {
    if constexpr (!std::is_void_v<R>) {
      std::optional<R>& slot = promise().result;
      if (!handle_ || !slot)
        throw coroutine_error("yield_from: the coroutine already finished and its return value was taken");
      R r = std::move(*slot);
      slot.reset(); // taken: a second yield_from of this coroutine raises instead of reading a moved-from R
      return r;
    }
  }

  /// next(): resumes with nothing sent. A started coroutine<Y, S> then receives S{} (Python's None).
  step_type resume() {
    if (!handle_)
      return {};
    promise_type& p = promise();
    if (p.value == nullptr) [[unlikely]] { // not waiting at a yield
      if (p.state == detail::chain_state::finished)
        return exhausted();
      detail::check_not_executing(p); // before touching the send slot of a running coroutine
      p.state = detail::chain_state::started;
      if constexpr (!std::is_void_v<S>)
        p.send = nullptr; // nothing reads it: the body starts from the top
      detail::drive(p);
      return collect();
    }
    if constexpr (!std::is_void_v<S>) {
      if constexpr (std::default_initializable<S>) {
        S nothing{};
        p.send = &nothing;
        detail::drive(p);
        return collect();
      } else {
        throw coroutine_error("coroutine::next(): the coroutine waits for a value and S has no default; use send()");
      }
    } else {
      detail::drive(p);
      return collect();
    }
  }

  /// The coroutine finished as the source of a yield_from, which took its result: only the frame is left.
  [[gnu::noinline]] step_type exhausted() noexcept {
    finish();
    return {};
  }

  step_type collect() {
    promise_type& p = promise();
    if (p.value != nullptr) [[likely]]
      return step_type::yielded(std::move(*p.element()));
    return collect_finished();
  }

  /// The root finished: rethrow what escaped it, or hand out its return value. Out of line, off the
  /// per-yield path.
  [[gnu::noinline]] step_type collect_finished() {
    promise_type& p = promise();
    std::exception_ptr e = std::exchange(p.exception, nullptr);
    if (e) {
      finish();
      std::rethrow_exception(e);
    }
    if constexpr (std::is_void_v<R>) {
      finish();
      return step_type::returned(none);
    } else {
      step_type s = step_type::returned(std::move(*p.result));
      finish();
      return s;
    }
  }

  std::coroutine_handle<> handle_;
};

template <class Y, class S, class R> void coroutine<Y, S, R>::close() {
  if (!handle_)
    return;
  promise_type& p = promise();
  detail::check_not_executing(p);
  if (p.value == nullptr) // not started, or finished by a delegation
    return finish();
  detail::mark_closing(p, true); // every frame of the chain, as it is now
  if constexpr (!std::is_void_v<S>)
    p.send = nullptr;
  detail::set_pending_throw(std::make_exception_ptr(generator_exit{}));
  detail::drive(p);
  detail::clear_pending_throw();
  if (p.value != nullptr)
    detail::mark_closing(p, false); // still suspended: the frames left are the chain's top part
  if (p.value != nullptr)
    throw ignored_exit_error(); // the coroutine stays suspended at the yield it answered with
  std::exception_ptr e = std::exchange(p.exception, nullptr);
  finish();
  if (e) {
    try {
      std::rethrow_exception(e);
    } catch (const generator_exit&) {
      // the expected way for a coroutine to answer close()
    }
  }
}

} // namespace corio
