// corio::open_pipe_reader / open_pipe_writer / open_pipe: streams over pipes, asyncio's
// loop.connect_read_pipe / connect_write_pipe with a StreamReader / StreamWriter.
#pragma once

#include <string>

#include "corio/net/socket.hpp"
#include "corio/net/stream_options.hpp"
#include "corio/net/stream_reader.hpp"
#include "corio/net/stream_writer.hpp"

namespace corio {

struct connection;

/// A stream_reader over `fd`: the read end of a pipe or FIFO, a socket, or a character device (a
/// terminal). Takes ownership of `fd` (made non-blocking and close-on-exec; closed when the stream closes
/// or its last copy goes away: pass dup(fd) to keep yours, e.g. for STDIN_FILENO; O_NONBLOCK belongs to
/// the open file description, so a terminal or pipe shared with other processes stays non-blocking for
/// them too, as with asyncio's connect_read_pipe). Everything of
/// stream_reader works (read, readline, readuntil, readexactly, limits); end of file comes when every
/// writer has closed its end. `options.limit` is the buffer limit. Nothing is read until a task reads.
///
/// Errors (raised here, and then `fd` is not taken): std::system_error(EBADF) naming the fd when it is
/// not open; std::invalid_argument when it is a regular file, a directory or a block device (use
/// read_file / the files API for those: epoll cannot wait for them) or when it is not open for reading.
[[nodiscard]] stream_reader open_pipe_reader(int fd, stream_options options = stream_options());

/// A stream_writer over `fd`: the write end of a pipe or FIFO, a socket, or a character device. Takes
/// ownership of `fd` as open_pipe_reader() does; the same errors (not open for writing instead).
/// write() never waits; drain() waits above the high watermark (options.high_water / low_water). A write
/// when the reading end is gone raises std::system_error(EPIPE) on this stream only (no SIGPIPE).
/// write_eof() closes the pipe once the queue is flushed (a pipe has no half-close), as close() does.
[[nodiscard]] stream_writer open_pipe_writer(int fd, stream_options options = stream_options());

/// Both ends of a new pipe (pipe2), as streams: what is written to `writer` is read from `reader`.
struct pipe_streams {
  stream_reader reader;
  stream_writer writer;
};
/// Raises std::system_error naming pipe2 when the process is out of fds.
[[nodiscard]] pipe_streams open_pipe(stream_options options = stream_options());

namespace detail {
enum class pipe_end : unsigned char { read, write };
/// Checks `fd` as open_pipe_reader / open_pipe_writer say (`who` names the caller in errors) and takes
/// it: non-blocking, close-on-exec, in a socket that closes it.
socket adopt_pipe(int fd, pipe_end end, const char* who);
/// The label that names a pipe stream in errors: "read pipe (fd 5)".
std::string pipe_label(int fd, pipe_end end);
/// A reader and a writer over one stream on `fd` (checked and taken as above): a pipe transport's.
connection pipe_connection(int fd, pipe_end end, const stream_options& options, const char* who);
} // namespace detail

} // namespace corio
