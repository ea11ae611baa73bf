// corio::protocol and corio::transport: asyncio's protocols and transports (loop.create_connection,
// loop.create_server, connect_accepted_socket, connect_read_pipe, connect_write_pipe) over TCP and Unix
// stream sockets and pipes, built on the streams.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "corio/net/address.hpp"
#include "corio/net/connection.hpp"
#include "corio/net/server.hpp"
#include "corio/net/socket.hpp"
#include "corio/net/stream_options.hpp"
#include "corio/net/stream_reader.hpp"
#include "corio/net/stream_writer.hpp"
#include "corio/sync/event.hpp"
#include "corio/task.hpp"

namespace corio {

class transport;

/// asyncio.Protocol: callbacks a connection calls on the loop's thread. The defaults do nothing.
/// Order: connection_made, then data_received* (eof_received at most once), then connection_lost exactly
/// once (also when connection_made raised). resume_writing comes only after a pause_writing (a connection
/// that ends while paused gets none); both come before connection_lost.
///
/// An exception escaping connection_made, data_received or eof_received is a fatal error of the
/// connection (asyncio's rule): it goes to the loop's exception handler, the connection is aborted and
/// connection_lost receives it. One escaping pause_writing, resume_writing or connection_lost is only
/// reported. Callbacks may call any transport method (write, close, abort, pause_reading...).
class protocol {
public:
  virtual ~protocol() = default;
  /// The connection is up; `t` stays valid until connection_lost returns (keep t.shared_from_this() to
  /// use it longer, e.g. from another task).
  virtual void connection_made(transport& t) { (void)t; }
  /// Bytes received, in order; at most 64 KiB per call. The view is valid during the call only.
  virtual void data_received(std::string_view data) { (void)data; }
  /// The peer sent end of file (shut down its sending side). False (the default): the transport closes
  /// itself (flushing what is queued). True: it stays open for writing, until close() or abort().
  virtual bool eof_received() { return false; }
  /// The connection is closed: null when closed normally (close(), abort(), eof_received() returning
  /// false, the server's close_clients() or abort_clients(), the loop shutting down); else the error (std::system_error
  /// naming ECONNRESET, EPIPE... and the peer, or the exception a callback raised).
  virtual void connection_lost(std::exception_ptr error) { (void)error; }
  /// More than the high-water mark is queued: stop writing until resume_writing().
  virtual void pause_writing() {}
  /// The queue drained to the low-water mark.
  virtual void resume_writing() {}
};

/// asyncio.BufferedProtocol: the transport reads straight into a buffer the protocol owns, so received
/// bytes are copied once (from the socket's stream into that buffer) and nothing is allocated per read.
/// Before each read the transport calls get_buffer(sizehint) (sizehint: 64 KiB, a preference only) and
/// reads into the span it returns, which must stay valid until buffer_updated(n) says that n bytes
/// (n > 0) landed at its start. data_received is never called; eof_received, connection_lost and the
/// rest are protocol's. An empty span, or an exception from either callback, is a fatal error of the
/// connection, as for data_received. A read in progress when pause_reading() is called from another
/// task is reported by buffer_updated after resume_reading(); closing meanwhile drops it.
class buffered_protocol : public protocol {
public:
  virtual std::span<char> get_buffer(std::size_t sizehint) = 0;
  virtual void buffer_updated(std::size_t nbytes) = 0;
};

/// transport::get_write_buffer_limits(): asyncio returns (low, high).
struct write_buffer_limits {
  std::size_t low = 0;
  std::size_t high = 0;
};

namespace detail {
struct task_state;
struct transport_access;
/// What a transport runs over: a connected socket, or one end of a pipe.
enum class transport_over : unsigned char { socket, read_pipe, write_pipe };
} // namespace detail

/// asyncio's socket transport: one per connection, made by create_connection() or create_server() and
/// owned by corio; the protocol gets a reference, create_connection() a shared_ptr (a handle: using it
/// after the connection ended is safe, see below). Use it on the loop's thread only.
///
/// Reading: a task per connection reads up to 64 KiB at a time and calls data_received. pause_reading()
/// stops the callbacks until resume_reading(): the task waits (no polling) and reads nothing more; a read
/// already in progress when pause_reading() is called from another task is delivered after the resume.
///
/// Writing: write() never waits. It sends what the socket takes now and queues the rest, which the loop
/// flushes in order. Once more than the high-water mark (64 KiB by default) is queued the protocol gets
/// pause_writing(), and resume_writing() once the queue is down to the low-water mark (16 KiB).
///
/// Ending: close() stops reading, flushes the queue and then closes, dropping bytes received and not
/// read (as stream_writer::close() does: the peer gets every byte and a FIN, not a reset); abort()
/// closes now, dropping the queue. connection_lost follows once, from the connection's task (never
/// inside close() or abort()). write() after close(), abort() or write_eof() raises invalid_state_error;
/// once the connection has failed (a reset, a send error, a callback that raised) writes are dropped
/// silently, as in asyncio: connection_lost(error) tells the protocol. close()/abort()/pause_reading()...
/// after the end do nothing. Cancellation of the connection's task (the server's abort_clients(), loop
/// shutdown) aborts it and calls connection_lost(nullptr); the server's close_clients() calls close()
/// (asyncio's rule).
///
/// Over a pipe (connect_read_pipe, connect_write_pipe) a transport does one half of the job, as asyncio's
/// pipe transports do. A read pipe's transport reads and has close(), abort(), pause_reading() and
/// resume_reading(); write() raises invalid_state_error; at end of file eof_received() is called and
/// the transport closes whatever it returns. A write pipe's transport writes and has close(), abort(),
/// write_eof() (the same as close(): a pipe has no half-close) and the write buffer's limits; reading
/// calls do nothing. When the reading end goes away it ends: connection_lost(nullptr) when nothing was
/// queued, else connection_lost(std::system_error(EPIPE)); a socket used as a write pipe ends so when
/// its peer closes or sends anything (asyncio's rule). peername() and sockname() are empty for pipes.
class transport : public std::enable_shared_from_this<transport> {
  struct key {
    explicit key() = default;
  };

