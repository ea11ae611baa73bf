// corio::queue<T>: a FIFO queue between tasks of one loop (asyncio.Queue, with Python 3.13's shutdown).
#pragma once

#include <cstddef>
#include <utility>

#include "corio/sync/basic_queue.hpp"
#include "corio/sync/ring_buffer.hpp"

namespace corio {
namespace detail {

/// corio::queue's storage: first in, first out. The items handed to getters are older than every item
/// stored (they were taken from the front), so one given back by a cancelled getter goes to the front;
/// several are given back newest first.
template <class T> class fifo_storage {
public:
  static constexpr const char* get_name = "queue.get";
  static constexpr const char* put_name = "queue.put";
  static constexpr const char* join_name = "queue.join";
  static constexpr bool hand_off = true; // the item put is the one a woken getter would take anyway
  using entry = T;

  static T&& make(T&& item) noexcept { return std::move(item); }
  static T&& unwrap(T&& e) noexcept { return std::move(e); }
  void push(T&& e) { items_.push_back(std::move(e)); }
  void restore(T&& e) { items_.push_front(std::move(e)); }
  void reserve(std::size_t n) { items_.reserve(n); }
  T pop() { return items_.pop_front(); }
  void clear() noexcept { items_.clear(); }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }

private:
  ring_buffer<T> items_;
};

} // namespace detail

/// A FIFO queue of T (asyncio.Queue). T only needs to be movable.
///
/// Items leave in the order they were put. Waiting, hand-off, cancellation, join()/task_done() and
/// shutdown(immediate) are basic_queue's (see there): getters and putters are served in arrival order, a
/// put item goes straight to the longest-waiting getter, and no item is ever lost to a cancellation. A
/// getter cancelled after an item was handed to it, before it ran, leaves the order as asyncio's:
/// its item goes back to the front, and the getters handed items after it take again in turn (getters
/// A, B, C wait, 1 and 2 are put, A is cancelled: B gets 1, C gets 2).
/// The items live in a ring buffer that only allocates to grow or shrink, so a queue whose size stays
/// within bounds allocates nothing in steady state. Single-threaded.
template <class T> class queue : public basic_queue<T, detail::fifo_storage<T>> {
public:
  /// maxsize 0: unbounded.
  explicit queue(std::size_t maxsize = 0) noexcept : basic_queue<T, detail::fifo_storage<T>>(maxsize) {}
};

} // namespace corio
