// corio::address: parsing and printing with inet_pton / inet_ntop (numeric only, never DNS).
#include "corio/net/address.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "../core/nul_check.hpp"

namespace corio {
namespace {

static_assert(sizeof(sockaddr_storage) <= address::capacity());

[[noreturn]] void bad(std::string_view what, std::string_view text) {
  std::string msg("corio: ");
  msg.append(what).append(": \"");
  detail::append_showing_nul(msg, text); // abstract names, a bad path
  msg.append("\"");
  throw std::invalid_argument(msg);
}

/// `text` as a decimal number: nullopt unless it is digits only (and not empty); bad(out_of_range) above
/// `max` (at most 2^32 - 1, so that nothing overflows while it is read).
std::optional<std::uint64_t> parse_decimal(std::string_view text, std::uint64_t max, const char* out_of_range,
                                           std::string_view whole) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  std::uint64_t v = 0;
  for (char c : text) {
    v = v * 10 + std::uint64_t(c - '0');
    if (v > max)
      bad(out_of_range, whole);
  }
  return v;
}

std::uint16_t parse_port(std::string_view text, std::string_view whole) {
  const std::optional<std::uint64_t> v =
      text.size() > 5 ? std::nullopt : parse_decimal(text, 65535, "port out of range in address", whole);
  if (!v)
    bad("bad port in address", whole);
  return static_cast<std::uint16_t>(*v);
}

} // namespace

address address::from_ip(std::string_view ip, std::uint16_t port) {
  std::string_view text = ip;
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']')
    ip = ip.substr(1, ip.size() - 2);
  if (ip.empty() || ip.size() >= INET6_ADDRSTRLEN + IF_NAMESIZE)
    bad("not a numeric IP address", text);
  if (ip.find('\0') != std::string_view::npos) // inet_pton and if_nametoindex would stop there
    bad("NUL byte inside an IP address", text);
  std::string host(ip);
  address a;
  if (host.find(':') == std::string::npos) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &sin.sin_addr) != 1)
      bad("not a numeric IP address", text);
    std::memcpy(a.storage_, &sin, sizeof sin);
    a.size_ = sizeof sin;
    a.family_ = address_family::ipv4;
    return a;
  }
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  if (auto pct = host.find('%'); pct != std::string::npos) { // a zone: "fe80::1%eth0" or "%2"
    std::string zone = host.substr(pct + 1);
    host.resize(pct);
    std::uint32_t idx = ::if_nametoindex(zone.c_str());
    if (idx == 0) // sin6_scope_id is 32 bits: a larger index must not wrap to another interface
      if (std::optional<std::uint64_t> v =
              parse_decimal(zone, 0xffffffffu, "IPv6 zone index out of range (above 4294967295) in address", text))
        idx = static_cast<std::uint32_t>(*v);
    if (idx == 0)
      bad("unknown IPv6 zone in address", text);
    sin6.sin6_scope_id = idx;
  }
  if (::inet_pton(AF_INET6, host.c_str(), &sin6.sin6_addr) != 1)
    bad("not a numeric IP address", text);
  std::memcpy(a.storage_, &sin6, sizeof sin6);
  a.size_ = sizeof sin6;
  a.family_ = address_family::ipv6;
  return a;
}

address address::unix_path(std::string_view path) {
  sockaddr_un sun{};
  if (path.empty())
    bad("empty Unix socket path", path);
  if (path.size() >= sizeof sun.sun_path + (path.front() == '\0' ? 1 : 0))
    bad("Unix socket path too long (max 107 bytes)", path);
  if (path.front() != '\0' && path.find('\0') != std::string_view::npos)
    bad("NUL byte inside a Unix socket path", path);
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.data(), path.size());
  address a;
  std::memcpy(a.storage_, &sun, sizeof sun);
  // Abstract names are exactly as long as given; paths carry their terminating NUL.
  a.size_ = static_cast<std::uint32_t>(offsetof(sockaddr_un, sun_path) + path.size() + (path.front() == '\0' ? 0 : 1));
  a.family_ = address_family::unix_path;
  return a;
}

address address::parse(std::string_view text) {
  if (text.substr(0, 5) == "unix:")
    return unix_path(text.substr(5));
  if (!text.empty() && (text.front() == '/' || text.front() == '.'))
    return unix_path(text);
  if (!text.empty() && text.front() == '@')
    return unix_path(std::string(1, '\0').append(text.substr(1)));
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      bad("expected [ipv6]:port", text);
    return from_ip(text.substr(1, close - 1), parse_port(text.substr(close + 2), text));
  }
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos)
    bad("expected ip:port, [ipv6]:port or a Unix path", text);
  if (text.find(':') != colon)
    bad("an IPv6 address with a port needs brackets: [ipv6]:port", text);
  return from_ip(text.substr(0, colon), parse_port(text.substr(colon + 1), text));
}

