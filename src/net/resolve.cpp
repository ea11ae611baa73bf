// Name resolution: numeric and well-known hosts at once, everything else through getaddrinfo() on the
// thread pool (getaddrinfo blocks, and glibc has no asynchronous variant worth its complexity).
#include "corio/net/resolve.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>

#include "../core/nul_check.hpp"
#include "corio/to_thread.hpp"

namespace corio {
namespace {

class gai_category final : public std::error_category {
public:
  [[nodiscard]] const char* name() const noexcept override { return "getaddrinfo"; }
  [[nodiscard]] std::string message(int code) const override { return ::gai_strerror(code); }
};

/// What the pool thread hands back: the addresses, or the EAI_* code (and errno for EAI_SYSTEM).
struct lookup_result {
  std::vector<address> addresses;
  int code = 0;
  int sys_errno = 0;
};

lookup_result lookup(const std::string& host, std::uint16_t port, address_family family) {
  addrinfo hints{};
  hints.ai_family = family == address_family::ipv4 ? AF_INET : family == address_family::ipv6 ? AF_INET6 : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM; // one entry per address, not one per socket type
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  lookup_result r;
  r.code = ::getaddrinfo(host.c_str(), nullptr, &hints, &list);
  if (r.code != 0) {
    r.sys_errno = errno;
    return r;
  }
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    address a = address::from_raw(ai->ai_addr, ai->ai_addrlen);
    if (!a.is_ip())
      continue;
    a = a.with_port(port);
    if (std::find(r.addresses.begin(), r.addresses.end(), a) == r.addresses.end())
      r.addresses.push_back(a);
  }
  ::freeaddrinfo(list);
  return r;
}

} // namespace

const std::error_category& resolve_category() noexcept {
  static const gai_category category;
  return category;
}

std::vector<address> resolve_numeric(const std::string& host, std::uint16_t port) {
  detail::reject_nul_host(host, "resolve_numeric()");
  if (host.empty())
    return {address::any_ipv4(port), address::any_ipv6(port)};
  if (host == "localhost")
    return {address::loopback_ipv4(port), address::loopback_ipv6(port)};
  try {
    return {address::from_ip(host, port)};
  } catch (const std::invalid_argument&) {
    return {};
  }
}

task<std::vector<address>> resolve_dns(std::string host, std::uint16_t port, address_family family) {
  detail::reject_nul_host(host, "resolve_dns()");
  if (family != address_family::unspecified && family != address_family::ipv4 && family != address_family::ipv6)
    throw std::invalid_argument("corio: resolve_dns(\"" + host + "\"): DNS answers only address_family::ipv4, ipv6 " +
                                "or unspecified (both), not " +
                                (family == address_family::unix_path ? std::string("unix_path")
                                                                     : std::to_string(static_cast<unsigned>(family))));
  // By value into the pool's operation: a cancelled await leaves it running with its own copy.
  auto run = [host, port, family] { return lookup(host, port, family); };
  lookup_result r = co_await to_thread(run);
  if (r.code == EAI_SYSTEM)
    throw std::system_error(r.sys_errno, std::generic_category(), "corio: cannot resolve \"" + host + "\"");
  if (r.code != 0)
    throw std::system_error(r.code, resolve_category(), "corio: cannot resolve \"" + host + "\"");
  if (r.addresses.empty())
    throw std::system_error(EAI_NONAME, resolve_category(), "corio: cannot resolve \"" + host + "\": no IP address");
  co_return std::move(r.addresses);
}

namespace {
struct name_result {
  name_info info;
  int code = 0;
  int sys_errno = 0;
};

name_result lookup_name(const address& a, name_flags flags) {
  const auto has = [flags](name_flags f) { return (static_cast<unsigned>(flags) & static_cast<unsigned>(f)) != 0; };
  const int ni = (has(name_flags::numeric_host) ? NI_NUMERICHOST : 0) |
                 (has(name_flags::numeric_service) ? NI_NUMERICSERV : 0) |
                 (has(name_flags::name_required) ? NI_NAMEREQD : 0) | (has(name_flags::no_fqdn) ? NI_NOFQDN : 0) |
                 (has(name_flags::datagram) ? NI_DGRAM : 0);
  char host[NI_MAXHOST];
  char service[NI_MAXSERV];
  name_result r;
  r.code = ::getnameinfo(static_cast<const sockaddr*>(a.data()), static_cast<socklen_t>(a.size()), host, sizeof host,
                         service, sizeof service, ni);
  if (r.code != 0) {
    r.sys_errno = errno;
    return r;
  }
  r.info = name_info{host, service};
  return r;
}
} // namespace

task<name_info> resolve_name(address a, name_flags flags) {
  if (!a.is_ip())
    throw std::invalid_argument("corio: resolve_name() needs an IP address, not " + a.to_string());
  auto run = [a, flags] { return lookup_name(a, flags); }; // by value: a cancelled await leaves it running
  name_result r = co_await to_thread(run);
  if (r.code == EAI_SYSTEM)
    throw std::system_error(r.sys_errno, std::generic_category(), "corio: cannot find the name of " + a.to_string());
  if (r.code != 0)
    throw std::system_error(r.code, resolve_category(), "corio: cannot find the name of " + a.to_string());
  co_return std::move(r.info);
}

task<std::vector<address>> resolve(std::string host, std::uint16_t port) {
  detail::reject_nul_host(host, "resolve()");
  std::vector<address> out = resolve_numeric(host, port);
  if (out.empty())
    out = co_await resolve_dns(std::move(host), port);
  co_return out;
}

} // namespace corio
