// The loop's clock: monotonic time, and the interface a mock clock implements.
#pragma once

#include <chrono>

namespace corio {

/// Loop time: monotonic, in nanoseconds (std::chrono::steady_clock's epoch for the real clock).
using duration = std::chrono::nanoseconds;
using time_point = std::chrono::time_point<std::chrono::steady_clock, duration>;

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