  using over = detail::transport_over;

public:
  transport(key, connection c, std::shared_ptr<corio::protocol> p, std::size_t high, std::size_t low,
            detail::transport_over kind = detail::transport_over::socket, std::string name = std::string());
  transport(const transport&) = delete;
  transport& operator=(const transport&) = delete;
  ~transport();

  /// Sends `data` (or queues what the socket does not take now). See the class comment for errors.
  void write(std::string_view data);
  void write(const char* data) { write(std::string_view(data)); }
  /// A moved-in string is queued as it is (no copy) when it must wait.
  void write(std::string&& data);
  /// Every part in order, in one system call when nothing is queued.
  void writelines(std::span<const std::string_view> parts);
  void writelines(std::initializer_list<std::string_view> parts) {
    writelines(std::span<const std::string_view>(parts.begin(), parts.size()));
  }
  void writelines(const std::vector<std::string>& parts);
  /// Half-close once the queue is flushed: the peer reads end of file; reading goes on. Writing after it
  /// raises invalid_state_error. Does nothing when closing or already called.
  void write_eof();
  [[nodiscard]] bool can_write_eof() const noexcept { return kind_ != over::read_pipe; }
  /// Stops reading, flushes the queue, then closes; connection_lost(nullptr) follows (or the error, if the
  /// flush fails). Idempotent.
  void close();
  /// Closes now, dropping the queue; connection_lost(nullptr) follows. Idempotent.
  void abort() noexcept;
  /// True from close(), abort() or a failure on.
  [[nodiscard]] bool is_closing() const noexcept { return state_ != state::open; }

  /// Stops data_received (and eof_received) until resume_reading(). No-op when paused or closing.
  void pause_reading();
  void resume_reading();
  [[nodiscard]] bool is_reading() const noexcept {
    return state_ == state::open && !reading_paused_ && kind_ != over::write_pipe;
  }

  /// asyncio's set_write_buffer_limits: no high: 4 * low, or 64 KiB without low either; no low: high / 4.
  /// low > high raises std::invalid_argument.
  void set_write_buffer_limits(std::optional<std::size_t> high = std::nullopt,
                               std::optional<std::size_t> low = std::nullopt);
  [[nodiscard]] write_buffer_limits get_write_buffer_limits() const noexcept { return {low_, high_}; }
  /// Bytes queued and not yet sent (0 once closed).
  [[nodiscard]] std::size_t get_write_buffer_size() const noexcept;

