// recv_datagram: sock_recvfrom that also says whether the datagram was longer than the buffer (internal).
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "corio/net/address.hpp"
#include "corio/net/socket.hpp"
#include "corio/task.hpp"

namespace corio::detail {

/// "endpoint L", or "endpoint L connected to P" when `peer` is given: how errors of a datagram endpoint
/// (datagram_endpoint, datagram_transport) name it. `local`: the local address as printed.
inline std::string endpoint_name(const std::string& local, const address* peer) {
  std::string s = "endpoint " + local;
  if (peer != nullptr)
    s.append(" connected to ").append(peer->to_string());
  return s;
}

/// One datagram as recv_datagram() received it.
struct datagram_info {
  std::size_t size = 0;      // bytes copied into the buffer (at most its size)
  std::size_t full_size = 0; // the datagram's real length: > size when it was truncated
  address from;
  /// Longer than the buffer: only its first `size` bytes were copied, the rest is gone.
  [[nodiscard]] bool truncated() const noexcept { return full_size > size; }
};

/// As sock_recvfrom (a recvmsg(2) first, a readiness wait on EAGAIN, on every backend: never the ring's
/// recv, whose buffers are smaller than a datagram can be), but a datagram longer than `buf` is reported:
/// truncated(), and `full_size` its real length (recvmsg with MSG_TRUNC returns it on Linux for UDP and
/// Unix datagram sockets; a kernel that only sets MSG_TRUNC in msg_flags gives buf.size() + 1). A stream
/// socket is read with sock_recv: bytes, no address, never truncated.
[[nodiscard]] task<datagram_info> recv_datagram(socket& s, std::span<char> buf);

} // namespace corio::detail
