// corio::step<Y, R>: what one next()/send()/throw_() of a coroutine produced.
#pragma once

#include <utility>
#include <variant>

#include "corio/errors.hpp"
#include "corio/none.hpp"

namespace corio {

/// The outcome of resuming a coroutine once, the C++ form of Python's "a value, or StopIteration(r)":
/// - yielded:   the coroutine suspended at a `co_yield`; `value()` is what it yielded.
/// - returned:  the coroutine finished during this call; `return_value()` is what it returned
///              (`corio::none` for a void coroutine). Python's StopIteration.value.
/// - exhausted: the coroutine had already finished (or was closed) before this call.
/// `if (step)` / `while (auto s = co.send(x))` test for "yielded".
template <class Y, class R = void> class [[nodiscard]] step {
public:
  using yield_type = detail::void_to_none_t<Y>;
  using return_type = detail::void_to_none_t<R>;
  enum class kind : unsigned char { exhausted, yielded, returned };

  step() noexcept = default; // exhausted
  static step yielded(yield_type v) { return step(std::in_place_index<1>, std::move(v)); }
  static step returned(return_type v) { return step(std::in_place_index<2>, std::move(v)); }

  [[nodiscard]] kind what() const noexcept { return static_cast<kind>(v_.index()); }
  [[nodiscard]] bool is_yield() const noexcept { return v_.index() == 1; }
  [[nodiscard]] bool is_return() const noexcept { return v_.index() == 2; }
  /// Finished: returned now or already exhausted.
  [[nodiscard]] bool done() const noexcept { return v_.index() != 1; }
  explicit operator bool() const noexcept { return is_yield(); }

  /// The yielded value; throws corio::bad_step_access if the coroutine did not yield.
  [[nodiscard]] yield_type& value() & { return get<1>("step::value(): the coroutine did not yield"); }
  [[nodiscard]] const yield_type& value() const& { return const_cast<step&>(*this).value(); }
  [[nodiscard]] yield_type&& value() && { return std::move(value()); }

  /// The return value; throws corio::bad_step_access unless the coroutine returned during this call.
  [[nodiscard]] return_type& return_value() & {
    return get<2>("step::return_value(): the coroutine did not return in this step");
  }
  [[nodiscard]] const return_type& return_value() const& { return const_cast<step&>(*this).return_value(); }
  [[nodiscard]] return_type&& return_value() && { return std::move(return_value()); }

private:
  template <std::size_t I, class V> step(std::in_place_index_t<I> i, V&& v) : v_(i, std::forward<V>(v)) {}

  template <std::size_t I> auto& get(const char* message) {
    if (v_.index() != I)
      throw bad_step_access(message);
    return *std::get_if<I>(&v_);
  }

  std::variant<std::monostate, yield_type, return_type> v_;
};

} // namespace corio
