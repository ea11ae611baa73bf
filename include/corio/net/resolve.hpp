// corio::resolve: host names to addresses.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "corio/net/address.hpp"
#include "corio/task.hpp"

namespace corio {

/// What a host string means without asking DNS: a numeric IPv4/IPv6 address (brackets allowed) gives
/// itself; "localhost" gives 127.0.0.1 and ::1; "" gives the wildcard addresses 0.0.0.0 and :: (for
/// servers). Anything else gives an empty vector.
[[nodiscard]] std::vector<address> resolve_numeric(const std::string& host, std::uint16_t port);

/// The addresses of `host` at `port`, in the order to try them. Numeric hosts and "localhost" never
/// leave the loop; other names raise std::system_error(EAI_NONAME-like, "cannot resolve ...") for now
/// (DNS through the thread pool is to come).
[[nodiscard]] task<std::vector<address>> resolve(std::string host, std::uint16_t port);

} // namespace corio
