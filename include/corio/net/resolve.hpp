// corio::resolve: host names to addresses.
#pragma once

#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

#include "corio/net/address.hpp"
#include "corio/task.hpp"

namespace corio {

/// What a host string means without asking DNS: a numeric IPv4/IPv6 address (brackets allowed) gives
/// itself; "localhost" gives 127.0.0.1 and ::1; "" gives the wildcard addresses 0.0.0.0 and :: (for
/// servers). Anything else gives an empty vector. A host with a NUL byte raises std::invalid_argument
/// (here and in resolve() and resolve_dns(): getaddrinfo and inet_pton would read only what comes before
/// it, another host than the one given; asyncio: ValueError).
[[nodiscard]] std::vector<address> resolve_numeric(const std::string& host, std::uint16_t port);

/// The addresses of `host` at `port`, in the order to try them (IPv4 and IPv6, duplicates removed).
/// Numeric hosts, "localhost" and "" are answered at once (resolve_numeric); other names go to
/// resolve_dns(). Cancellable.
[[nodiscard]] task<std::vector<address>> resolve(std::string host, std::uint16_t port);

/// getaddrinfo() for `host`, run on the loop's default thread pool (as asyncio does), whatever the host
/// is. Cancelling the awaiting task returns at once; a lookup already running finishes on its thread
/// and its answer is dropped. Failure raises std::system_error in resolve_category() (the getaddrinfo
/// EAI_* code, gai_strerror's text) naming the host, e.g. "corio: cannot resolve \"x.invalid\": Name or
/// service not known". std::invalid_argument for `family` unix_path (DNS answers IP addresses only).
[[nodiscard]] task<std::vector<address>> resolve_dns(std::string host, std::uint16_t port,
                                                     address_family family = address_family::unspecified);

/// What resolve_name() found for an address: the host's name and the port's service name.
struct name_info {
  std::string host;
  std::string service;
};

/// Flags of resolve_name() (getnameinfo's NI_* flags, combined with |).
enum class name_flags : unsigned {
  none = 0,
  numeric_host = 1,    // NI_NUMERICHOST: the address as text, no lookup
  numeric_service = 2, // NI_NUMERICSERV: the port as digits
  name_required = 4,   // NI_NAMEREQD: an error instead of the numeric form when the host has no name
  no_fqdn = 8,         // NI_NOFQDN: only the host part of a local name
  datagram = 16,       // NI_DGRAM: the service's UDP name
};
[[nodiscard]] constexpr name_flags operator|(name_flags a, name_flags b) noexcept {
  return static_cast<name_flags>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}

/// getnameinfo() for an IP address (asyncio's loop.getnameinfo), run on the loop's default thread pool:
/// the host's name (/etc/hosts, then DNS; its numeric form when it has none, unless name_required) and
/// the service's (from /etc/services, else the port's digits). Cancellable as resolve_dns() is.
/// std::invalid_argument for an address that is not IP; a failed lookup raises std::system_error in
/// resolve_category() naming the address.
[[nodiscard]] task<name_info> resolve_name(address a, name_flags flags = name_flags::none);

/// The error category of resolve_dns() failures: values are getaddrinfo's EAI_* codes.
[[nodiscard]] const std::error_category& resolve_category() noexcept;

} // namespace corio
