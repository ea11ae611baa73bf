// timer_node: one scheduled callback (call_soon / call_later / call_at), pooled by the loop (internal).
#pragma once

#include <cstdint>

#include "corio/detail/timer_slot.hpp"
#include "corio/detail/unique_function.hpp"

namespace corio {
class event_loop;
}

namespace corio::detail {

/// States: free (in the loop's free list) -> scheduled (in the timer heap, its slot's index set; or in
/// the ready queue) -> run or cancelled -> free. A cancelled node in the heap leaves it at once; one in
/// the ready queue is marked and freed when the queue reaches it. `generation` changes on every free, so
/// a stale timer_handle is recognised.
struct timer_node : timer_slot {
  event_loop* loop = nullptr;
  unique_function fn;
  timer_node* next_free = nullptr; // while free
  std::uint32_t generation = 0;
  bool pending = false; // scheduled, not yet run or cancelled
};

} // namespace corio::detail
