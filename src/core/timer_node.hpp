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
/// the ready queue is marked and freed when the queue reaches it. `generation` goes up on every free and
/// when the loop is destroyed, so a stale timer_handle is recognised.
///
/// Nodes are allocated in chunks that are never freed: a loop being destroyed gives its chunks to a
/// process-wide pool, from which later loops take them (event_loop.cpp). So a timer_handle kept past its
/// loop still points at a live node, whose generation no longer matches.
struct timer_node : timer_slot {
  event_loop* loop = nullptr; // the loop that holds the node's chunk now
  unique_function fn;
  timer_node* next_free = nullptr; // while free
  /// Written only by the thread of the loop holding the node, with a relaxed load and store (plain moves,
  /// no locked instruction); atomic because a stale handle of a destroyed loop may read it on another
  /// thread while the loop that took the chunk over writes it.
  std::atomic<std::uint32_t> generation{0};
  bool pending = false; // scheduled, not yet run or cancelled

  void next_generation() noexcept {
    generation.store(generation.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint32_t current_generation() const noexcept { return generation.load(std::memory_order_relaxed); }
};

} // namespace corio::detail
