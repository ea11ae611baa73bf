// corio::lifo_queue<T>: a last-in, first-out queue between tasks of one loop (asyncio.LifoQueue).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "corio/sync/basic_queue.hpp"

namespace corio {
namespace detail {

/// corio::lifo_queue's storage: a stack in a std::vector, which only allocates to grow (it keeps its
/// capacity). An item given back by a cancelled getter was the top one: it goes back on top.
template <class T> class lifo_storage {
public:
  static constexpr const char* get_name = "lifo_queue.get";
  static constexpr const char* put_name = "lifo_queue.put";
  static constexpr const char* join_name = "lifo_queue.join";
  using entry = T;

  static T&& make(T&& item) noexcept { return std::move(item); }
  static T&& unwrap(T&& e) noexcept { return std::move(e); }
  void push(T&& e) { items_.push_back(std::move(e)); }
  void restore(T&& e) { items_.push_back(std::move(e)); }
  T pop() {
    T out(std::move(items_.back()));
    items_.pop_back();
    return out;
  }
  void clear() noexcept { items_.clear(); }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }

private:
  std::vector<T> items_;
};

} // namespace detail

/// A last-in, first-out queue of T (asyncio.LifoQueue): get() returns the item put last. T only needs to
/// be movable.
///
/// Same API and guarantees as corio::queue (basic_queue): getters and putters are served in arrival
/// order; a put item goes straight to the longest-waiting getter (the queue is empty then); get() that
/// frees a slot moves the longest-waiting putter's item in, on top. A getter cancelled after an item was
/// handed to it puts the item back on top (or hands it to the next getter): no item is ever lost.
/// The items live in a std::vector that only allocates to grow, so steady state allocates nothing.
/// Single-threaded.
template <class T> class lifo_queue : public basic_queue<T, detail::lifo_storage<T>> {
public:
  /// maxsize 0: unbounded.
  explicit lifo_queue(std::size_t maxsize = 0) noexcept : basic_queue<T, detail::lifo_storage<T>>(maxsize) {}
};

} // namespace corio
