// A recycling allocator for coroutine frames (internal).
#pragma once

#include <cstddef>

namespace corio::detail {

/// Allocates coroutine frames from per-thread free lists, one per 16-byte size class up to 1 KiB, carved
/// from 64 KiB slabs (larger frames use operator new). Compilers never elide the frames of tasks scheduled on a loop
/// (HAZARDS.md §5), so the hot path recycles them instead. Memory freed on another thread joins that thread's lists.
void* frame_allocate(std::size_t size);
void frame_deallocate(void* p, std::size_t size) noexcept;

/// Frames allocated minus frames freed by this thread (tests check it returns to where it was).
[[nodiscard]] long frame_balance() noexcept;
/// Turns recycling off/on for this thread (benchmarks measure both); returns the previous setting.
/// Takes effect only while no block of this thread is allocated.
bool set_frame_recycling(bool on) noexcept;

} // namespace corio::detail
