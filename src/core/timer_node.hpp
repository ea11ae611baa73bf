// timer_node: one scheduled callback (call_soon / call_later / call_at), pooled by the loop (internal).
#pragma once

#include <atomic>
#include <cstdint>

#include "corio/detail/timer_slot.hpp"
#include "corio/detail/unique_function.hpp"

namespace corio {
class event_loop;
}

namespace corio::detail {

/// States: free (in the loop's free list) -> scheduled (in the timer heap, its slot's index set; or in
/// the ready queue) -> run or cancelled -> free. A cancelled node in the heap leaves it at once; one in
/// the ready queue is marked and freed when the queue reaches it. The generation goes up on every free and
/// when the loop is destroyed, so a stale timer_handle is recognised.
///
/// Nodes are allocated in chunks that are never freed: a loop being destroyed gives its chunks to a
/// process-wide pool, from which later loops take them (event_loop.cpp). So a timer_handle kept past its
/// loop still points at a live node, whose generation no longer matches.
struct timer_node : timer_slot {
  event_loop* loop = nullptr; // the loop that holds the node's chunk now
  unique_function fn;
  timer_node* next_free = nullptr; // while free
  /// The generation (bits 1..63) and `pending` (bit 0: scheduled, not yet run or cancelled) in one word,
  /// which is what a timer_handle keeps and compares: it is pending exactly while the word still equals
  /// its own. 63 bits never wrap (a 32-bit generation did after 2^32 reuses of a node, and a stale handle
  /// then matched the node's next timer); one word keeps the node at 40 bytes, as with a 32-bit generation
  /// and a separate bool (a 64-bit one beside the bool made it 48).
  ///
  /// Written only by the thread of the loop holding the node, with a relaxed load and store (plain moves,
  /// no locked instruction); atomic because a stale handle of a destroyed loop may read it on another
  /// thread while the loop that took the chunk over writes it.
  std::atomic<std::uint64_t> stamp{0};

  [[nodiscard]] std::uint64_t current_stamp() const noexcept { return stamp.load(std::memory_order_relaxed); }
  [[nodiscard]] bool pending() const noexcept { return (current_stamp() & 1) != 0; }
  /// Free -> scheduled.
  void set_pending() noexcept { stamp.store(current_stamp() | 1, std::memory_order_relaxed); }
  /// Run or cancelled: handles no longer match (the generation stays until the node is freed).
  void clear_pending() noexcept { stamp.store(current_stamp() & ~std::uint64_t{1}, std::memory_order_relaxed); }
  /// Freed: not pending, next generation (one store).
  void next_generation() noexcept { stamp.store((current_stamp() | 1) + 1, std::memory_order_relaxed); }
};
#if UINTPTR_MAX == UINT64_MAX
static_assert(sizeof(timer_node) == 40, "a timer node is 40 bytes on 64-bit targets (see `stamp`)");
#endif

} // namespace corio::detail
