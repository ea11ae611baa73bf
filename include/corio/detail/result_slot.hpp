// The result of work done on another thread: a value or an exception, taken once (internal).
#pragma once

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "corio/none.hpp"

namespace corio::detail {

/// Filled on the thread that did the work, taken on the thread that waited for it (the hand-over
/// between the two is the caller's business: a posted callback orders them).
template <class T> class result_slot {
public:
  template <class... A> void set_value(A&&... a) { value_.emplace(std::forward<A>(a)...); }
  void set_error(std::exception_ptr e) noexcept { error_ = std::move(e); }

  /// The value, or the exception rethrown. Leaves nothing behind: the slot's owner may be freed on
  /// another thread, and the value or exception must die on the thread that took it (an exception's
  /// refcount lives in libstdc++, whose atomics ThreadSanitizer does not see).
  T take() {
    if (error_)
      std::rethrow_exception(std::exchange(error_, nullptr));
    if constexpr (!std::is_void_v<T>) {
      T out = std::move(*value_);
      value_.reset();
      return out;
    }
  }

private:
  std::optional<void_to_none_t<T>> value_;
  std::exception_ptr error_;
};

} // namespace corio::detail
