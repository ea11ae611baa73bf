// corio::datagram_endpoint over the sock_* operations.
#include "corio/net/datagram.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "../core/nul_check.hpp"
#include "corio/net/resolve.hpp"
#include "corio/net/socket_ops.hpp"
#include "net_error.hpp"
#include "recv_datagram.hpp"

namespace corio {
namespace {

/// The largest datagram the socket can receive, where a receive's max_size is larger: a buffer that
/// big is never needed (asyncio's recvfrom(huge) just works). UDP: 65,535 bytes, headers included. Unix:
/// a datagram fits its sender's SO_SNDBUF, at most twice net.core.wmem_max (read once; 4 MiB if it
/// cannot be; a privileged sender's SO_SNDBUFFORCE beyond it is reported as truncated).
std::size_t datagram_buffer_size(const socket& s, std::size_t max_size) {
  constexpr std::size_t udp_max = 65536;
  if (max_size <= udp_max || !s.is_open())
    return max_size;
  int domain = AF_INET;
  socklen_t len = sizeof domain;
  if (::getsockopt(s.fd(), SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX)
    return udp_max;
  static const std::size_t unix_max = [] {
    std::size_t wmem_max = 2 * 1024 * 1024;
    if (std::FILE* f = std::fopen("/proc/sys/net/core/wmem_max", "re")) {
      unsigned long v = 0;
      if (std::fscanf(f, "%lu", &v) == 1 && v > 0)
        wmem_max = v;
      std::fclose(f);
    }
    return 2 * wmem_max;
  }();
  return max_size < unix_max ? max_size : unix_max;
}

/// "endpoint L" or "endpoint L connected to P", as the datagram protocol's errors name an endpoint; empty
/// when the socket is closed (the caller then uses what close() recorded).
std::string describe(const socket& s) {
  if (!s.is_open())
    return {};
  std::string local;
  try {
    local = s.local_address().to_string();
  } catch (const std::system_error&) {
    local = "(unknown)";
  }
  std::optional<address> peer;
  try {
    peer = s.peer_address();
  } catch (const std::system_error&) { // ENOTCONN: not connected
  }
  return detail::endpoint_name(local, peer ? &*peer : nullptr);
}

/// Raises `e` again with the endpoint named: "corio: <op>[ <to>] (endpoint L[ connected to P])[: socket
/// closed]: <strerror>", the same error code.
[[noreturn]] void raise_named(const std::system_error& e, const char* op, const address* to, const socket& s,
                              const std::string& closed_name) {
  std::string what = std::string("corio: ") + op;
  if (to != nullptr && to->family() != address_family::unspecified)
    what += " " + to->to_string();
  std::string who = describe(s);
  if (who.empty())
    who = closed_name.empty() ? "endpoint closed" : closed_name;
  what += " (" + who + ")";
  if (!s.is_open())
    what += ": socket closed";
  throw std::system_error(e.code(), what);
}

} // namespace

void datagram_endpoint::close() noexcept {
  if (!sock_.is_open())
    return;
  try {
    closed_name_ = describe(sock_); // for the errors of the operations this interrupts, and later ones
  } catch (...) {                   // out of memory: they say "endpoint closed"
  }
  sock_.close();
}

datagram_endpoint datagram_endpoint::open(const datagram_options& o) {
  address_family fam = o.local.family() != address_family::unspecified ? o.local.family() : o.remote.family();
  if (fam == address_family::unspecified)
    throw std::invalid_argument("corio: a datagram endpoint needs a local or a remote address");
  if (o.local.family() != address_family::unspecified && o.remote.family() != address_family::unspecified &&
      o.local.family() != o.remote.family())
    throw std::invalid_argument("corio: datagram endpoint addresses of different families: " + o.local.to_string() +
                                " and " + o.remote.to_string());
  socket s = socket::open(fam, socket_type::datagram);
  if (o.reuse_address)
    s.set_reuse_address(true);
  if (o.reuse_port)
    s.set_reuse_port(true);
  if (o.broadcast)
    s.set_broadcast(true);
  if (o.local.family() != address_family::unspecified)
    s.bind(o.local);
  if (o.remote.family() != address_family::unspecified) {
    // A datagram connect only sets the default destination: it completes at once, never EINPROGRESS.
    if (::connect(s.fd(), static_cast<const sockaddr*>(o.remote.data()), static_cast<socklen_t>(o.remote.size())) < 0)
      detail::throw_net_error(errno, "connect (datagram) to", &o.remote);
  }
  return datagram_endpoint(std::move(s));
}

task<datagram_endpoint> datagram_endpoint::connect(std::string host, std::uint16_t port, datagram_options o) {
  detail::reject_nul_host(host, "datagram_endpoint::connect()");
  if (o.remote.family() != address_family::unspecified)
    throw std::invalid_argument("corio: datagram_endpoint::connect(\"" + host + "\", ...) with options.remote set too");
  std::vector<address> candidates = co_await resolve(host, port);
  std::optional<address> local;
  if (o.local.family() != address_family::unspecified)
    local = o.local;
  detail::keep_local_family(candidates, local, "datagram_endpoint::connect");
  std::exception_ptr first;
  for (const address& a : candidates) {
    o.remote = a;
    try {
      co_return open(o);
    } catch (const std::system_error&) { // e.g. no IPv6 here: the next address
      if (!first)
        first = std::current_exception();
    }
  }
  if (first)
    std::rethrow_exception(first);
  throw std::system_error(EADDRNOTAVAIL, std::generic_category(),
                          "corio: datagram_endpoint::connect: \"" + host + "\" resolved to no address");
}

task<std::size_t> datagram_endpoint::sendto(std::string_view data, address to) {
  try {
    co_return co_await sock_sendto(sock_, data, to);
  } catch (const std::system_error& e) {
    raise_named(e, "sendto", &to, sock_, closed_name_);
  }
}

task<std::size_t> datagram_endpoint::send(std::string_view data) {
  // send() on an unconnected datagram socket fails with EDESTADDRREQ: a clear error, not a hang.
  try {
    co_return co_await sock_send(sock_, data);
  } catch (const std::system_error& e) {
    raise_named(e, "send", nullptr, sock_, closed_name_);
  }
}

task<datagram> datagram_endpoint::recvfrom(std::size_t max_size) {
  datagram d;
  d.data.resize(datagram_buffer_size(sock_, max_size));
  detail::datagram_info r;
  try {
    r = co_await detail::recv_datagram(sock_, std::span<char>(d.data.data(), d.data.size()));
  } catch (const std::system_error& e) {
    raise_named(e, "recvfrom", nullptr, sock_, closed_name_);
  }
  d.data.resize(r.size);
  d.data.shrink_to_fit();
  d.from = std::move(r.from);
  d.size = r.full_size;
  d.truncated = r.truncated();
  co_return d;
}

task<std::string> datagram_endpoint::recv(std::size_t max_size) {
  std::string out(datagram_buffer_size(sock_, max_size), '\0');
  std::size_t n = 0;
  try {
    n = co_await sock_recv(sock_, std::span<char>(out.data(), out.size())); // recv(2): not the ring
  } catch (const std::system_error& e) {
    raise_named(e, "recv", nullptr, sock_, closed_name_);
  }
  out.resize(n);
  co_return out;
}

} // namespace corio
