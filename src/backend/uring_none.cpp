// Built instead of uring.cpp when liburing was not found: `auto` uses epoll, `io_uring` explains why not.
#include <cerrno>
#include <system_error>

#include "backend.hpp"

namespace corio::detail {

std::unique_ptr<backend> make_uring_backend() {
  throw std::system_error(ENOSYS, std::generic_category(), "corio was built without liburing (liburing-dev)");
}

} // namespace corio::detail
