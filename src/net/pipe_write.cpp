// pipe_writev: SIGPIPE held off around one writev().
#include "pipe_write.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/uio.h>

#include <cerrno>
#include <climits>

namespace corio::detail {

long pipe_writev(int fd, const iovec* iov, std::size_t count) noexcept {
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
  const int n = count > IOV_MAX ? IOV_MAX : static_cast<int>(count);
  long r;
  do
    r = ::writev(fd, iov, n);
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

} // namespace corio::detail
