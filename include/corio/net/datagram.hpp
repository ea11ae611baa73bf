// corio::datagram_endpoint: UDP (or Unix datagram) sockets as awaitable send/receive calls
// (asyncio's loop.create_datagram_endpoint, without the protocol callbacks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "corio/net/address.hpp"
#include "corio/net/socket.hpp"
#include "corio/task.hpp"

namespace corio {

/// One received datagram and its sender. `data` holds at most the max_size the receive was given; a
/// longer datagram is cut there by the kernel (the rest is gone) and says so: `truncated`, and `size` its
/// real length (data.size() when whole).
/// What recvfrom() returns. `auto [data, from] = co_await ep.recvfrom();` binds the first two (a
/// tuple-like type of two elements); size and truncated are read by name.
struct datagram {
  std::string data;
  address from;
  std::size_t size = 0;   // the datagram's real length (> data.size() when truncated)
  bool truncated = false; // longer than max_size: `data` is only its first max_size bytes

  template <std::size_t I> auto& get() & {
    static_assert(I < 2);
    if constexpr (I == 0)
      return data;
    else
      return from;
  }
  template <std::size_t I> const auto& get() const& {
    static_assert(I < 2);
    if constexpr (I == 0)
      return data;
    else
      return from;
  }
  template <std::size_t I> auto&& get() && {
    static_assert(I < 2);
    if constexpr (I == 0)
      return std::move(data);
    else
      return std::move(from);
  }
};

struct datagram_options {
  address local{};  // bind here (unspecified: an ephemeral port of the remote's family)
  address remote{}; // connect here: send()/recv() then talk to it only (unspecified: not connected)
  bool reuse_address = false;
  bool reuse_port = false;
  bool broadcast = false;
};

/// A datagram socket. Receiving is one task at a time, sending too; both are cancellable and lose
/// nothing when cancelled (a datagram is taken from the kernel only by the call that returns it).
/// Sending never blocks for long on UDP: a full send buffer waits for room. ICMP errors of a connected
/// endpoint (ECONNREFUSED) surface on the next call, as the kernel reports them. Errors raise
/// std::system_error naming the operation, the destination (sendto) and the endpoint: its local address
/// and, when connected, its peer, e.g. "corio: recv (endpoint 127.0.0.1:40000 connected to
/// 127.0.0.1:9): Connection refused".
class datagram_endpoint {
public:
  datagram_endpoint() noexcept = default;
  explicit datagram_endpoint(socket s) noexcept : sock_(std::move(s)) {}

  /// Opens, binds and (optionally) connects; std::invalid_argument if neither address is given or their
  /// families differ, std::system_error naming the address if a call fails.
  [[nodiscard]] static datagram_endpoint open(const datagram_options& options);
  /// asyncio's remote_addr=(host, port) with a name: resolves `host` (corio::resolve: numeric hosts and
  /// "localhost" at once, other names by DNS on the thread pool) and opens an endpoint connected to the
  /// first of its addresses that opens, as open() with options.remote set to it. With options.local set,
  /// only addresses of its family are tried. Raises the resolver's error, the first address's open
  /// error, std::system_error(EAFNOSUPPORT) naming the local address and the host's addresses when
  /// none has options.local's family, or std::invalid_argument when options.remote is set too or `host`
  /// has a NUL byte. Cancellable (the lookup).
  [[nodiscard]] static task<datagram_endpoint> connect(std::string host, std::uint16_t port,
                                                       datagram_options options = datagram_options());

  /// Sends one datagram to `to`. Returns its size.
  task<std::size_t> sendto(std::string_view data, address to);
  /// Sends one datagram to the connected remote.
  task<std::size_t> send(std::string_view data);
  /// Receives one datagram into a buffer of `max_size` bytes (as Python's sock.recvfrom(bufsize)). A
  /// longer one is truncated by the kernel, and marked: `truncated` is set, `data` holds its first
  /// max_size bytes and `size` its real length (the rest cannot be read). 64 KiB holds any UDP datagram;
  /// Unix datagrams can be longer (up to the sender's SO_SNDBUF, about 208 KiB by default). A max_size
  /// beyond the largest datagram the socket can receive (64 KiB for UDP, twice net.core.wmem_max for
  /// Unix) allocates only that much: recvfrom(SIZE_MAX) works.
  task<datagram> recvfrom(std::size_t max_size = 65536);
  /// Receives one datagram's bytes (from the connected remote) into a buffer of `max_size` bytes, as
  /// recv(2) and Python's sock.recv(bufsize): a longer datagram is truncated to max_size and nothing says
  /// so. Use recvfrom() to learn whether a datagram was truncated. A huge max_size is cut as recvfrom's.
  task<std::string> recv(std::size_t max_size = 65536);

  [[nodiscard]] address local_address() const { return sock_.local_address(); }
  [[nodiscard]] address remote_address() const { return sock_.peer_address(); }
  [[nodiscard]] socket& raw() noexcept { return sock_; }
  [[nodiscard]] bool is_open() const noexcept { return sock_.is_open(); }
  /// Closes the socket; operations waiting on it raise std::system_error(EBADF), naming the endpoint as
  /// it was.
  void close() noexcept;

private:
  socket sock_;
  std::string closed_name_; // "endpoint L connected to P", recorded by close() for the errors after it
};

} // namespace corio

// The tuple protocol behind `auto [data, from] = ...` (two elements, as before size and truncated).
namespace std {
template <> struct tuple_size<corio::datagram> : integral_constant<size_t, 2> {};
template <> struct tuple_element<0, corio::datagram> { using type = string; };
template <> struct tuple_element<1, corio::datagram> { using type = corio::address; };
} // namespace std
