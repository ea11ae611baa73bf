// The loop's clock: monotonic time, and the interface a mock clock implements.
#pragma once

#include <chrono>
#include <cmath>
#include <ratio>
#include <stdexcept>
#include <type_traits>

namespace corio {

/// Loop time: monotonic, in nanoseconds (std::chrono::steady_clock's epoch for the real clock).
using duration = std::chrono::nanoseconds;
using time_point = std::chrono::time_point<std::chrono::steady_clock, duration>;

namespace detail {
/// `t + d`, clamped to time_point's range: "now + duration::max()" is the end of time (a timer there
/// never fires), not a signed overflow into the past. Every deadline corio computes goes through it.
[[nodiscard]] constexpr time_point saturating_add(time_point t, duration d) noexcept {
  const duration since = t.time_since_epoch();
  if (d > duration::zero() && since > duration::max() - d)
    return time_point::max();
  if (d < duration::zero() && since < duration::min() - d)
    return time_point::min();
  return t + d;
}
/// `a - b`, clamped to duration's range.
[[nodiscard]] constexpr duration saturating_sub(time_point a, time_point b) noexcept {
  const duration x = a.time_since_epoch(), y = b.time_since_epoch();
  if (y < duration::zero() && x > duration::max() + y)
    return duration::max();
  if (y > duration::zero() && x < duration::min() + y)
    return duration::min();
  return x - y;
}
/// duration_cast to corio::duration, clamped to its range: hours::max() or a float duration of 1e300
/// seconds is "forever" (duration::max()), not an overflow. Throws std::invalid_argument for a NaN.
template <class Rep, class Period> [[nodiscard]] duration saturating_cast(std::chrono::duration<Rep, Period> d) {
  using r = std::ratio_divide<Period, duration::period>; // one tick of d in nanoseconds: r::num / r::den
  if constexpr (std::is_floating_point_v<Rep>) {
    if (std::isnan(d.count()))
      throw std::invalid_argument("corio: a duration is NaN");
  }
  const long double ns = static_cast<long double>(d.count()) * r::num / r::den;
  // 2^63 - 1 and -2^63 are exact in a long double (64-bit mantissa on x86-64, 113 bits on aarch64).
  if (ns >= static_cast<long double>(duration::max().count()))
    return duration::max();
  if (ns <= static_cast<long double>(duration::min().count()))
    return duration::min();
  if constexpr (std::is_integral_v<Rep> && (r::num == 1 || r::den == 1))
    return std::chrono::duration_cast<duration>(d); // exact; in range, so count * num does not overflow
  else
    return duration(static_cast<duration::rep>(ns)); // a float (whose own product could round up to
                                                     // 2^63), or an odd ratio (count * num could overflow)
}
} // namespace detail

/// Where a loop reads the time. The real clock is steady_clock; corio::testing::mock_clock is a
/// virtual one that jumps to the next timer when every task is blocked.
class clock_source {
public:
  virtual ~clock_source() = default;
  [[nodiscard]] virtual time_point now() noexcept = 0;
  /// Called by the loop when nothing is ready and the next timer is due at `deadline`. A virtual clock
  /// jumps there and returns true (the loop then polls without blocking); the real clock returns false.
  virtual bool advance_to(time_point deadline) noexcept {
    (void)deadline;
    return false;
  }
};

/// The real monotonic clock.
class steady_clock_source final : public clock_source {
public:
  [[nodiscard]] time_point now() noexcept override {
    return std::chrono::time_point_cast<duration>(std::chrono::steady_clock::now());
  }
};

} // namespace corio
