// corio::stream_options: buffer limits of stream readers and writers, and TLS for a client connection.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "corio/clock.hpp"
#include "corio/net/tls.hpp"

namespace corio {

struct stream_options {
  /// readuntil()/readline() give up (limit_overrun_error) when no separator is found within this many
  /// bytes (asyncio's `limit`, default 64 KiB).
  std::size_t limit = 64 * 1024;
  /// drain() waits once more than `high_water` bytes are queued, until at most `low_water` are
  /// (asyncio's defaults: 64 KiB and 16 KiB). Over TLS the queue holds encrypted records.
  std::size_t high_water = 64 * 1024;
  std::size_t low_water = 16 * 1024;
  /// TCP_NODELAY on TCP connections (asyncio sets it too): small writes go out at once.
  bool no_delay = true;
  /// open_connection: speak TLS with this (client) context (asyncio's ssl=); empty: plaintext.
  tls_context tls{};
  /// The name sent as SNI and checked against the server's certificate; empty: the host given to
  /// open_connection (an IP address is checked against the certificate's IP addresses).
  std::string server_hostname{};
  /// How long the handshake may take before it fails with tls_error (tls_errc::handshake_timeout).
  duration tls_handshake_timeout = std::chrono::seconds(60);
};

} // namespace corio
