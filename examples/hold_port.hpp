// --threads N in the example servers (echo_server, http_server): one listener per loop on one port.
#pragma once

#include <corio/corio.hpp>

#include <cstdint>
#include <string>

namespace corio_examples {

/// Port 0 is resolved here, before the loops start, so that every loop binds the same port: a socket
/// bound to `host`:0 with SO_REUSEPORT picks a free port and writes it into `port`. The returned socket
/// (not listening, so it takes no connections) must be kept until the servers are done, or the port
/// could be taken by someone else in between. For a port other than 0 it returns a closed socket.
inline corio::socket hold_port(const std::string& host, std::uint16_t& port) {
  corio::socket holder;
  if (port == 0) {
    const corio::address any = corio::address::from_ip(host, 0);
    holder = corio::socket::open(any.family(), corio::socket_type::stream);
    holder.set_reuse_address(true);
    holder.set_reuse_port(true);
    holder.bind(any);
    port = holder.local_address().port();
  }
  return holder;
}

} // namespace corio_examples
