// corio::lifo_queue<T>: a last-in, first-out queue between tasks of one loop (asyncio.LifoQueue).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "corio/sync/basic_queue.hpp"

namespace corio {
namespace detail {

/// corio::lifo_queue's storage: a stack in a std::vector, which only allocates to grow (it keeps its
/// capacity). Items only leave from the top (a woken getter takes the top when it runs, as asyncio's
/// does), so T only needs to be move-constructible.
template <class T> class lifo_storage {
public:
  static constexpr const char* get_name = "lifo_queue.get";
  static constexpr const char* put_name = "lifo_queue.put";
  static constexpr const char* join_name = "lifo_queue.join";
  static constexpr bool hand_off = false; // a woken getter takes the top when it runs (asyncio)
  using entry = T;

  static T&& make(T&& item) noexcept { return std::move(item); }
  static T&& unwrap(T&& e) noexcept { return std::move(e); }
  void push(T&& e) { items_.push_back(std::move(e)); }
  void reserve(std::size_t n) { items_.reserve(n); }
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
/// Same API as corio::queue; waiting, cancellation and shutdown are basic_queue's without hand-off
/// (see there): getters and putters are served in arrival order, and no newcomer overtakes a waiter.
/// As in asyncio, put() stores its item and wakes the longest-waiting getter, which takes the top when
/// it runs (a getter waits; put(1), put(2): it gets 2, and 1 is left), and a putter let in by a get()
/// adds its item when it runs. A woken getter or let-in putter cancelled before it ran takes or puts
/// nothing and the next waiter is woken instead: no item is ever lost.
/// The items live in a std::vector that only allocates to grow, so steady state allocates nothing.
/// Single-threaded.
template <class T> class lifo_queue : public basic_queue<T, detail::lifo_storage<T>> {
public:
  /// maxsize 0: unbounded.
  explicit lifo_queue(std::size_t maxsize = 0) noexcept : basic_queue<T, detail::lifo_storage<T>>(maxsize) {}
};

} // namespace corio
