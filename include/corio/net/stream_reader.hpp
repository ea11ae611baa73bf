// corio::stream_reader: buffered reads from a connection (asyncio.StreamReader).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "corio/async_generator.hpp"
#include "corio/net/address.hpp"
#include "corio/net/stream_errors.hpp"
#include "corio/task.hpp"

namespace corio {

namespace detail {
class stream_transport;
}

/// The reading half of a stream connection (from open_connection, or a server's handler). A cheap,
/// copyable handle: copies share one buffer. One task reads at a time (a second concurrent read raises
/// loop_error). Every read is cancellable and loses nothing when cancelled or timed out: bytes are only
/// taken from the buffer by the read that returns them. Connection errors (ECONNRESET) raise
/// std::system_error naming the peer, from this and every later read that needs more data.
///
///     auto [reader, writer] = co_await corio::open_connection("127.0.0.1", 8080);
///     std::string line = co_await reader.readline();
class stream_reader {
public:
  stream_reader() noexcept = default;
  explicit stream_reader(std::shared_ptr<detail::stream_transport> t) noexcept : t_(std::move(t)) {}

  /// Up to `n` bytes: what is buffered, else what one receive brings. Empty at end of stream (or n == 0).
  task<std::string> read(std::size_t n);
  /// As read(buf.size()), into `buf` instead of a new string: the bytes read, 0 at end of stream (or for
  /// an empty buf). For loops that reuse one buffer and so allocate nothing per read (Python's readinto).
  task<std::size_t> readinto(std::span<char> buf);
  /// Everything until end of stream.
  task<std::string> read();
  /// Exactly `n` bytes; incomplete_read_error (with the bytes that came) if the stream ends first.
  /// std::invalid_argument for an `n` no string can hold (SIZE_MAX: what readexactly(-1) becomes).
  task<std::string> readexactly(std::size_t n);
  /// Up to and including the next '\n'. At end of stream: what is left (maybe empty, without '\n').
  /// limit_overrun_error if the line is longer than the limit: what is buffered of it is dropped (the
  /// whole line when its '\n' has come; else the rest of it is what the next readline() returns), as
  /// asyncio does. To drop a long line whole, use readuntil(), which keeps the data, and readexactly().
  task<std::string> readline();
  /// Up to and including `separator`. incomplete_read_error at end of stream (with what came);
  /// limit_overrun_error when the separator is not within the limit — the data stays buffered.
  task<std::string> readuntil(std::string separator);
  /// Up to and including the first of several separators (Python 3.13's tuple of separators): the one
  /// whose match ends first in the stream; of matches ending at the same byte, the shortest. Errors as
  /// above; std::invalid_argument for an empty list or an empty separator. g++ 12 cannot compile a
  /// braced list inside a co_await expression (`co_await r.readuntil({"a", "b"})`): name the list, or
  /// the task (`auto t = r.readuntil({"a", "b"}); co_await std::move(t);`), first.
  task<std::string> readuntil(std::vector<std::string> separators);
  task<std::string> readuntil(std::initializer_list<std::string_view> separators);
  /// The stream's lines, each as readline() returns it, until the end of the stream (Python's
  /// `async for line in reader`):
  ///
  ///     auto lines = reader.lines();
  ///     for (auto it = co_await lines.begin(); it != lines.end(); co_await ++it) use(*it);
  ///
  /// readline()'s errors come out of begin()/++it; the generator is finished after one.
  async_generator<std::string> lines();

  /// True once the end of the stream was seen and the buffer is empty (asyncio's at_eof()).
  [[nodiscard]] bool at_eof() const;
  /// Bytes received and not yet read.
  [[nodiscard]] std::size_t buffered() const;
  [[nodiscard]] std::size_t limit() const;
  void set_limit(std::size_t limit);
  [[nodiscard]] address peer_address() const;
  [[nodiscard]] bool valid() const noexcept { return t_ != nullptr; }

private:
  std::shared_ptr<detail::stream_transport> t_;
};

} // namespace corio
