// How the net code reports a failed syscall (internal).
#pragma once

#include <string>
#include <string_view>
#include <system_error>

#include "corio/net/address.hpp"

namespace corio::detail {

/// std::system_error "corio: <op> <address>: <strerror>", e.g. "corio: connect to 127.0.0.1:9: Connection
/// refused". `addr` may be null or unspecified (then only the operation is named).
[[noreturn]] inline void throw_net_error(int err, std::string_view op, const address* addr = nullptr) {
  std::string what("corio: ");
  what.append(op);
  if (addr != nullptr && addr->family() != address_family::unspecified)
    what.append(" ").append(addr->to_string());
  throw std::system_error(err, std::generic_category(), what);
}

} // namespace corio::detail
