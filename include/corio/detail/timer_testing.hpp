// timer_testing: a hook for tests of timer_handle's generation check, which would otherwise need
// billions of reuses of one node (internal; not for use outside tests).
#pragma once

#include <cstdint>

#include "corio/event_loop.hpp"

namespace corio::detail {

struct timer_testing {
  /// The node behind `h` (to check that two handles share one).
  [[nodiscard]] static const void* node(const timer_handle& h) noexcept;
  /// As if the node behind `h`, scheduled with h's callback, had been freed and scheduled again `reuses`
  /// times, its callback now the latest one: the node's generation goes up by `reuses`. Returns the handle
  /// of that latest scheduling (h and every older handle are stale). Call on the loop's thread.
  [[nodiscard]] static timer_handle age(const timer_handle& h, std::uint64_t reuses) noexcept;
};

} // namespace corio::detail
