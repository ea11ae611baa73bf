// How the net code reports a failed syscall, and candidates that a local address cannot use (internal).
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

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

/// With a local address, only the candidates of its family can be used from it (asyncio skips the
/// others too): keeps those, or raises EAFNOSUPPORT naming `who`, the local address and the candidates.
inline void keep_local_family(std::vector<address>& candidates, const std::optional<address>& local,
                              std::string_view who) {
  if (!local || candidates.empty())
    return;
  std::string all;
  for (const address& a : candidates)
    all.append(all.empty() ? "" : ", ").append(a.to_string());
  std::erase_if(candidates, [&](const address& a) { return a.family() != local->family(); });
  if (candidates.empty())
    throw std::system_error(EAFNOSUPPORT, std::generic_category(),
                            "corio: " + std::string(who) + ": no address of the local address's family (local " +
                                local->to_string() + "; addresses: " + all + ")");
}

} // namespace corio::detail