address address::any_ipv4(std::uint16_t port) { return from_ip("0.0.0.0", port); }
address address::any_ipv6(std::uint16_t port) { return from_ip("::", port); }
address address::loopback_ipv4(std::uint16_t port) { return from_ip("127.0.0.1", port); }
address address::loopback_ipv6(std::uint16_t port) { return from_ip("::1", port); }

address address::from_raw(const void* sa, std::size_t size) {
  address a;
  if (sa == nullptr || size < sizeof(sa_family_t) || size > sizeof a.storage_)
    return a;
  std::memcpy(a.storage_, sa, size);
  a.size_ = static_cast<std::uint32_t>(size);
  sa_family_t fam;
  std::memcpy(&fam, sa, sizeof fam);
  if (fam == AF_INET && size >= sizeof(sockaddr_in))
    a.family_ = address_family::ipv4;
  else if (fam == AF_INET6 && size >= sizeof(sockaddr_in6))
    a.family_ = address_family::ipv6;
  else if (fam == AF_UNIX)
    a.family_ = address_family::unix_path;
  else
    a = address();
  return a;
}

std::uint16_t address::port() const noexcept {
  if (family_ == address_family::ipv4)
    return ntohs(reinterpret_cast<const sockaddr_in*>(storage_)->sin_port);
  if (family_ == address_family::ipv6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(storage_)->sin6_port);
  return 0;
}

address address::with_port(std::uint16_t port) const {
  address a = *this;
  if (family_ == address_family::ipv4)
    reinterpret_cast<sockaddr_in*>(a.storage_)->sin_port = htons(port);
  else if (family_ == address_family::ipv6)
    reinterpret_cast<sockaddr_in6*>(a.storage_)->sin6_port = htons(port);
  else
    throw std::invalid_argument("corio: with_port() on an address that is not IP: " + to_string());
  return a;
}

std::string address::ip() const {
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 1] = {};
  if (family_ == address_family::ipv4) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(storage_)->sin_addr, buf, sizeof buf);
    return buf;
  }
  if (family_ == address_family::ipv6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(storage_);
    ::inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    std::string out = buf;
    if (sin6->sin6_scope_id != 0) {
      char name[IF_NAMESIZE] = {};
      out += '%';
      out += ::if_indextoname(sin6->sin6_scope_id, name) != nullptr ? std::string(name)
                                                                    : std::to_string(sin6->sin6_scope_id);
    }
    return out;
  }
  return {};
}

std::string address::path() const {
  if (family_ != address_family::unix_path || size_ <= offsetof(sockaddr_un, sun_path))
    return {};
  const auto* sun = reinterpret_cast<const sockaddr_un*>(storage_);
  std::size_t n = size_ - offsetof(sockaddr_un, sun_path);
  if (sun->sun_path[0] != '\0')
    n = ::strnlen(sun->sun_path, n); // drop the terminating NUL
  return std::string(sun->sun_path, n);
}

bool address::is_loopback() const noexcept {
  if (family_ == address_family::ipv4)
    return (ntohl(reinterpret_cast<const sockaddr_in*>(storage_)->sin_addr.s_addr) >> 24) == 127;
  if (family_ == address_family::ipv6)
    return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(storage_)->sin6_addr);
  return false;
}

bool address::is_unspecified_ip() const noexcept {
  if (family_ == address_family::ipv4)
    return reinterpret_cast<const sockaddr_in*>(storage_)->sin_addr.s_addr == 0;
  if (family_ == address_family::ipv6)
    return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(storage_)->sin6_addr);
  return false;
}

std::string address::to_string() const {
  switch (family_) {
  case address_family::ipv4:
    return ip() + ":" + std::to_string(port());
  case address_family::ipv6:
    return std::string("[").append(ip()).append("]:").append(
        std::to_string(port())); // not "[" + (g++ 12 -O3 -Wrestrict)
  case address_family::unix_path: {
    std::string p = path();
    if (p.empty())
      return "unix:(unnamed)";
    if (p.front() == '\0')
      p.front() = '@';
    else if (p.front() != '/' && p.front() != '.')
      p.insert(0, "unix:");
    return p;
  }
  default:
    return "(unspecified)";
  }
}

bool operator==(const address& a, const address& b) noexcept {
  return a.family_ == b.family_ && a.size_ == b.size_ && std::memcmp(a.storage_, b.storage_, a.size_) == 0;
}

} // namespace corio
