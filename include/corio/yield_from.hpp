// corio::yield_from: delegation to a sub-generator or sub-coroutine (PEP 380 `yield from`).
#pragma once

#include <type_traits>
#include <utility>

namespace corio {

/// What `yield_from(x)` returns: a request to delegate to `x`, consumed by the promise of the
/// generator or coroutine it appears in. `Source` is a reference for lvalues, a value for rvalues
/// (the request then owns the source until the delegation ends).
template <class Source> struct yield_from_t { Source source; };

/// In a generator:  `co_yield corio::yield_from(sub_generator_or_range);`
/// In a coroutine:  `auto r = co_await corio::yield_from(sub_coroutine);` — r is its return value.
/// Every value the source yields is passed straight to whoever drives the outer one, and (for
/// coroutines) every send/throw_/close goes straight to the innermost source: O(1) at any depth.
template <class Source> [[nodiscard]] yield_from_t<Source> yield_from(Source&& source) {
  return {std::forward<Source>(source)};
}

} // namespace corio
