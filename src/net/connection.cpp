// open_connection and friends: resolve, connect each address in turn, wrap in streams.
#include "corio/net/connection.hpp"

#include <exception>
#include <system_error>

#include "corio/net/resolve.hpp"
#include "corio/net/socket_ops.hpp"
#include "net_error.hpp"
#include "stream_transport.hpp"

namespace corio {

connection make_streams(socket s, address peer, stream_options o) {
  if (peer.family() == address_family::unspecified)
    peer = s.peer_address();
  if (o.no_delay && peer.is_ip())
    s.set_no_delay(true);
  auto t = std::make_shared<detail::stream_transport>(std::move(s), std::move(peer), o);
  return connection{stream_reader(t), stream_writer(t)};
}

task<connection> open_connection(address remote, stream_options o) {
  socket s = socket::open(remote.family(), socket_type::stream);
  co_await sock_connect(s, remote);
  co_return make_streams(std::move(s), std::move(remote), o);
}

task<connection> open_connection(std::string host, std::uint16_t port, stream_options o) {
  std::vector<address> candidates = co_await resolve(host, port);
  std::exception_ptr first_error;
  for (const address& a : candidates) {
    // A failed attempt only moves on to the next address; cancellation ends it all (it propagates).
    try {
      socket s = socket::open(a.family(), socket_type::stream);
      co_await sock_connect(s, a);
      co_return make_streams(std::move(s), a, o);
    } catch (const std::system_error&) {
      if (!first_error)
        first_error = std::current_exception();
    }
  }
  std::rethrow_exception(first_error);
}

task<connection> open_unix_connection(std::string path, stream_options o) {
  co_return co_await open_connection(address::unix_path(path), o);
}

} // namespace corio
