// corio::lifo_queue<T>: a last-in, first-out queue between tasks of one loop (asyncio.LifoQueue).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "corio/sync/basic_queue.hpp"

namespace corio {
namespace detail {

/// corio::lifo_queue's storage: a stack in a std::vector, which only allocates to grow (it keeps its
/// capacity). Each item carries a sequence number, taken when it is put, and the stack stays sorted by
/// it (the top is the item put last): an item given back by a cancelled getter goes back below the items
/// put after it, where asyncio's LifoQueue, which never took it out, still has it.
template <class T> class lifo_storage {
public:
  static constexpr const char* get_name = "lifo_queue.get";
  static constexpr const char* put_name = "lifo_queue.put";
  static constexpr const char* join_name = "lifo_queue.join";
  struct entry {
    T value;
    std::uint64_t seq;

    entry(T&& v, std::uint64_t s) noexcept(std::is_nothrow_move_constructible_v<T>) : value(std::move(v)), seq(s) {}
    entry(entry&&) = default;
    /// std::vector::insert shifts items by assignment; a T that is only move-constructible is rebuilt
    /// in place (noexcept: a move constructor that throws there terminates rather than leave a hole).
    entry& operator=(entry&& o) noexcept(std::is_nothrow_move_assignable_v<T> || !std::is_move_assignable_v<T>) {
      if constexpr (std::is_move_assignable_v<T>) {
        value = std::move(o.value);
      } else {
        std::destroy_at(&value);
        std::construct_at(&value, std::move(o.value));
      }
      seq = o.seq;
      return *this;
    }
    ~entry() = default;
  };

  entry make(T&& item) { return entry(std::move(item), next_seq_++); }
  static T&& unwrap(entry&& e) noexcept { return std::move(e.value); }
  void push(entry&& e) { items_.push_back(std::move(e)); }
  void restore(entry&& e) {
    auto at = std::upper_bound(items_.begin(), items_.end(), e.seq,
                               [](std::uint64_t seq, const entry& x) { return seq < x.seq; });
    items_.insert(at, std::move(e));
  }
  void reserve(std::size_t n) { items_.reserve(n); }
  entry pop() {
    entry out(std::move(items_.back()));
    items_.pop_back();
    return out;
  }
  void clear() noexcept { items_.clear(); }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }

private:
  std::vector<entry> items_;
  std::uint64_t next_seq_ = 0;
};

} // namespace detail

/// A last-in, first-out queue of T (asyncio.LifoQueue): get() returns the item put last. T only needs to
/// be movable.
///
/// Same API and guarantees as corio::queue (basic_queue): getters and putters are served in arrival
/// order; a put item goes straight to the longest-waiting getter (the queue is empty then; asyncio's
/// woken getter takes the top only when it runs, which may be an item put since); get() that frees a
/// slot moves the longest-waiting putter's item in, on top. A getter cancelled after an item was handed
/// to it, before it ran, puts it back below the items put after it, where asyncio's LifoQueue still
/// has it, and the getters handed items after it take again from the top in turn: no item is ever lost.
/// The items live in a std::vector that only allocates to grow, so steady state allocates nothing.
/// Single-threaded.
template <class T> class lifo_queue : public basic_queue<T, detail::lifo_storage<T>> {
public:
  /// maxsize 0: unbounded.
  explicit lifo_queue(std::size_t maxsize = 0) noexcept : basic_queue<T, detail::lifo_storage<T>>(maxsize) {}
};

} // namespace corio
