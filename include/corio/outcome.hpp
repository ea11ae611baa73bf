// corio::outcome<T>: a value or the exception that took its place (what gather(return_exceptions, ...)
// gives for each awaitable, like the mix of results and exception objects asyncio.gather returns).
#pragma once

#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

#include "corio/errors.hpp"
#include "corio/none.hpp"

namespace corio {

/// Either a T or an exception_ptr — always exactly one of them. T may be an object type or an lvalue
/// reference; for "no value" use none_t (gather maps a task<void>'s result to outcome<none_t>).
/// Move-only when T is.
template <class T> class outcome {
  static_assert(!std::is_void_v<T>, "corio::outcome<void>: use outcome<corio::none_t>");
  static_assert(!std::is_rvalue_reference_v<T>, "corio::outcome<T&&> is not supported");
  using storage = std::conditional_t<std::is_reference_v<T>, std::reference_wrapper<std::remove_reference_t<T>>, T>;

public:
  using value_type = T;

  /// An outcome holding a value constructed from args.
  template <class... Args> [[nodiscard]] static outcome success(Args&&... args) {
    return outcome(std::in_place, std::forward<Args>(args)...);
  }
  /// An outcome holding the exception e; invalid_state_error if e is null.
  [[nodiscard]] static outcome failure(std::exception_ptr e) {
    if (!e)
      throw invalid_state_error("corio: outcome::failure(nullptr)");
    return outcome(std::move(e));
  }

  [[nodiscard]] bool has_value() const noexcept { return value_.has_value(); }
  [[nodiscard]] bool has_exception() const noexcept { return !value_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }

  /// The exception, or null when there is a value.
  [[nodiscard]] const std::exception_ptr& exception() const noexcept { return error_; }
  /// True if the exception is a cancelled_error (a task that was cancelled; timeout_error included).
  [[nodiscard]] bool cancelled() const noexcept { return is_cancellation(error_); }

  /// The value; the exception rethrown if there is none.
  decltype(auto) value() & {
    check();
    return get(*value_);
  }
  decltype(auto) value() const& {
    check();
    return get(*value_);
  }
  decltype(auto) value() && {
    check();
    if constexpr (std::is_reference_v<T>)
      return value_->get();
    else
      return std::move(*value_);
  }
  /// The value without a check (undefined if there is none).
  decltype(auto) operator*() & noexcept { return get(*value_); }
  decltype(auto) operator*() const& noexcept { return get(*value_); }
  auto* operator->() noexcept { return &get(*value_); }
  const auto* operator->() const noexcept { return &get(*value_); }

private:
  template <class... Args> explicit outcome(std::in_place_t, Args&&... args)
      : value_(std::in_place, std::forward<Args>(args)...) {}
  explicit outcome(std::exception_ptr e) noexcept : error_(std::move(e)) {}

  void check() const {
    if (!value_)
      std::rethrow_exception(error_);
  }
  static decltype(auto) get(storage& s) noexcept {
    if constexpr (std::is_reference_v<T>)
      return s.get();
    else
      return (s);
  }
  static decltype(auto) get(const storage& s) noexcept {
    if constexpr (std::is_reference_v<T>)
      return s.get();
    else
      return (s);
  }

  std::optional<storage> value_;
  std::exception_ptr error_;
};

} // namespace corio
