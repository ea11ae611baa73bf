// open_connection and friends: resolve, connect each address in turn, wrap in streams.
#include "corio/net/connection.hpp"

#include <exception>
#include <optional>
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

namespace {

/// The TLS handshake of a new client connection (when options.tls is set); `host`: the name asked for.
task<connection> maybe_tls(connection c, stream_options o, std::string host) {
  if (o.tls) {
    std::string name = o.server_hostname.empty() ? std::move(host) : o.server_hostname.str();
    co_await c.writer.start_tls(o.tls, std::move(name), o.tls_handshake_timeout);
  }
  co_return std::move(c);
}

} // namespace

task<connection> open_connection(address remote, stream_options o) {
  socket s = socket::open(remote.family(), socket_type::stream);
  co_await sock_connect(s, remote);
  std::string host = remote.ip();
  connection c = make_streams(std::move(s), std::move(remote), o);
  connection done = co_await maybe_tls(std::move(c), o, std::move(host)); // named: g++ 12 and temporaries
  co_return done;
}

task<connection> open_connection(std::string host, std::uint16_t port, stream_options o) {
  std::vector<address> candidates = co_await resolve(host, port);
  std::exception_ptr first_error;
  for (const address& a : candidates) {
    // A failed attempt only moves on to the next address; cancellation ends it all (it propagates).
    // A failed TLS handshake does not: the next address would present the same certificate.
    std::optional<connection> c;
    try {
      socket s = socket::open(a.family(), socket_type::stream);
      co_await sock_connect(s, a);
      c = make_streams(std::move(s), a, o);
    } catch (const std::system_error&) {
      if (!first_error)
        first_error = std::current_exception();
    }
    if (c) {
      connection done = co_await maybe_tls(std::move(*c), o, std::move(host));
      co_return done;
    }
  }
  std::rethrow_exception(first_error);
}

task<connection> open_unix_connection(std::string path, stream_options o) {
  co_return co_await open_connection(address::unix_path(path), o);
}

} // namespace corio
