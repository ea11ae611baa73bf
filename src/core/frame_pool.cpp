#include "corio/detail/frame_pool.hpp"

#include <new>

namespace corio::detail {
namespace {

constexpr std::size_t granule = 64;
constexpr std::size_t classes = 32; // up to 2 KiB
constexpr std::size_t max_cached_per_class = 4096;

struct free_block {
  free_block* next;
};

struct pool {
  free_block* lists[classes] = {};
  std::size_t counts[classes] = {};
  long balance = 0;
  bool recycling = true;

  ~pool() {
    for (std::size_t c = 0; c < classes; ++c)
      while (free_block* b = lists[c]) {
        lists[c] = b->next;
        ::operator delete(static_cast<void*>(b));
      }
  }
};

thread_local pool frames;

} // namespace

void* frame_allocate(std::size_t size) {
  ++frames.balance;
  const std::size_t c = (size + granule - 1) / granule - 1;
  if (c >= classes)
    return ::operator new(size);
  if (free_block* b = frames.lists[c]; b != nullptr && frames.recycling) {
    frames.lists[c] = b->next;
    --frames.counts[c];
    return b;
  }
  return ::operator new((c + 1) * granule); // always the class size: the block may be recycled later
}

void frame_deallocate(void* p, std::size_t size) noexcept {
  --frames.balance;
  const std::size_t c = (size + granule - 1) / granule - 1;
  if (c < classes && frames.recycling && frames.counts[c] < max_cached_per_class) {
    auto* b = static_cast<free_block*>(p);
    b->next = frames.lists[c];
    frames.lists[c] = b;
    ++frames.counts[c];
    return;
  }
  ::operator delete(p);
}

long frame_balance() noexcept { return frames.balance; }

bool set_frame_recycling(bool on) noexcept {
  bool was = frames.recycling;
  frames.recycling = on;
  return was;
}

} // namespace corio::detail
