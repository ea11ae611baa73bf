// corio::step<Y, R>: what one next()/send()/throw_() of a coroutine produced.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

#include "corio/errors.hpp"
#include "corio/none.hpp"

namespace corio {

/// The outcome of resuming a coroutine once, the C++ form of Python's "a value, or StopIteration(r)":
/// - yielded:   the coroutine suspended at a `co_yield`; `value()` is what it yielded.
/// - returned:  the coroutine finished during this call; `return_value()` is what it returned
///              (`corio::none` for a void coroutine). Python's StopIteration.value.
/// - exhausted: the coroutine had already finished (or was closed) before this call.
/// `if (step)` / `while (auto s = co.send(x))` test for "yielded".
template <class Y, class R = void> class step {
public:
  using yield_type = detail::void_to_none_t<Y>;
  using return_type = detail::void_to_none_t<R>;
  enum class kind : unsigned char { exhausted, yielded, returned };

  step() noexcept {} // exhausted
  static step yielded(yield_type v) {
    step s;
    std::construct_at(&s.yielded_, std::move(v));
    s.kind_ = kind::yielded;
    return s;
  }
  static step returned(return_type v) {
    step s;
    std::construct_at(&s.returned_, std::move(v));
    s.kind_ = kind::returned;
    return s;
  }
  step(const step& other) requires(
      std::is_copy_constructible_v<yield_type>&& std::is_copy_constructible_v<return_type>) {
    assign(other);
  }
  step(step&& other) noexcept { assign(std::move(other)); }
  step& operator=(const step& other) requires(
      std::is_copy_constructible_v<yield_type>&& std::is_copy_constructible_v<return_type>) {
    if (this != &other) {
      reset();
      assign(other);
    }
    return *this;
  }
  step& operator=(step&& other) noexcept {
    if (this != &other) {
      reset();
      assign(std::move(other));
    }
    return *this;
  }
  ~step() { reset(); }

  [[nodiscard]] kind what() const noexcept { return kind_; }
  [[nodiscard]] bool is_yield() const noexcept { return kind_ == kind::yielded; }
  [[nodiscard]] bool is_return() const noexcept { return kind_ == kind::returned; }
  /// Finished: returned now or already exhausted.
  [[nodiscard]] bool done() const noexcept { return kind_ != kind::yielded; }
  explicit operator bool() const noexcept { return is_yield(); }

  /// The yielded value; throws corio::bad_step_access if the coroutine did not yield.
  [[nodiscard]] yield_type& value() & {
    check(kind::yielded, "step::value(): the coroutine did not yield");
    return yielded_;
  }
  [[nodiscard]] const yield_type& value() const& { return const_cast<step&>(*this).value(); }
  [[nodiscard]] yield_type&& value() && { return std::move(value()); }

  /// The return value; throws corio::bad_step_access unless the coroutine returned during this call.
  [[nodiscard]] return_type& return_value() & {
    check(kind::returned, "step::return_value(): the coroutine did not return in this step");
    return returned_;
  }
  [[nodiscard]] const return_type& return_value() const& { return const_cast<step&>(*this).return_value(); }
  [[nodiscard]] return_type&& return_value() && { return std::move(return_value()); }

private:
  void check(kind k, const char* message) const {
    if (kind_ != k)
      throw bad_step_access(message);
  }
  template <class Other> void assign(Other&& other) {
    if (other.kind_ == kind::yielded)
      std::construct_at(&yielded_, std::forward<Other>(other).yielded_);
    else if (other.kind_ == kind::returned)
      std::construct_at(&returned_, std::forward<Other>(other).returned_);
    kind_ = other.kind_;
  }
  void reset() noexcept {
    if (kind_ == kind::yielded)
      std::destroy_at(&yielded_);
    else if (kind_ == kind::returned)
      std::destroy_at(&returned_);
    kind_ = kind::exhausted;
  }

  // A tagged union by hand: std::variant and std::optional of trivial types both draw false
  // -Wmaybe-uninitialized warnings from g++ 12 at -O1/-O2 where a step is returned.
  kind kind_ = kind::exhausted;
  union {
    yield_type yielded_;
    return_type returned_;
  };
};

} // namespace corio
