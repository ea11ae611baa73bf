// timer_node: one scheduled callback or timed wake-up, pooled by the loop (internal).
#pragma once

#include <cstdint>

#include "corio/detail/unique_function.hpp"
#include "corio/detail/wait_node.hpp"

namespace corio {
class event_loop;
}

namespace corio::detail {

/// States: free (in the loop's free list) -> scheduled (in the timer heap or the ready queue) -> fired or
/// cancelled -> free. `generation` changes on every free, so a stale timer_handle is recognised.
struct timer_node {
  event_loop* loop = nullptr;
  unique_function fn; // a callback...
  union {
    wait_node* waiter = nullptr; // ...or a wait to complete (while scheduled)
    timer_node* next_free;       // while free
  };
  std::uint64_t seq = 0; // scheduling order: the tie-break between equal deadlines
  std::uint32_t generation = 0;
  bool scheduled = false;
  bool cancelled = false;
  bool in_heap = false;
};

} // namespace corio::detail
