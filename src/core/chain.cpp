// The out-of-line part of the delegation chains (detail/chain.hpp): the exception that throw_() and
// close() hand to the co_yield they resume.
#include "corio/detail/chain.hpp"

#include <utility>

namespace corio::detail {

std::atomic<unsigned> throws_waiting{0};

namespace {
// Reached only through these out-of-line functions, so no caller can keep the address of another
// thread's slot across a suspension (HAZARDS.md §3).
thread_local std::exception_ptr pending_throw;
} // namespace

void set_pending_throw(std::exception_ptr e) noexcept {
  if (!pending_throw)
    throws_waiting.fetch_add(1, std::memory_order_relaxed);
  pending_throw = std::move(e);
}

void clear_pending_throw() noexcept {
  if (pending_throw) {
    pending_throw = nullptr;
    throws_waiting.fetch_sub(1, std::memory_order_relaxed);
  }
}

void raise_pending_throw() {
  if (pending_throw) {
    throws_waiting.fetch_sub(1, std::memory_order_relaxed);
    std::rethrow_exception(std::exchange(pending_throw, nullptr));
  }
}

} // namespace corio::detail
