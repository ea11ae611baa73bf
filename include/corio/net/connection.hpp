// corio::open_connection / open_unix_connection (asyncio's streams API, client side).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "corio/net/address.hpp"
#include "corio/net/socket.hpp"
#include "corio/net/stream_options.hpp"
#include "corio/net/stream_reader.hpp"
#include "corio/net/stream_writer.hpp"
#include "corio/task.hpp"

namespace corio {

/// A connection's two halves: `auto [reader, writer] = co_await corio::open_connection(...)`.
struct connection {
  stream_reader reader;
  stream_writer writer;
};

/// Connects to `host`:`port` (see resolve(); each address is tried in turn, or raced with Happy Eyeballs
/// when options.happy_eyeballs_delay is set) and returns the streams.
/// Raises std::system_error naming the address, e.g. "corio: connect to 127.0.0.1:9: Connection
/// refused". Cancellable (also with corio::timeout): a cancelled connect leaves no socket behind.
/// std::invalid_argument, before anything is looked up, for a host with a NUL byte (getaddrinfo and
/// OpenSSL would use only what comes before it) and for bad options (see stream_options).
/// With `options.tls` the TLS handshake follows the connect (SNI and the certificate check use
/// `options.server_hostname`, else `host`); it raises tls_error when it fails, e.g. "corio: TLS
/// handshake with 127.0.0.1:4433 failed: certificate verify failed (self-signed certificate)".
[[nodiscard]] task<connection> open_connection(std::string host, std::uint16_t port,
                                               stream_options options = stream_options());
/// Connects to an address (IP or Unix).
[[nodiscard]] task<connection> open_connection(address remote, stream_options options = stream_options());
/// Connects to the first of `candidates` that accepts, tried in turn or with Happy Eyeballs as options
/// say (what open_connection(host, port) does after resolving). The error of the first candidate if
/// none connects; std::invalid_argument for an empty list. TLS checks options.server_hostname, else
/// the IP address that connected.
[[nodiscard]] task<connection> open_connection(std::vector<address> candidates,
                                               stream_options options = stream_options());
/// Connects to the Unix-domain socket at `path` ('\0' first: abstract namespace).
[[nodiscard]] task<connection> open_unix_connection(std::string path, stream_options options = stream_options());

/// Streams over an already connected stream socket (what a server hands to its handler). `peer` is
/// looked up when unspecified, and stays unspecified if the peer is already gone (a connection reset
/// before it was accepted: its first read or write reports it; asyncio's peername None). `options.tls`
/// is not applied here: call `writer.start_tls()`.
[[nodiscard]] connection make_streams(socket connected, address peer = {}, stream_options options = stream_options());

} // namespace corio
