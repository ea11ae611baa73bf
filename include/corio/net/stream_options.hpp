// corio::stream_options: buffer limits of stream readers and writers, and TLS for a client connection.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "corio/clock.hpp"
#include "corio/net/address.hpp"
#include "corio/net/tls.hpp"

namespace corio {

/// A host name for stream_options (convertible from strings). Not a std::string on purpose: g++ 12
/// copies brace-initialised arguments bitwise in a co_await expression (HAZARDS.md 2) — `co_await
/// open_connection(a, {.limit = 8})`, or a defaulted `options = {}` — which an empty std::string does
/// not survive (its buffer points into itself) while an empty shared_ptr does.
class host_name {
public:
  host_name() noexcept = default;
  host_name(std::string_view s) : s_(s.empty() ? nullptr : std::make_shared<const std::string>(s)) {}
  host_name(const char* s) : host_name(std::string_view(s)) {}
  host_name(const std::string& s) : host_name(std::string_view(s)) {}
  [[nodiscard]] bool empty() const noexcept { return s_ == nullptr; }
  [[nodiscard]] std::string str() const { return s_ ? *s_ : std::string(); }

private:
  std::shared_ptr<const std::string> s_;
};

/// Options of a stream connection. With g++ 12, name an options object that sets `tls` or
/// `server_hostname` before passing it in a co_await expression (HAZARDS.md 2: a braced temporary there
/// is copied bitwise and destroyed twice); the defaults and the plain fields are safe inline.
struct stream_options {
  /// readuntil()/readline() give up (limit_overrun_error) when no separator is found within this many
  /// bytes (asyncio's `limit`, default 64 KiB). Must be positive: 0 raises std::invalid_argument from the
  /// call given these options (open_connection, start_server, make_streams, the pipe streams).
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
  /// open_connection (an IP address is checked against the certificate's IP addresses). A name with a
  /// NUL byte raises std::invalid_argument from the call given these options (OpenSSL would send and
  /// check only what comes before it).
  host_name server_hostname{};
  /// How long the handshake may take before it fails with tls_error (tls_errc::handshake_timeout);
  /// zero: no limit. Negative raises std::invalid_argument from the call given these options
  /// (open_connection, connect_accepted_socket), before anything connects (asyncio: ValueError).
  duration tls_handshake_timeout = std::chrono::seconds(60);
  /// open_connection to a host with several addresses: Happy Eyeballs (RFC 8305, asyncio's
  /// happy_eyeballs_delay). Unset: the addresses are tried one after the other, each until it fails.
  /// Set: the next address is tried as soon as the one before fails or this much time passed since it
  /// started, while the earlier ones go on; the first to connect wins and the others are cancelled
  /// (RFC 8305 recommends 250 ms).
  std::optional<duration> happy_eyeballs_delay{};
  /// Reorders the addresses so that the families take turns, the first family's first `interleave`
  /// addresses first (asyncio's interleave). Unset: 1 with happy_eyeballs_delay, else no reordering;
  /// 0: no reordering.
  std::optional<std::size_t> interleave{};
  /// open_connection: bind the connecting socket to this address before connecting (asyncio's
  /// local_addr); port 0 lets the kernel pick the port. Only the candidate addresses of its family are
  /// tried; none of them: std::system_error (EAFNOSUPPORT) naming both. A failed bind (EADDRINUSE,
  /// EADDRNOTAVAIL) is that candidate's error, naming the local address. With a fixed port, Happy
  /// Eyeballs attempts that overlap cannot all bind it (the later ones fail with EADDRINUSE).
  std::optional<address> local_address{};
};

} // namespace corio
