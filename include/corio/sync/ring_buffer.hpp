// detail::ring_buffer<T>: the storage of corio::queue (internal).
#pragma once

#include <cstddef>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace corio::detail {

/// A FIFO of movable T in a circular buffer of power-of-two capacity: push at either end, pop at the
/// front. It grows by doubling. It shrinks by half (to at least 16 slots) once it has served as many
/// pops as it has slots while under a quarter full, with no push reaching a quarter in between: a
/// queue that swings between empty and a burst keeps its room (shrinking at the first quarter-full pop
/// would reallocate twice per swing), and one that grew for a spike gives the memory back after a
/// capacity's worth of quiet traffic. So a queue whose size stays within bounds allocates nothing in
/// steady state (std::deque allocates and frees a block every few hundred bytes of traffic).
template <class T> class ring_buffer {
public:
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return slots_.size(); }

  void push_back(T&& v) {
    reserve_one();
    note_push();
    slots_[index(size_)].emplace(std::move(v));
    ++size_;
  }
  void push_front(T&& v) {
    reserve_one();
    note_push();
    head_ = (head_ + slots_.size() - 1) & (slots_.size() - 1);
    slots_[head_].emplace(std::move(v));
    ++size_;
  }
  /// Makes room for n items in all, so that pushes up to n do not allocate (nor throw for want of room).
  void reserve(std::size_t n) {
    if (n <= slots_.size())
      return;
    std::size_t capacity = slots_.empty() ? min_capacity : slots_.size();
    while (capacity < n)
      capacity *= 2;
    resize(capacity);
  }
  /// Precondition: not empty.
  T pop_front() {
    T out(std::move(*slots_[head_]));
    slots_[head_].reset();
    head_ = index(1);
    --size_;
    if (slots_.size() > min_capacity && size_ < slots_.size() / 4 && ++quiet_pops_ >= slots_.size())
      shrink();
    return out;
  }
  void clear() noexcept {
    for (auto& s : slots_)
      s.reset();
    head_ = size_ = 0;
  }

private:
  static constexpr std::size_t min_capacity = 16;

  [[nodiscard]] std::size_t index(std::size_t i) const noexcept { return (head_ + i) & (slots_.size() - 1); }
  void note_push() noexcept {
    if (size_ >= slots_.size() / 4)
      quiet_pops_ = 0;
  }
  void reserve_one() {
    if (size_ == slots_.size())
      resize(slots_.empty() ? min_capacity : slots_.size() * 2);
  }
  /// Halves the capacity if memory allows. Optional: a failed allocation keeps the buffer as it is (the
  /// item being popped must not be lost to it), and it is tried again after as many quiet pops. Only for
  /// an item type that moves without throwing, so that a move cannot fail half-way.
  void shrink() noexcept {
    quiet_pops_ = 0;
    if constexpr (std::is_nothrow_move_constructible_v<T>) {
      try {
        resize(slots_.size() / 2);
      } catch (const std::bad_alloc&) {
      }
    }
  }
  void resize(std::size_t capacity) {
    std::vector<std::optional<T>> slots(capacity);
    for (std::size_t i = 0; i < size_; ++i)
      slots[i].emplace(std::move(*slots_[index(i)]));
    slots_.swap(slots);
    head_ = 0;
  }

  std::vector<std::optional<T>> slots_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  std::size_t quiet_pops_ = 0; // pops under a quarter full since the last push that reached a quarter
};

} // namespace corio::detail
