// corio::start_server / start_unix_server and corio::server (asyncio's streams API, server side).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "corio/clock.hpp"
#include "corio/net/address.hpp"
#include "corio/net/socket.hpp"
#include "corio/net/stream_options.hpp"
#include "corio/net/stream_reader.hpp"
#include "corio/net/stream_writer.hpp"
#include "corio/net/tls.hpp"
#include "corio/task.hpp"

namespace corio {

class event_loop;

/// A connection handler: a coroutine taking the connection's two halves (by value: they are handles).
using connection_handler = std::function<task<>(stream_reader, stream_writer)>;

struct server_options {
  int backlog = 1024;
  bool reuse_address = true; // SO_REUSEADDR (IP): restart on a port with connections in TIME_WAIT
  bool reuse_port = false;   // SO_REUSEPORT: several listeners (processes) share the port
  bool start_serving = true; // accept at once; else on start_serving() / serve_forever()
  stream_options streams{};  // for every accepted connection
  /// How long the accept loop sleeps after EMFILE/ENFILE/ENOBUFS/ENOMEM before trying again (it stops
  /// watching the listening socket meanwhile, so it cannot spin). asyncio waits 1 s as well.
  duration accept_retry_delay = std::chrono::seconds(1);
  /// Called (on the loop) with a handler's exception and its peer; null: printed to stderr.
  /// Cancellation (close_clients(), loop shutdown) is not reported.
  std::function<void(std::exception_ptr, const address& peer)> on_handler_error{};
  /// Speak TLS with this server context (tls_context::server) on every connection (asyncio's ssl=).
  /// The handshake runs in the connection's task before the handler is called; a connection whose
  /// handshake fails (or times out) is closed and counted (server::tls_handshake_errors()), the handler
  /// never sees it. (streams.tls is for clients and must stay empty here.)
  tls_context tls{};
  /// How long a connection's handshake may take; zero: no limit. Negative raises std::invalid_argument
  /// from start_server() (asyncio: ValueError).
  duration tls_handshake_timeout = std::chrono::seconds(60);
};

namespace detail {
struct server_state;
}

/// A listening server (asyncio.Server). Each accepted connection runs `handler(reader, writer)` as a
/// task of its own: an exception there is reported (server_options::on_handler_error) and ends only
/// that connection. When the handler returns, the connection is closed after its queued data is sent.
///
/// close() stops accepting and closes the listening sockets (connections go on); close_clients()
/// cancels the handlers (a protocol server's, create_server(factory...), closes each transport instead:
/// queued data goes out first, as asyncio's); abort_clients() cancels them and resets their connections
/// at once; wait_closed() waits
/// until the server is closed and every handler has finished.
/// Destroying the server does close() and close_clients(). Move-only.
class server {
public:
  server() noexcept = default;
  explicit server(std::shared_ptr<detail::server_state> s) noexcept : s_(std::move(s)) {}
  server(server&&) noexcept = default;
  server& operator=(server&& o) noexcept;
  server(const server&) = delete;
  server& operator=(const server&) = delete;
  ~server();

  /// Starts accepting if the options said not to yet (asyncio's start_serving).
  void start_serving();
  [[nodiscard]] bool is_serving() const;
  /// Starts serving and waits until close(); cancelling it closes the server (asyncio's rule). One at a
  /// time: called while another serve_forever() of this server runs, it raises invalid_state_error
  /// (asyncio's RuntimeError "already being awaited on serve_forever()") and the running one goes on.
  /// On a server already closed it raises invalid_state_error too ("... is closed"), as asyncio does.
  task<> serve_forever();
  /// Stops accepting: the listening sockets are closed now, running handlers go on. Idempotent.
  void close();
  /// Cancels every running handler (their connections close as they unwind).
  void close_clients();
  /// Closes every current connection at once and cancels its handler (asyncio 3.13's abort_clients):
  /// unsent data is dropped and the peer sees a reset (SO_LINGER {1, 0}: ECONNRESET on its next read).
  /// Covers connections still flushing after their handler returned and ones accepted but not started
  /// yet (their handler never runs); connections accepted afterwards are not affected, and a serving
  /// server goes on accepting.
  void abort_clients();
  /// Waits until close() was called and every handler has finished. Cancellable.
  task<> wait_closed();

  /// The bound addresses (the real ports when port 0 was asked for).
  [[nodiscard]] std::vector<address> addresses() const;
  /// The port of the first IP address (0 for a Unix server).
  [[nodiscard]] std::uint16_t port() const;
  /// Handlers running now.
  [[nodiscard]] std::size_t active_connections() const;
  /// Accept errors survived so far (EMFILE, ECONNABORTED...): for monitoring and tests.
  [[nodiscard]] std::size_t accept_errors() const;
  /// TLS handshakes that failed (bad client, plaintext peer, timeout): those connections were closed.
  [[nodiscard]] std::size_t tls_handshake_errors() const;
  /// asyncio's Server.get_loop(): the loop the server was made on (the one running when start_server()
  /// was called, else the one start_serving() ran on); null when made outside a loop and not started.
  [[nodiscard]] event_loop* get_loop() const;
  [[nodiscard]] bool valid() const noexcept { return s_ != nullptr; }

private:
  std::shared_ptr<detail::server_state> s_;
};

/// Listens on `host`:`port` and serves each connection with `handler`. host "" means every interface
/// (0.0.0.0 and ::), "localhost" both loopbacks; port 0 picks a free port (the same one for every
/// address). Raises std::system_error naming the address if it cannot listen; std::invalid_argument for a
/// host with a NUL byte (the lookup would use only what comes before it).
[[nodiscard]] task<server> start_server(connection_handler handler, std::string host, std::uint16_t port,
                                        server_options options = server_options());
/// Listens on the given addresses (IP or Unix); one listed twice is bound once (as asyncio's create_server).
[[nodiscard]] server start_server(connection_handler handler, std::vector<address> addresses,
                                  server_options options = server_options());
/// Serves connections accepted on `listener`, a stream socket made elsewhere (asyncio's
/// start_server(sock=...)): inherited (systemd socket activation), or with options set by hand. It is
/// put in listening state with options.backlog (as asyncio does; a listening socket keeps listening) and
/// closed with the server; a Unix socket's file is left alone. std::invalid_argument for an empty socket
/// or one that is not a stream socket; std::system_error (ENOTSOCK...) naming the fd otherwise.
[[nodiscard]] server start_server(connection_handler handler, socket listener,
                                  server_options options = server_options());
/// Listens on a Unix-domain socket at `path`. A socket file there (a stale one, or another server's) is
/// removed first; the file is removed again when the server closes, unless the path names another file
/// by then (a newer server's on the same path: its file stays, as asyncio 3.13 checks the inode).
[[nodiscard]] task<server> start_unix_server(connection_handler handler, std::string path,
                                             server_options options = server_options());

} // namespace corio