  /// get_extra_info('peername') and ('sockname'); kept after the connection ends.
  [[nodiscard]] const address& peername() const noexcept { return peer_; }
  [[nodiscard]] const address& sockname() const noexcept { return local_; }
  /// The socket's fd (-1 once closed), for socket options (get_extra_info('socket')); do not read or
  /// write it directly.
  [[nodiscard]] int fd() const;
  /// The protocol; null once connection_lost has returned (the transport lets go of it then).
  [[nodiscard]] std::shared_ptr<corio::protocol> get_protocol() const noexcept { return protocol_; }
  /// asyncio's set_protocol: from the next callback on, `p` gets them (data_received, eof_received,
  /// pause/resume_writing, connection_lost); its connection_made is not called. A callback running now
  /// finishes on the protocol it started on (kept alive until it returns); bytes that arrive later go to
  /// the protocol current then (copied into its buffers if it is a buffered_protocol), except a read
  /// already waiting in a buffered_protocol's buffer, which is reported to the protocol that gave it.
  /// Null raises std::invalid_argument; after connection_lost, invalid_state_error.
  void set_protocol(std::shared_ptr<corio::protocol> p);
  /// True once connection_lost has been called (or is running).
  [[nodiscard]] bool is_closed() const noexcept { return state_ == state::lost; }

  /// asyncio's loop.start_tls(transport, protocol, ctx): upgrades this connection to TLS in place, for
  /// STARTTLS-style protocols (SMTP, IMAP, PostgreSQL...). A handshake as client or server, as `ctx` was
  /// made; a client checks the certificate against `server_hostname` (empty: the peer's IP address).
  /// What was written before is sent first, in plaintext; bytes received and not yet delivered are taken
  /// as the start of the handshake, and every data_received after it is decrypted; the protocol stays the
  /// same (asyncio gives a new transport; here the same one goes on, speaking TLS). Reading pauses during
  /// the handshake and write() raises invalid_state_error. Call it from a task (not inside a callback that
  /// must return first), typically once the peer has agreed to upgrade.
  /// Errors: invalid_state_error on a pipe, a closing or closed transport, one that speaks TLS already or
  /// is upgrading; std::invalid_argument for an empty context, a negative `handshake_timeout` (zero: no
  /// limit; without it, 60 s) or a `server_hostname` with a NUL byte (these leave the connection as it
  /// was); tls_error when the handshake fails (also tls_errc::handshake_timeout), which ends the
  /// connection: connection_lost receives the error.
  /// Cancelling the awaiting task during the handshake aborts the connection.
  [[nodiscard]] task<> start_tls(tls_context ctx, std::string server_hostname, duration handshake_timeout);
  [[nodiscard]] task<> start_tls(tls_context ctx, std::string server_hostname);
  [[nodiscard]] task<> start_tls(tls_context ctx);
  /// What TLS negotiated (stream_writer::tls_info); empty before start_tls() or on a plaintext connection.
  [[nodiscard]] std::optional<corio::tls_info> tls_info() const;

private:
  friend detail::transport_access;
  enum class state : unsigned char { open, closing, aborted, lost };

