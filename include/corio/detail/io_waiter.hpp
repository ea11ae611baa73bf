// What the backends deliver readiness to (internal; no OS headers).
#pragma once

#include <cerrno>

namespace corio::detail {

enum class io_dir : unsigned char { read = 0, write = 1 };

/// Someone waiting for readiness; `ready()` is called from the backend's poll on the loop's thread.
class io_waiter {
public:
  virtual void ready() noexcept = 0;

protected:
  ~io_waiter() = default;
};

/// Someone waiting for a completion-based recv (the io_uring backend): `completed()` is called from the
/// backend's poll on the loop's thread with the bytes received (`data` is valid only during the call),
/// 0 at end of file, or -errno. -ECANCELED and -ENOBUFS mean "nothing happened, try again".
class io_completion {
public:
  virtual void completed(long res, const char* data) noexcept = 0;

protected:
  ~io_completion() = default;
};

/// Someone waiting for a completion-based accept or connect (the io_uring backend): `finished()` is
/// called from the backend's poll on the loop's thread with, for an accept, the new connection's fd
/// (non-blocking, close-on-exec; the waiter owns it from then on) and the peer's address (`addr`,
/// `len` bytes, valid only during the call; `len` 0 if it could not be had), for a connect 0; or
/// -errno. -ECANCELED means "nothing happened, try again"; -EBADF that the fd was forgotten (closed).
class net_completion {
public:
  virtual void finished(int res, const void* addr, unsigned len) noexcept = 0;

protected:
  ~net_completion() = default;
};

/// A completed() result that means "nothing happened, try again".
[[nodiscard]] constexpr bool recv_retryable(long res) noexcept {
  return res == -ECANCELED || res == -ENOBUFS || res == -EINTR || res == -EAGAIN;
}

} // namespace corio::detail
