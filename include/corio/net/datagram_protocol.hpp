// corio::datagram_protocol and corio::datagram_transport: asyncio's DatagramProtocol and
// DatagramTransport (loop.create_datagram_endpoint) over UDP and Unix datagram sockets.
#pragma once

#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "corio/net/address.hpp"
#include "corio/net/datagram.hpp"
#include "corio/net/protocol.hpp"
#include "corio/net/socket.hpp"
#include "corio/sync/event.hpp"
#include "corio/task.hpp"

namespace corio {

class datagram_transport;

/// asyncio.DatagramProtocol: callbacks an endpoint calls on the loop's thread. The defaults do nothing.
/// Order: connection_made, then datagram_received* and error_received* (interleaved), then
/// connection_lost exactly once (also when connection_made raised). resume_writing comes only after a
/// pause_writing (an endpoint that ends while paused gets none); both come before connection_lost.
///
/// An exception escaping connection_made or datagram_received is a fatal error of the endpoint (the
/// rule of stream protocols): it goes to the loop's exception handler, the endpoint is aborted and
/// connection_lost receives it. One escaping error_received, pause_writing, resume_writing or
/// connection_lost is only reported. Callbacks may call any transport method (sendto, close, abort...).
class datagram_protocol {
public:
  virtual ~datagram_protocol() = default;
  /// The endpoint is up; `t` stays valid until connection_lost returns (keep t.shared_from_this() to use
  /// it longer, e.g. from another task).
  virtual void connection_made(datagram_transport& t) { (void)t; }
  /// One whole datagram and its sender. The view is valid during the call only. Never a truncated one: a
  /// datagram longer than the endpoint's receive buffer (64 KiB on UDP, which holds any UDP datagram;
  /// 256 KiB at first on a Unix datagram socket, whose datagrams can be as long as the sender's SO_SNDBUF)
  /// is dropped and reported to error_received instead (see there).
  virtual void datagram_received(std::string_view data, const address& from) {
    (void)data;
    (void)from;
  }
  /// A send or receive failed (std::system_error): e.g. ECONNREFUSED on a connected endpoint whose peer
  /// has no socket on its port (the kernel learns it from an ICMP message, and reports it on a later
  /// call), EMSGSIZE for a datagram too long to send. The endpoint stays open, as in asyncio.
  ///
  /// EMSGSIZE also comes for a received datagram longer than the receive buffer: the kernel keeps only
  /// the buffer's worth of it, so it is dropped (datagram_received does not get the part), with a message
  /// naming its real size, the buffer's and the sender, e.g. "corio: datagram of 300000 bytes from
  /// /tmp/a.sock truncated to 262144: dropped (...)". The buffer then grows to the next power of two
  /// that holds that size (up to 16 MiB), so the next datagrams of that size come whole.
  virtual void error_received(std::exception_ptr error) { (void)error; }
  /// The endpoint is closed: null when closed normally (close(), abort(), cancellation, the loop
  /// shutting down); else the exception a callback raised.
  virtual void connection_lost(std::exception_ptr error) { (void)error; }
  /// More than the high-water mark of datagrams is queued (the kernel's send buffer was full): stop
  /// sending until resume_writing(). Rare on UDP (a full buffer drains at the interface's speed); common
  /// on Unix datagram sockets, whose sends wait for the receiver's queue.
  virtual void pause_writing() {}
  /// The queue drained to the low-water mark.
  virtual void resume_writing() {}
};

namespace detail {
struct datagram_transport_access;
}

/// asyncio's datagram transport: one per endpoint, made by create_datagram_endpoint() and owned by
/// corio; the protocol gets a reference, create_datagram_endpoint() a shared_ptr (a handle: using it
/// after the endpoint ended is safe, see below). Use it on the loop's thread only.
///
/// Receiving: a task per endpoint receives one datagram at a time and calls datagram_received; receive
/// errors go to error_received. Its buffer, allocated once per endpoint, is 64 KiB on UDP (the longest
/// UDP datagram) and 256 KiB on a Unix datagram socket (asyncio's max_size), grown to the next power of
/// two (up to 16 MiB) after a longer datagram came; that one is dropped and reported to error_received
/// as EMSGSIZE, never delivered truncated. It lets other tasks run after 16 datagrams in a row, so a
/// flood does not hold the loop.
///
/// Sending: sendto() never waits. It sends now; when the kernel's buffer is full (EAGAIN) the datagram
/// is queued (copied), and so is every later one until the queue is empty again, which the loop flushes
/// in order. Once more than the high-water mark (64 KiB by default) is queued the protocol gets
/// pause_writing(), and resume_writing() once the queue is down to the low-water mark (16 KiB). A send
/// that fails (ECONNREFUSED, EMSGSIZE, ENETUNREACH...) drops that datagram and calls error_received.
///
/// Ending: close() stops receiving, flushes the queue and then closes; abort() closes now, dropping the
/// queue. connection_lost follows once, from the endpoint's task (never inside close() or abort()).
/// sendto() after close() or abort() raises invalid_state_error; once the endpoint has failed (a
/// callback that raised) sends are dropped silently, as with stream transports: connection_lost(error)
/// tells the protocol. close()/abort() after the end do nothing. Cancellation of the endpoint's task
/// (loop shutdown) aborts it and calls connection_lost(nullptr).
class datagram_transport : public std::enable_shared_from_this<datagram_transport> {
  struct key {
    explicit key() = default;
  };

public:
  datagram_transport(key, socket s, std::shared_ptr<datagram_protocol> p);
  datagram_transport(const datagram_transport&) = delete;
  datagram_transport& operator=(const datagram_transport&) = delete;
  ~datagram_transport();

