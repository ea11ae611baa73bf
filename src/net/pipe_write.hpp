// A writev() to a pipe, and a sendfile() to a socket, that cannot raise SIGPIPE (internal).
#pragma once

#include <sys/types.h>

#include <cstddef>

struct iovec;

namespace corio::detail {

/// writev(fd, iov, count), except that a reader that is gone gives -1 / EPIPE and never SIGPIPE.
///
/// Sockets have MSG_NOSIGNAL; pipes have nothing like it, and corio does not change the process's
/// SIGPIPE disposition behind the program's back (Python ignores SIGPIPE at startup; a C++ library
/// should not). So SIGPIPE is blocked in this thread for the duration of the write — the signal a
/// write raises is directed at the writing thread, so it then stays pending on this thread — and a
/// SIGPIPE that the write caused is taken back with sigtimedwait() before the mask is restored. An
/// instance that was already pending before the write (the thread had it blocked) is left alone.
/// Costs two extra system calls per write (three if the thread already blocks SIGPIPE) — on pipe
/// writes only, which are batched up to 64 buffers each.
long pipe_writev(int fd, const iovec* iov, std::size_t count) noexcept;

/// sendfile(out_fd, in_fd, offset, count) the same way: sendfile(2) takes no MSG_NOSIGNAL, and a peer
/// that reset (or our own shutdown of the sending side) makes it raise SIGPIPE even on a socket.
long sendfile_nosignal(int out_fd, int in_fd, off_t* offset, std::size_t count) noexcept;

} // namespace corio::detail
