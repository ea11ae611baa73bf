// done_callbacks: the callbacks a task or a future runs when it is done, each with a key to withdraw it.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "corio/detail/unique_function.hpp"

namespace corio::detail {

/// add_done_callback / remove_done_callback's list (asyncio's Future._callbacks). Keys start at 1, so 0
/// never names a callback.
class done_callbacks {
public:
  std::uint64_t add(unique_function fn) {
    items_.push_back({last_ + 1, std::move(fn)});
    return ++last_;
  }
  /// Removes the callback added under key; false if there is none (already run, or never added).
  bool remove(std::uint64_t key) noexcept {
    for (auto it = items_.begin(); it != items_.end(); ++it) {
      if (it->key == key) {
        items_.erase(it);
        return true;
      }
    }
    return false;
  }
  /// Hands every callback to sink, in the order they were added, and empties the list.
  template <class Sink> void drain(Sink&& sink) {
    for (auto& i : items_)
      sink(std::move(i.fn));
    items_.clear();
  }
  /// Drops them without running them (and the memory).
  void clear() noexcept { std::vector<item>().swap(items_); }

private:
  struct item {
    std::uint64_t key;
    unique_function fn;
  };
  std::vector<item> items_;
  std::uint64_t last_ = 0;
};

} // namespace corio::detail
