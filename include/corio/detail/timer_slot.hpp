// timer_slot: the loop's bookkeeping for one entry of its timer heap, kept inside the object that waits
// (internal).
#pragma once

#include <cstdint>

#include "corio/detail/wait_node.hpp"

namespace corio::detail {

/// Where a timer sits in the loop's heap. The heap itself holds (deadline, pointer to this slot), so
/// comparisons stay in the heap's contiguous memory; the slot records the entry's index so a cancelled
/// timer is removed at once (O(log n)) instead of lingering until it reaches the top.
struct timer_slot {
  static constexpr std::uint32_t not_scheduled = UINT32_MAX;
  /// Scheduling order, the tie-break between equal deadlines. 32 bits, compared with wrap-around: two
  /// timers with the same deadline are ordered correctly unless 2^31 other timers were scheduled
  /// between them.
  std::uint32_t seq = 0;
  std::uint32_t index = not_scheduled; // position in the heap while scheduled

  [[nodiscard]] bool scheduled() const noexcept { return index != not_scheduled; }
};

/// A wait completed by a timer (sleep): the loop wakes it at its deadline. The timer lives in the
/// awaiter itself, so a sleeping task costs no allocation beyond its frame.
struct timed_wait : wait_node, timer_slot {
protected:
  timed_wait() = default;
  ~timed_wait() = default;
};

} // namespace corio::detail