  /// Sends `data` as one datagram (an empty one too) to `to`, or to the remote of a connected endpoint.
  /// On a connected endpoint `to` must be absent or equal to peername(), else std::invalid_argument (as
  /// asyncio's ValueError); an unconnected one needs `to` (std::invalid_argument). See the class comment
  /// for what happens when it cannot go now, and for errors.
  void sendto(std::string_view data, std::optional<address> to = std::nullopt);
  void sendto(const char* data, std::optional<address> to = std::nullopt) {
    sendto(std::string_view(data), std::move(to));
  }
  /// Stops receiving, flushes the queue, then closes; connection_lost(nullptr) follows. Idempotent.
  void close();
  /// Closes now, dropping the queue; connection_lost(nullptr) follows. Idempotent.
  void abort() noexcept;
  /// True from close(), abort() or a failure on.
  [[nodiscard]] bool is_closing() const noexcept { return state_ != state::open; }

  /// As corio::transport's: no high: 4 * low, or 64 KiB without low either; no low: high / 4. low > high
  /// raises std::invalid_argument.
  void set_write_buffer_limits(std::optional<std::size_t> high = std::nullopt,
                               std::optional<std::size_t> low = std::nullopt);
  [[nodiscard]] write_buffer_limits get_write_buffer_limits() const noexcept { return {low_, high_}; }
  /// Bytes of the datagrams queued and not yet sent (0 once closed).
  [[nodiscard]] std::size_t get_write_buffer_size() const noexcept { return queued_bytes_; }

  /// get_extra_info('sockname'); kept after the endpoint ends.
  [[nodiscard]] const address& sockname() const noexcept { return local_; }
  /// get_extra_info('peername'): the remote of a connected endpoint, else an unspecified address.
  [[nodiscard]] const address& peername() const noexcept { return peer_; }
  [[nodiscard]] bool is_connected() const noexcept { return peer_.family() != address_family::unspecified; }
  /// The socket's fd (-1 once closed), for socket options (get_extra_info('socket')); do not read or
  /// write it directly.
  [[nodiscard]] int fd() const noexcept { return sock_.fd(); }
  /// The protocol; null once connection_lost has returned (the transport lets go of it then).
  [[nodiscard]] std::shared_ptr<datagram_protocol> get_protocol() const noexcept { return protocol_; }
  /// True once connection_lost has been called (or is running).
  [[nodiscard]] bool is_closed() const noexcept { return state_ == state::lost; }

private:
  friend detail::datagram_transport_access;
  enum class state : unsigned char { open, closing, aborted, lost };
  struct queued {
    std::string data;
    address to;
  };

