// A growable byte FIFO for the stream reader: append at the back, consume at the front (internal).
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace corio::detail {

/// [begin_, end_) holds unread bytes inside one allocation. Unlike std::string, growing it does not
/// zero-fill the room that recv() is about to overwrite, and consuming from the front is O(1).
class byte_buffer {
public:
  [[nodiscard]] std::size_t size() const noexcept { return end_ - begin_; }
  [[nodiscard]] bool empty() const noexcept { return begin_ == end_; }
  [[nodiscard]] const char* data() const noexcept { return data_.get() + begin_; }
  [[nodiscard]] std::string_view view() const noexcept { return {data(), size()}; }

  /// Room for at least `n` more bytes at the back; returns where to write them.
  char* prepare(std::size_t n) {
    if (capacity_ - end_ >= n)
      return data_.get() + end_;
    std::size_t live = size();
    if (capacity_ - live >= n && begin_ >= live) { // slide the live bytes to the front: no overlap
      std::memcpy(data_.get(), data(), live);
    } else if (capacity_ - live >= n) {
      std::memmove(data_.get(), data(), live);
    } else {
      std::size_t cap = capacity_ == 0 ? n : capacity_;
      while (cap - live < n)
        cap *= 2;
      auto grown = std::make_unique_for_overwrite<char[]>(cap);
      if (live != 0)
        std::memcpy(grown.get(), data(), live);
      data_ = std::move(grown);
      capacity_ = cap;
    }
    begin_ = 0;
    end_ = live;
    return data_.get() + end_;
  }
  /// `n` bytes were written where prepare() pointed.
  void commit(std::size_t n) noexcept { end_ += n; }
  /// Drops `n` bytes from the front.
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_)
      begin_ = end_ = 0; // the common case: everything read, next recv starts at the front
  }
  /// Frees the memory once a large burst is gone (keeps the buffer from pinning its peak size).
  void shrink_if_idle(std::size_t keep) noexcept {
    if (empty() && capacity_ > keep) {
      data_.reset();
      capacity_ = begin_ = end_ = 0;
    }
  }

private:
  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

} // namespace corio::detail
