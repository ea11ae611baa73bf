#include "corio/detail/frame_pool.hpp"

#include <new>
#include <vector>

// Under AddressSanitizer, a block in a free list is poisoned, so a use after free of a recycled frame is
// reported just as one of a malloc'ed frame would be.
#if defined(__SANITIZE_ADDRESS__)
#define CORIO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORIO_ASAN 1
#endif
#endif
#ifdef CORIO_ASAN
#include <sanitizer/asan_interface.h>
#define CORIO_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define CORIO_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define CORIO_POISON(p, n) ((void)(p), (void)(n))
#define CORIO_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace corio::detail {
namespace {

// Size classes of 16 bytes up to 1 KiB. Blocks are carved from 64 KiB slabs, so a small frame costs its
// rounded size and nothing more (no malloc header per frame: a million sleeping tasks is a million
// frames). Slabs stay with the thread for reuse and are released when the thread ends.
constexpr std::size_t granule = 16;
constexpr std::size_t classes = 64;
constexpr std::size_t slab_size = 64 * 1024;

struct free_block {
  free_block* next;
};

struct pool {
  free_block* lists[classes] = {};
  std::vector<void*> slabs;
  char* bump = nullptr; // the unused tail of the newest slab
  char* bump_end = nullptr;
  long balance = 0;
  bool recycling = true;

  ~pool() {
    for (void* s : slabs) {
      CORIO_UNPOISON(s, slab_size);
      ::operator delete(s);
    }
  }

  void* carve(std::size_t bytes) {
    if (static_cast<std::size_t>(bump_end - bump) < bytes) {
      // The rest of the old slab goes to the free lists of the sizes that fit in it, largest first.
      while (bump_end - bump >= static_cast<std::ptrdiff_t>(granule)) {
        std::size_t c = std::min(static_cast<std::size_t>(bump_end - bump) / granule, classes) - 1;
        give_back(bump, c);
        bump += (c + 1) * granule;
      }
      bump = static_cast<char*>(::operator new(slab_size));
      slabs.push_back(bump);
      bump_end = bump + slab_size;
    }
    void* p = bump;
    bump += bytes;
    return p;
  }
  void give_back(void* p, std::size_t c) noexcept {
    auto* b = static_cast<free_block*>(p);
    b->next = lists[c];
    lists[c] = b;
    // The link stays readable; the rest of the block is poisoned until it is handed out again.
    CORIO_POISON(reinterpret_cast<char*>(p) + sizeof(free_block), (c + 1) * granule - sizeof(free_block));
  }
};

thread_local pool frames;

} // namespace

void* frame_allocate(std::size_t size) {
  ++frames.balance;
  const std::size_t c = (size + granule - 1) / granule - 1;
  if (c >= classes || !frames.recycling)
    return ::operator new(size);
  if (free_block* b = frames.lists[c]) {
    frames.lists[c] = b->next;
    CORIO_UNPOISON(b, (c + 1) * granule);
    return b;
  }
  return frames.carve((c + 1) * granule);
}

void frame_deallocate(void* p, std::size_t size) noexcept {
  --frames.balance;
  const std::size_t c = (size + granule - 1) / granule - 1;
  if (c >= classes || !frames.recycling) {
    ::operator delete(p);
    return;
  }
  frames.give_back(p, c);
}

long frame_balance() noexcept { return frames.balance; }

bool set_frame_recycling(bool on) noexcept {
  bool was = frames.recycling;
  if (frames.balance == 0) // a live block must go back where it came from
    frames.recycling = on;
  return was;
}

} // namespace corio::detail
