// What the backends deliver readiness to (internal; no OS headers).
#pragma once

namespace corio::detail {

enum class io_dir : unsigned char { read = 0, write = 1 };

/// Someone waiting for readiness; `ready()` is called from the backend's poll on the loop's thread.
class io_waiter {
public:
  virtual void ready() noexcept = 0;

protected:
  ~io_waiter() = default;
};

} // namespace corio::detail
