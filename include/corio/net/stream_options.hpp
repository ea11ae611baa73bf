// corio::stream_options: buffer limits of stream readers and writers.
#pragma once

#include <cstddef>

namespace corio {

struct stream_options {
  /// readuntil()/readline() give up (limit_overrun_error) when no separator is found within this many
  /// bytes (asyncio's `limit`, default 64 KiB).
  std::size_t limit = 64 * 1024;
  /// drain() waits once more than `high_water` bytes are queued, until at most `low_water` are
  /// (asyncio's defaults: 64 KiB and 16 KiB).
  std::size_t high_water = 64 * 1024;
  std::size_t low_water = 16 * 1024;
  /// TCP_NODELAY on TCP connections (asyncio sets it too): small writes go out at once.
  bool no_delay = true;
};

} // namespace corio
