// corio::step<Y, R>: what one next()/send()/throw_() of a coroutine produced.
#pragma once

#include <optional>
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

  step() noexcept = default; // exhausted
  static step yielded(yield_type v) {
    step s;
    s.yielded_.emplace(std::move(v));
    return s;
  }
  static step returned(return_type v) {
    step s;
    s.returned_.emplace(std::move(v));
    return s;
  }

  [[nodiscard]] kind what() const noexcept {
    return yielded_ ? kind::yielded : returned_ ? kind::returned : kind::exhausted;
  }
  [[nodiscard]] bool is_yield() const noexcept { return yielded_.has_value(); }
  [[nodiscard]] bool is_return() const noexcept { return returned_.has_value(); }
  /// Finished: returned now or already exhausted.
  [[nodiscard]] bool done() const noexcept { return !is_yield(); }
  explicit operator bool() const noexcept { return is_yield(); }

  /// The yielded value; throws corio::bad_step_access if the coroutine did not yield.
  [[nodiscard]] yield_type& value() & { return get(yielded_, "step::value(): the coroutine did not yield"); }
  [[nodiscard]] const yield_type& value() const& { return const_cast<step&>(*this).value(); }
  [[nodiscard]] yield_type&& value() && { return std::move(value()); }

  /// The return value; throws corio::bad_step_access unless the coroutine returned during this call.
  [[nodiscard]] return_type& return_value() & {
    return get(returned_, "step::return_value(): the coroutine did not return in this step");
  }
  [[nodiscard]] const return_type& return_value() const& { return const_cast<step&>(*this).return_value(); }
  [[nodiscard]] return_type&& return_value() && { return std::move(return_value()); }

private:
  template <class V> static V& get(std::optional<V>& slot, const char* message) {
    if (!slot)
      throw bad_step_access(message);
    return *slot;
  }

  // At most one is set. (Two optionals rather than a std::variant: g++ 12 reports false
  // -Wmaybe-uninitialized for variants of trivial types at -O1.)
  std::optional<yield_type> yielded_;
  std::optional<return_type> returned_;
};

} // namespace corio
