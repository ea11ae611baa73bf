// corio::none: the value of a bare Python `yield`.
#pragma once

namespace corio {

/// The value yielded by a bare `yield` and the "nothing" sent by `next()` (Python's None).
/// `co_yield corio::none;` (or `co_yield {};`) in a `generator<>` or `coroutine<void, ...>`.
struct none_t {
  friend constexpr bool operator==(none_t, none_t) noexcept { return true; }
};
inline constexpr none_t none{};

namespace detail {
/// `void` as a yielded type means "yields none".
template <class T> struct void_to_none { using type = T; };
template <> struct void_to_none<void> { using type = none_t; };
template <class T> using void_to_none_t = typename void_to_none<T>::type;
} // namespace detail

} // namespace corio
