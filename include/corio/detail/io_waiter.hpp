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

/// A completed() result that means "nothing happened, try again".
[[nodiscard]] constexpr bool recv_retryable(long res) noexcept {
  return res == -ECANCELED || res == -ENOBUFS || res == -EINTR || res == -EAGAIN;
}

} // namespace corio::detail
