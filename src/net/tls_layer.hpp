// tls_layer: TLS inside a stream_transport, through memory BIOs (internal; no OpenSSL types here).
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "corio/clock.hpp"
#include "corio/net/tls.hpp"
#include "corio/task.hpp"

namespace corio::detail {

class stream_transport;

/// OpenSSL never touches the socket: it reads ciphertext from an input memory BIO the transport fills
/// with recv(), and writes records to an output memory BIO the transport empties into its write queue.
/// So reads stay pull-based (a reader's try_fill() decrypts), writes stay push-based and ordered behind
/// any plaintext queued before start_tls, and drain()'s backpressure counts the encrypted bytes.
///
/// States: handshaking (only the handshake task drives OpenSSL; reads and writes raise) -> open ->
/// close_notify sent (write_eof() or close(); reading goes on until the peer's close_notify or EOF).
/// A protocol error while reading is kept and raised again by every later read, like a socket error.
class tls_layer {
public:
  tls_layer(const tls_context& ctx, bool server, const std::string& server_hostname);
  tls_layer(const tls_layer&) = delete;
  tls_layer& operator=(const tls_layer&) = delete;
  ~tls_layer();

  /// try_fill() over TLS: decrypts into t.rbuf. >0 bytes added, 0 at end of stream, -1 if the socket has
  /// nothing yet.
  long fill(stream_transport& t, std::size_t hint);
  /// Encrypts `parts` and hands the records to the transport's queue.
  void write(stream_transport& t, const std::string_view* parts, std::size_t count);
  /// Queues close_notify (once; not after a send error).
  void send_close_notify(stream_transport& t) noexcept;
  /// Ciphertext that arrived before TLS started (read ahead by the plaintext reader).
  void feed(std::string_view ciphertext);
  [[nodiscard]] bool handshaking() const noexcept { return handshaking_; }
  [[nodiscard]] tls_info info() const;

  /// Runs the handshake on `t` (whose tls is this layer). Raises tls_error.
  task<> handshake(std::shared_ptr<stream_transport> t, duration timeout);

private:
  struct ossl;
  /// recv() into the input BIO: >0 bytes, 0 at end of file, -1 if it would block; raises socket errors.
  long pull(stream_transport& t);
  /// Moves what OpenSSL wrote to the transport's queue. `quiet`: a send error is only stored (reads).
  void push(stream_transport& t, bool quiet);
  [[noreturn]] void fail_handshake(const stream_transport& t, int ssl_error);
  /// OpenSSL's error (take_openssl_error), after what caused it when we refused a renegotiation.
  std::string failure_reason(const char* fallback);
  /// Drives the handshake as far as the bytes at hand allow: true when it is done, false when the
  /// socket must become readable first. Raises tls_error.
  bool step(stream_transport& t);

  std::unique_ptr<ossl> o_;
  bool server_;
  bool handshaking_ = true;
  bool shutdown_sent_ = false;
  std::exception_ptr read_failure_;
};

/// Turns `t` into a TLS connection (a handshake as client or server, by the context): what
/// stream_writer::start_tls, open_connection and a TLS server run. On failure or cancellation the
/// connection is aborted.
task<> start_tls(std::shared_ptr<stream_transport> t, tls_context ctx, std::string server_hostname, duration timeout);

} // namespace corio::detail
