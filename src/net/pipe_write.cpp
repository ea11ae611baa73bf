// pipe_writev, sendfile_nosignal: SIGPIPE held off around one writev() or sendfile().
#include "pipe_write.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/uio.h>

#include <cerrno>
#include <climits>

namespace corio::detail {

namespace {
/// Runs `call` (a write that may fail with EPIPE) with SIGPIPE blocked in this thread; a SIGPIPE it
/// raised is taken off the pending set before the mask is restored, so it is never delivered.
template <class Call> long without_sigpipe(Call call) noexcept {
  sigset_t pipe_only;
  ::sigemptyset(&pipe_only);
  ::sigaddset(&pipe_only, SIGPIPE);
  sigset_t old;
  ::pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  const bool was_blocked = ::sigismember(&old, SIGPIPE) == 1;
  bool was_pending = false;
  if (was_blocked) {
    sigset_t pending;
    ::sigpending(&pending);
    was_pending = ::sigismember(&pending, SIGPIPE) == 1;
  }
  long r;
  do
    r = call();
  while (r < 0 && errno == EINTR);
  const int err = errno;
  if (r < 0 && err == EPIPE && !was_pending) {
    const timespec zero{};
    while (::sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  if (!was_blocked)
    ::pthread_sigmask(SIG_UNBLOCK, &pipe_only, nullptr);
  errno = err;
  return r;
}
} // namespace

long pipe_writev(int fd, const iovec* iov, std::size_t count) noexcept {
  const int n = count > IOV_MAX ? IOV_MAX : static_cast<int>(count);
  return without_sigpipe([&] { return static_cast<long>(::writev(fd, iov, n)); });
}

long sendfile_nosignal(int out_fd, int in_fd, off_t* offset, std::size_t count) noexcept {
  return without_sigpipe([&] { return static_cast<long>(::sendfile(out_fd, in_fd, offset, count)); });
}

} // namespace corio::detail