  stream_reader reader_;
  stream_writer writer_;
  std::shared_ptr<corio::protocol> protocol_;
  std::string name_; // a pipe's label ("read pipe (fd 5)"); empty for a socket
  address peer_;
  address local_;
  std::size_t high_;
  std::size_t low_;
  std::exception_ptr error_; // what connection_lost will receive
  event resume_;             // set unless reading is paused: wakes the reading task (also on close/abort)
  state state_ = state::open;
  detail::transport_over kind_ = detail::transport_over::socket;
  bool reading_paused_ = false;
  bool writing_paused_ = false; // the protocol got pause_writing() and not yet resume_writing()
  bool eof_written_ = false;
  bool peer_eof_ = false;
  // start_tls(): the pump's task (while the pump runs), whether it waits in a read now, and the handshake.
  detail::task_state* pump_task_ = nullptr;
  bool in_read_ = false;
  bool upgrading_ = false;
  bool pump_cancelled_ = false; // start_tls() cancelled the pump's read: the pump takes it back
  event pump_parked_;           // set by the pump once it stopped reading for the upgrade
  event upgraded_;              // set when the upgrade ended (well or not): the pump reads again
};

/// What create_connection() returns: `auto [t, p] = co_await corio::create_connection(...)`.
template <class P> struct protocol_connection {
  std::shared_ptr<corio::transport> transport;
  std::shared_ptr<P> protocol;
};

namespace detail {

using protocol_factory = std::function<std::shared_ptr<protocol>()>;

/// The protocol type a factory makes: it returns std::shared_ptr<P> or std::unique_ptr<P>.
template <class F> using protocol_of = typename std::remove_cvref_t<std::invoke_result_t<F&>>::element_type;

/// A factory of P (std::shared_ptr<P> or std::unique_ptr<P>) as one of `Base`: protocols, datagram and
/// subprocess protocols. The callers check that P derives from Base, each with its own message.
template <class Base, class F> std::function<std::shared_ptr<Base>()> erase_factory_as(F f) {
  using P = protocol_of<F>;
  auto shared = std::make_shared<F>(std::move(f)); // a move-only factory too
  return [shared]() -> std::shared_ptr<Base> { return std::shared_ptr<P>((*shared)()); };
}

template <class F> protocol_factory erase_factory(F f) {
  static_assert(std::is_base_of_v<protocol, protocol_of<F>>, "corio: a protocol factory must make a corio::protocol");
  return erase_factory_as<protocol>(std::move(f));
}

task<std::pair<std::shared_ptr<transport>, std::shared_ptr<protocol>>>
connect_protocol(task<connection> connecting, protocol_factory make, std::size_t high, std::size_t low,
                 transport_over over);

template <class P> task<protocol_connection<P>> connect_as(task<connection> connecting, protocol_factory make,
                                                           std::size_t high, std::size_t low,
                                                           transport_over over = transport_over::socket) {
  auto made = co_await connect_protocol(std::move(connecting), std::move(make), high, low, over);
  protocol_connection<P> r{std::move(made.first), std::static_pointer_cast<P>(std::move(made.second))};
  co_return r;
}

/// The streams of connect_accepted_socket (a TLS handshake as options.tls says) and of the pipes.
task<connection> accepted_streams(socket s, stream_options options);
task<connection> pipe_streams_of(int fd, transport_over over, stream_options options);

/// A server's handler that runs a protocol on each connection.
connection_handler protocol_handler(protocol_factory make, std::size_t high, std::size_t low);

} // namespace detail

/// asyncio's loop.create_connection(protocol_factory, host, port): connects as open_connection() does
/// (same options, errors and cancellation), then calls `factory()` — a callable returning
/// std::shared_ptr<P> or std::unique_ptr<P>, P a corio::protocol — and connection_made before it returns.
/// A failed connect calls nothing (no protocol is made). The connection lives until it closes, whether
/// or not the returned pointers are kept.
template <class Factory> [[nodiscard]] task<protocol_connection<detail::protocol_of<Factory>>>
create_connection(Factory factory, std::string host, std::uint16_t port, stream_options options = stream_options()) {
  const std::size_t high = options.high_water, low = options.low_water;
  detail::protocol_factory make = detail::erase_factory(std::move(factory));
  return detail::connect_as<detail::protocol_of<Factory>>(open_connection(std::move(host), port, std::move(options)),
                                                          std::move(make), high, low);
}
/// To an address (IP or Unix).
template <class Factory> [[nodiscard]] task<protocol_connection<detail::protocol_of<Factory>>>
create_connection(Factory factory, address remote, stream_options options = stream_options()) {
  const std::size_t high = options.high_water, low = options.low_water;
  detail::protocol_factory make = detail::erase_factory(std::move(factory));
  return detail::connect_as<detail::protocol_of<Factory>>(open_connection(std::move(remote), std::move(options)),
                                                          std::move(make), high, low);
}
/// To the Unix-domain socket at `path` (loop.create_unix_connection).
template <class Factory> [[nodiscard]] task<protocol_connection<detail::protocol_of<Factory>>>
create_unix_connection(Factory factory, std::string path, stream_options options = stream_options()) {
  const std::size_t high = options.high_water, low = options.low_water;
  detail::protocol_factory make = detail::erase_factory(std::move(factory));
  return detail::connect_as<detail::protocol_of<Factory>>(open_unix_connection(std::move(path), std::move(options)),
                                                          std::move(make), high, low);
}

/// asyncio's loop.connect_accepted_socket(protocol_factory, sock): a transport over a socket connected
/// by other means (accepted by your own accept loop, inherited, one end of a socketpair). Takes the
/// socket; `options.tls` makes a TLS handshake first, as server or client as the context was made (a
/// client checks options.server_hostname). An empty socket raises std::invalid_argument.
template <class Factory> [[nodiscard]] task<protocol_connection<detail::protocol_of<Factory>>>
connect_accepted_socket(Factory factory, socket sock, stream_options options = stream_options()) {
  const std::size_t high = options.high_water, low = options.low_water;
  detail::protocol_factory make = detail::erase_factory(std::move(factory));
  return detail::connect_as<detail::protocol_of<Factory>>(detail::accepted_streams(std::move(sock), std::move(options)),
                                                          std::move(make), high, low);
}

namespace detail {
template <class Factory> task<protocol_connection<protocol_of<Factory>>>
connect_pipe(Factory factory, int fd, stream_options options, transport_over over) {
  const std::size_t high = options.high_water, low = options.low_water;
  protocol_factory make = erase_factory(std::move(factory));
  return connect_as<protocol_of<Factory>>(pipe_streams_of(fd, over, std::move(options)), std::move(make), high, low,
                                          over);
}
} // namespace detail

/// asyncio's loop.connect_read_pipe(protocol_factory, pipe): a read-only transport (see transport) over
/// `fd`, the read end of a pipe or FIFO, a socket or a character device. Takes ownership of `fd` (closed
/// with the transport) and checks it as open_pipe_reader() does (corio/net/pipe.hpp: EBADF,
/// std::invalid_argument for a regular file or an fd not open for reading, raised at the co_await, the
/// fd then not taken). `options.limit` is not used; watermarks are not either.
template <class Factory> [[nodiscard]] task<protocol_connection<detail::protocol_of<Factory>>>
connect_read_pipe(Factory factory, int fd, stream_options options = stream_options()) {
  return detail::connect_pipe(std::move(factory), fd, std::move(options), detail::transport_over::read_pipe);
}

/// asyncio's loop.connect_write_pipe(protocol_factory, pipe): a write-only transport over `fd`, the write
/// end of a pipe or FIFO, a socket or a character device (see transport for how it ends). Takes `fd` as
/// connect_read_pipe() does; options.high_water / low_water are its write buffer limits.
template <class Factory> [[nodiscard]] task<protocol_connection<detail::protocol_of<Factory>>>
connect_write_pipe(Factory factory, int fd, stream_options options = stream_options()) {
  return detail::connect_pipe(std::move(factory), fd, std::move(options), detail::transport_over::write_pipe);
}

/// asyncio's loop.create_server(protocol_factory, host, port): start_server() whose handler makes a
/// protocol per connection (`factory()`, see create_connection) and runs its transport. Everything of
/// corio::server works as with streams: close(), close_clients() (each transport closed: what is
/// queued goes out, then connection_lost(nullptr), as asyncio's Server.close_clients), abort_clients()
/// (each connection reset, the queue dropped), wait_closed(), active_connections(); options.streams'
/// watermarks are the transports' write buffer limits. A factory that raises is reported to the loop's
/// exception handler and that connection is closed.
template <class Factory> [[nodiscard]] task<server> create_server(Factory factory, std::string host, std::uint16_t port,
                                                                  server_options options = server_options()) {
  connection_handler h = detail::protocol_handler(detail::erase_factory(std::move(factory)), options.streams.high_water,
                                                  options.streams.low_water);
  return start_server(std::move(h), std::move(host), port, std::move(options));
}
/// On the given addresses (IP or Unix).
template <class Factory> [[nodiscard]] server create_server(Factory factory, std::vector<address> addresses,
                                                            server_options options = server_options()) {
  connection_handler h = detail::protocol_handler(detail::erase_factory(std::move(factory)), options.streams.high_water,
                                                  options.streams.low_water);
  return start_server(std::move(h), std::move(addresses), std::move(options));
}
/// On a listening (or bound) stream socket made elsewhere (loop.create_server(factory, sock=...)); see
/// start_server(handler, socket, options).
template <class Factory>
[[nodiscard]] server create_server(Factory factory, socket listener, server_options options = server_options()) {
  connection_handler h = detail::protocol_handler(detail::erase_factory(std::move(factory)), options.streams.high_water,
                                                  options.streams.low_water);
  return start_server(std::move(h), std::move(listener), std::move(options));
}
/// On a Unix-domain socket at `path` (loop.create_unix_server).
template <class Factory> [[nodiscard]] task<server> create_unix_server(Factory factory, std::string path,
                                                                       server_options options = server_options()) {
  connection_handler h = detail::protocol_handler(detail::erase_factory(std::move(factory)), options.streams.high_water,
                                                  options.streams.low_water);
  return start_unix_server(std::move(h), std::move(path), std::move(options));
}

} // namespace corio