  socket sock_;
  std::shared_ptr<datagram_protocol> protocol_;
  address local_;
  address peer_;
  std::deque<queued> queue_;
  std::size_t queued_bytes_ = 0;
  std::size_t high_ = 64 * 1024;
  std::size_t low_ = 16 * 1024;
  std::exception_ptr error_; // what connection_lost will receive
  event ended_;              // set once the socket is closed (the flush of close() done, or abort)
  state state_ = state::open;
  bool flushing_ = false;       // a task flushes the queue
  bool writing_paused_ = false; // the protocol got pause_writing() and not yet resume_writing()
};

/// What create_datagram_endpoint() returns: `auto [t, p] = co_await corio::create_datagram_endpoint(...)`.
template <class P> struct datagram_endpoint_pair {
  std::shared_ptr<datagram_transport> transport;
  std::shared_ptr<P> protocol;
};

namespace detail {

using datagram_protocol_factory = std::function<std::shared_ptr<datagram_protocol>()>;

template <class F> datagram_protocol_factory erase_datagram_factory(F f) {
  static_assert(std::is_base_of_v<datagram_protocol, protocol_of<F>>,
                "corio: a datagram protocol factory must make a corio::datagram_protocol");
  return erase_factory_as<datagram_protocol>(std::move(f));
}

/// datagram_endpoint::open(options), at the co_await (its errors raised there).
task<datagram_endpoint> open_endpoint(datagram_options options);

task<std::pair<std::shared_ptr<datagram_transport>, std::shared_ptr<datagram_protocol>>>
open_datagram_protocol(datagram_protocol_factory make, task<datagram_endpoint> opening);

template <class P>
task<datagram_endpoint_pair<P>> open_datagram_as(datagram_protocol_factory make, task<datagram_endpoint> opening) {
  auto made = co_await open_datagram_protocol(std::move(make), std::move(opening));
  datagram_endpoint_pair<P> r{std::move(made.first), std::static_pointer_cast<P>(std::move(made.second))};
  co_return r;
}

} // namespace detail

/// asyncio's loop.create_datagram_endpoint(protocol_factory, local_addr=, remote_addr=, reuse_port=,
/// allow_broadcast=): opens the socket as datagram_endpoint::open(options) does (same options and
/// errors: options.local, .remote, .reuse_address, .reuse_port, .broadcast), then calls `factory()` — a
/// callable returning std::shared_ptr<P> or std::unique_ptr<P>, P a corio::datagram_protocol — and
/// connection_made before it returns. A failed open calls nothing (no protocol is made). The endpoint
/// lives until it is closed, whether or not the returned pointers are kept.
template <class Factory> [[nodiscard]] task<datagram_endpoint_pair<detail::protocol_of<Factory>>>
create_datagram_endpoint(Factory factory, datagram_options options) {
  detail::datagram_protocol_factory make = detail::erase_datagram_factory(std::move(factory));
  return detail::open_datagram_as<detail::protocol_of<Factory>>(std::move(make),
                                                                detail::open_endpoint(std::move(options)));
}

/// asyncio's create_datagram_endpoint(factory, remote_addr=(host, port)) with a host name: the endpoint
/// is opened as datagram_endpoint::connect(host, port, options) does (resolved, the first address that
/// opens, of options.local's family if set), then as above.
template <class Factory> [[nodiscard]] task<datagram_endpoint_pair<detail::protocol_of<Factory>>>
create_datagram_endpoint(Factory factory, std::string remote_host, std::uint16_t remote_port,
                         datagram_options options = datagram_options()) {
  detail::datagram_protocol_factory make = detail::erase_datagram_factory(std::move(factory));
  return detail::open_datagram_as<detail::protocol_of<Factory>>(
      std::move(make), datagram_endpoint::connect(std::move(remote_host), remote_port, std::move(options)));
}

} // namespace corio
