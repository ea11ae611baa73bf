// file_source: a file's bytes from an offset, for sendfile's read-and-send path (internal).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "corio/task.hpp"

namespace corio::detail {

/// What sock_sendfile and stream_writer::sendfile send when sendfile(2) cannot be used (a pipe as the
/// file, a TLS or pipe stream): pread(2) from the offset on; on an unseekable fd (ESPIPE), read(2) after
/// reading and dropping `offset` bytes. Waits for readability when a non-blocking fd has nothing yet.
/// The fd is borrowed.
class file_source {
public:
  file_source(int fd, std::uint64_t offset) noexcept : fd_(fd), pos_(offset) {}
  /// Up to buf.size() bytes (buf not empty); 0 at end of file. Raises std::system_error naming the fd.
  task<std::size_t> read(std::span<char> buf);

private:
  int fd_;
  std::uint64_t pos_;    // the next byte's offset (pread), or the bytes still to skip (read)
  bool seekable_ = true; // false after pread said ESPIPE
};

} // namespace corio::detail
