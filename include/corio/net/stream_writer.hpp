// corio::stream_writer: buffered writes with backpressure (asyncio.StreamWriter).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "corio/clock.hpp"
#include "corio/net/address.hpp"
#include "corio/net/tls.hpp"
#include "corio/task.hpp"

namespace corio {

namespace detail {
class stream_transport;
}

/// The writing half of a stream connection. A cheap, copyable handle (copies share the connection).
///
/// write() never waits: it sends at once when nothing is queued, and queues the rest in order (a moved-in
/// std::string is queued without a copy); the loop flushes the queue as the socket drains. Call
/// `co_await drain()` after writing to wait while more than the high watermark is queued (backpressure,
/// 64 KiB / 16 KiB by default). A peer that resets the connection makes write()/drain() raise
/// std::system_error (EPIPE / ECONNRESET) naming it — never SIGPIPE.
///
/// Closing: close() stops accepting writes, flushes what is queued in the background and then closes
/// the socket; `co_await wait_closed()` waits for that. Bytes received and not read by then are dropped
/// just before the socket closes (up to 4 MiB), so the peer gets an orderly end of stream (FIN) after
/// every byte: Linux resets a connection closed with unread bytes, and a reset loses what the peer had
/// not read yet (asyncio's transports, which read all the time, close with a FIN too). abort() does
/// not drop them. Keep the writer (or a copy, or the reader) until
/// wait_closed() returns: when the last handle goes, the socket is closed at once and unsent data is
/// dropped (that is abort()).
class stream_writer {
public:
  stream_writer() noexcept = default;
  explicit stream_writer(std::shared_ptr<detail::stream_transport> t) noexcept : t_(std::move(t)) {}

  void write(std::string_view data);
  void write(std::string&& data);
  void write(const char* data) { write(std::string_view(data)); }
  /// Writes every part, in order, in one system call when nothing is queued.
  void writelines(std::span<const std::string_view> parts);
  void writelines(std::initializer_list<std::string_view> parts) {
    writelines(std::span<const std::string_view>(parts.begin(), parts.size()));
  }
  void writelines(const std::vector<std::string>& parts);
  /// Waits while the queue is above the high watermark (until at most the low one is left). Raises the
  /// connection's error if sending failed. Cancellable: the queued data is still sent.
  task<> drain();

  /// Sends `count` bytes of the file open as `file_fd` (to its end when nullopt) from `offset` (the file's
  /// position is neither used nor moved); returns the bytes sent, fewer than `count` if the file ends
  /// first. Zero-copy with sendfile(2) on a plaintext socket; over TLS, on a pipe stream, or when the fd
  /// is not something sendfile(2) reads (a pipe...), the file is read in 64 KiB chunks and written as by
  /// write(), waiting as drain() does. The file fd is borrowed until it returns.
  ///
  /// Order: the sendfile takes its place in the stream when it starts running (at `co_await`): what was
  /// written before goes out first (it waits for that much of the queue to be sent), and what is written
  /// while it runs — by other tasks — is queued behind it (counted in buffer_size(), so drain() waits) and
  /// sent after it; close() and write_eof() while it runs take effect after it. One sendfile per stream at
  /// a time (another raises invalid_state_error). A send error (EPIPE, ECONNRESET) fails the stream as a
  /// write's would; a file error (a closed fd: EBADF) raises from this call only. Cancellable; a cancelled
  /// or failed sendfile may have sent part of the range (as asyncio's), and later writes then follow that
  /// part.
  task<std::uint64_t> sendfile(int file_fd, std::uint64_t offset = 0,
                               std::optional<std::uint64_t> count = std::nullopt);

  /// Half-close: the peer reads end of stream once the queued data is sent; reading goes on. Over TLS
  /// this sends close_notify (TLS's own end of stream) before the TCP half-close; a TLS 1.3 peer can
  /// still answer (a TLS 1.2 peer usually closes its side too).
  void write_eof();
  [[nodiscard]] bool can_write_eof() const noexcept { return true; }
  /// Flushes, then closes (see the class comment); over TLS, close_notify goes out first. Idempotent.
  void close();
  /// Closes now, dropping what is queued.
  void abort() noexcept;
  [[nodiscard]] bool is_closing() const;
  /// Waits until the socket is closed (after close() flushed it, or abort()). Cancellable.
  task<> wait_closed();

  /// Upgrades the connection to TLS in place (asyncio's start_tls, for STARTTLS-style protocols): a
  /// handshake as client or server, as `ctx` was made. Both the reader and the writer speak TLS after
  /// it. Data written before is sent first, in plaintext; bytes received but not read yet are taken as
  /// the start of the handshake. Do not read or write while it runs. A client checks the certificate
  /// against `server_hostname` (empty: the peer's IP address). `handshake_timeout`: zero means no limit.
  /// Raises tls_error; on failure, cancellation or timeout the connection is aborted (a write then raises
  /// as on any closed stream: std::system_error(EPIPE); a read returns end of stream). A negative
  /// timeout or a `server_hostname` with a NUL byte raises std::invalid_argument before anything is done
  /// (the stream goes on in plaintext).
  task<> start_tls(tls_context ctx, std::string server_hostname = std::string(),
                   duration handshake_timeout = std::chrono::seconds(60));
  /// What TLS negotiated; empty on a plaintext connection (or before the handshake finished).
  [[nodiscard]] std::optional<corio::tls_info> tls_info() const;

  /// Bytes queued and not yet sent.
  [[nodiscard]] std::size_t buffer_size() const;
  /// asyncio's transport.set_write_buffer_limits(high, low); low > high raises std::invalid_argument.
  void set_write_buffer_limits(std::size_t high, std::size_t low);
  [[nodiscard]] address peer_address() const;
  [[nodiscard]] address local_address() const;
  /// The socket's fd (-1 once closed), for options; do not read or write it directly.
  [[nodiscard]] int fd() const;
  [[nodiscard]] bool valid() const noexcept { return t_ != nullptr; }

private:
  std::shared_ptr<detail::stream_transport> t_;
};

} // namespace corio
