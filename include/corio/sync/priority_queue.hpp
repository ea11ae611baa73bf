// corio::priority_queue<T, Compare>: a queue that returns its smallest item first, between tasks of one
// loop (asyncio.PriorityQueue).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

#include "corio/sync/basic_queue.hpp"

namespace corio {
namespace detail {

/// corio::priority_queue's storage: a binary heap (std::push_heap / std::pop_heap) in a std::vector,
/// which only allocates to grow (it keeps its capacity). Each item carries a sequence number, taken when
/// it is put, that orders equal items: first put, first out.
template <class T, class Compare> class priority_storage {
public:
  static constexpr const char* get_name = "priority_queue.get";
  static constexpr const char* put_name = "priority_queue.put";
  static constexpr const char* join_name = "priority_queue.join";
  static constexpr bool hand_off = false; // a woken getter takes the smallest when it runs (asyncio)
  struct entry {
    T value;
    std::uint64_t seq;
  };

  explicit priority_storage(Compare comp = Compare()) noexcept(std::is_nothrow_move_constructible_v<Compare>)
      : comp_(std::move(comp)) {}

  entry make(T&& item) { return entry{std::move(item), next_seq_++}; }
  static T&& unwrap(entry&& e) noexcept { return std::move(e.value); }
  void push(entry&& e) {
    items_.push_back(std::move(e));
    std::push_heap(items_.begin(), items_.end(), later());
  }
  void reserve(std::size_t n) { items_.reserve(n); }
  entry pop() {
    std::pop_heap(items_.begin(), items_.end(), later());
    entry out(std::move(items_.back()));
    items_.pop_back();
    return out;
  }
  void clear() noexcept { items_.clear(); }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }

private:
  /// The heap's order (std's heaps put the greatest first): a < b when a leaves after b.
  auto later() {
    return [this](const entry& a, const entry& b) {
      if (comp_(b.value, a.value))
        return true;
      if (comp_(a.value, b.value))
        return false;
      return a.seq > b.seq;
    };
  }

  std::vector<entry> items_;
  std::uint64_t next_seq_ = 0;
  [[no_unique_address]] Compare comp_;
};

template <class T, class Compare> using priority_queue_base = basic_queue<T, priority_storage<T, Compare>>;

} // namespace detail

/// A queue of T that returns its smallest item first (asyncio.PriorityQueue): get() returns an item x
/// such that no queued y has comp(y, x) — with std::greater, the greatest. Items that compare equal
/// leave in the order they were put (stable: a sequence number breaks ties; Python's heapq-based
/// PriorityQueue does not promise that). T must be movable and move-assignable (std::push_heap); Compare
/// a strict weak order. `struct job { int priority; ... };` with a Compare on `priority` works as
/// Python's `(priority, data)` tuples do, without comparing the data.
///
/// Same API as corio::queue; waiting, cancellation and shutdown are basic_queue's without hand-off
/// (see there): getters and putters are served in arrival order, and no newcomer overtakes a waiter.
/// As in asyncio, put() stores its item and wakes the longest-waiting getter, which takes the smallest
/// item when it runs (a getter waits; put(5), put(1): it gets 1), and a putter let in by a get() adds
/// its item when it runs. A woken getter or let-in putter cancelled before it ran takes or puts nothing
/// and the next waiter is woken instead: no item is ever lost.
/// The heap lives in a std::vector that only allocates to grow, so steady state allocates nothing.
/// Single-threaded.
template <class T, class Compare = std::less<T>> class priority_queue : public detail::priority_queue_base<T, Compare> {
public:
  /// maxsize 0: unbounded. `comp(a, b)`: a leaves before b.
  explicit priority_queue(std::size_t maxsize = 0, Compare comp = Compare())
      : detail::priority_queue_base<T, Compare>(maxsize, detail::priority_storage<T, Compare>(std::move(comp))) {}
};

} // namespace corio
