// write_queue: the stream transport's FIFO of unsent byte strings, recycling its memory (internal).
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corio::detail {

/// What std::deque<std::string> gave the transport (append, look at the front, pop, walk in order),
/// without allocating per write once warm. A deque allocated a string per queued write and a 512-byte
/// node every 16 of them, under exactly the backpressure where a server writes most.
///
/// Copied bytes go into chunks of `chunk_bytes`: first the spare room of the last string queued, then
/// fresh chunks. Every chunk has the same size, so a popped one fits any later copy and is kept for it
/// (a string per write would need a bigger buffer whenever a write is bigger than the last). Small
/// writes queued behind each other share a chunk (fewer iovecs per sendmsg). A moved-in string is
/// queued as it is (no copy) and released when sent.
///
/// What stays allocated is bounded: the ring of slots has as many as the most strings ever queued at
/// once (at least keep_limit() / chunk_bytes + 2), and the popped chunks kept for reuse (apart from the
/// slots) hold at most keep_limit() bytes (the transport sets it to its high watermark plus two chunks, 96 KiB by
/// default: what a writer that waits in drain() queues, for writes up to a chunk); clear() (the connection failed or
/// closed) releases everything. A writer that queues more than that (no drain(), or larger writes) gets the extra
/// chunks allocated and released again, as a deque would.
class write_queue {
public:
  static constexpr std::size_t chunk_bytes = 16 * 1024;

  class iterator {
  public:
    iterator(write_queue* q, std::size_t i) noexcept : q_(q), i_(i) {}
    std::string& operator*() const noexcept { return q_->at(i_); }
    std::string* operator->() const noexcept { return &q_->at(i_); }
    iterator& operator++() noexcept {
      ++i_;
      return *this;
    }
    bool operator==(const iterator& o) const noexcept { return i_ == o.i_; }

  private:
    write_queue* q_;
    std::size_t i_; // position from the front
  };

  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] std::string& front() noexcept { return at(0); }
  [[nodiscard]] iterator begin() noexcept { return {this, 0}; }
  [[nodiscard]] iterator end() noexcept { return {this, count_}; }

  /// Queues a copy of `data`: into the last string's spare room, then into chunks (recycled ones first).
  void emplace_back(std::string_view data) {
    if (count_ != 0) {
      std::string& last = at(count_ - 1);
      const std::size_t room = std::min(last.capacity() - last.size(), data.size());
      last.append(data.data(), room); // within its capacity: no reallocation
      data.remove_prefix(room);
    }
    while (!data.empty()) {
      std::string& chunk = take_slot(); // an empty slot: no buffer of its own
      if (!spare_.empty()) {
        chunk.swap(spare_.back());
        spare_.pop_back();
      } else {
        chunk.reserve(chunk_bytes); // only while warming up (or past the kept budget)
      }
      const std::size_t n = std::min(chunk.capacity(), data.size());
      chunk.assign(data.data(), n);
      data.remove_prefix(n);
    }
  }
  /// Queues `data` itself (no copy).
  void push_back(std::string&& data) { take_slot().swap(data); }

  [[nodiscard]] std::size_t keep_limit() const noexcept { return keep_limit_; }
  void set_keep_limit(std::size_t bytes) noexcept { keep_limit_ = bytes; }

  void pop_front() noexcept {
    std::string& s = slots_[head_];
    // Only chunk-sized buffers are worth keeping (a moved-in string of another size would be the wrong
    // size for the next copy); reserve() may round up, hence the range. Spare chunks are kept apart from
    // the ring's slots, so which slot the next write lands in does not decide whether a buffer is there.
    if (s.capacity() >= chunk_bytes && s.capacity() < 2 * chunk_bytes && spare_.size() < max_spare()) {
      s.clear();
      spare_.emplace_back().swap(s); // within the reserved capacity: no allocation
    } else {
      std::string().swap(s); // over the budget: give the memory back
    }
    head_ = head_ + 1 == slots_.size() ? 0 : head_ + 1;
    --count_;
  }

  /// Drops everything queued and releases all memory.
  void clear() noexcept {
    std::vector<std::string>().swap(slots_);
    std::vector<std::string>().swap(spare_);
    head_ = count_ = 0;
  }

private:
  std::string& at(std::size_t i) noexcept {
    std::size_t j = head_ + i;
    return slots_[j < slots_.size() ? j : j - slots_.size()];
  }

  [[nodiscard]] std::size_t max_spare() const noexcept { return keep_limit_ / chunk_bytes; }

  /// The (empty) slot after the last queued one, growing the ring when it is full.
  std::string& take_slot() {
    if (count_ == slots_.size())
      grow();
    ++count_;
    return at(count_ - 1);
  }

  /// The first ring has room for the kept budget in chunks plus a partly sent first and a partly filled
  /// last one: all a writer that waits in drain() queues when it copies, so the ring does not grow again
  /// later (and allocate) just because a rarer interleaving queued one chunk more than before.
  void grow() {
    if (slots_.empty())
      spare_.reserve(max_spare()); // so that keeping a chunk never allocates
    std::vector<std::string> bigger(slots_.empty() ? max_spare() + 2 : slots_.size() * 2);
    for (std::size_t i = 0; i < count_; ++i)
      bigger[i].swap(at(i));
    slots_.swap(bigger);
    head_ = 0;
  }

  std::vector<std::string> slots_;
  std::size_t head_ = 0;           // the front's slot; the slots not queued are empty (no buffer)
  std::size_t count_ = 0;          // queued strings
  std::vector<std::string> spare_; // popped chunks, emptied, for the next copies (at most max_spare())
  std::size_t keep_limit_ = 4 * chunk_bytes;
};

} // namespace corio::detail
