// Name resolution: numeric and well-known hosts at once, everything else through getaddrinfo() on the
// thread pool (getaddrinfo blocks, and glibc has no asynchronous variant worth its complexity).
#include "corio/net/resolve.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>

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

task<std::vector<address>> resolve(std::string host, std::uint16_t port) {
  std::vector<address> out = resolve_numeric(host, port);
  if (out.empty())
    out = co_await resolve_dns(std::move(host), port);
  co_return out;
}

} // namespace corio
