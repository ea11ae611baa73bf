// corio::testing::mock_clock: virtual time for exact, instant timer tests.
#pragma once

#include "corio/clock.hpp"

namespace corio::testing {

/// A virtual clock. Time moves only when the test calls advance(), or when every task is blocked and
/// a timer is pending: the loop then jumps straight to that timer's deadline (tokio's paused time,
/// trio's autojump clock). So `co_await sleep(1h)` completes at once, and at exactly now() + 1h.
/// Starts at time_point{} + 1 hour.
class mock_clock final : public clock_source {
public:
  [[nodiscard]] time_point now() noexcept override { return now_; }
  bool advance_to(time_point deadline) noexcept override {
    if (deadline > now_)
      now_ = deadline;
    return true;
  }
  /// Moves time forward by d (up to the end of time); the loop runs what became due at its next iteration.
  void advance(duration d) noexcept { now_ = detail::saturating_add(now_, d); }

private:
  time_point now_ = time_point{} + std::chrono::hours(1);
};

} // namespace corio::testing
