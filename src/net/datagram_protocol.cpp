// corio::datagram_transport: a datagram protocol's endpoint, on a non-blocking datagram socket.
#include "corio/net/datagram_protocol.hpp"

#include <sys/socket.h>

#include <bit>
#include <cerrno>
#include <chrono>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/net/socket_ops.hpp"
#include "corio/sleep.hpp"
#include "corio/spawn.hpp"
#include "protocol_calls.hpp"
#include "recv_datagram.hpp"

namespace corio::detail {

/// The transport's machinery, a friend so that the public header shows only the state.
///
/// One task per endpoint (the "pump", spawned by create_datagram_endpoint) receives and calls the
/// protocol, and at the end calls connection_lost. States:
///   open     receiving; sends go through.
///   closing  close(): no more receiving; the queue is flushed, then the socket closed (ended_ set).
///   aborted  abort(), a failure (error_ set) or the pump's cancellation: the socket is closed at once
///            (which wakes the pump wherever it waits on it), the queue dropped, ended_ set.
///   lost     connection_lost was called; the protocol is let go.
/// A second task exists only while datagrams are queued: it waits for the socket to be writable, sends
/// them in order, calls resume_writing, and closes the socket once a close()'s queue is empty.
struct datagram_transport_access {
  using state = datagram_transport::state;
  // The receive buffer, allocated once per endpoint: 64 KiB holds any UDP datagram; a Unix one can be as
  // long as its sender's SO_SNDBUF allows, so 256 KiB (asyncio's max_size for datagram transports), grown
  // after a longer one came (to the next power of two that holds it, up to max_buffer).
  static constexpr std::size_t udp_buffer = 64 * 1024;
  static constexpr std::size_t unix_buffer = 256 * 1024;
  static constexpr std::size_t max_buffer = 16 * 1024 * 1024;
  static constexpr int burst = 16; // datagrams received in a row before other tasks get a turn

  static std::string describe(const datagram_transport& t) {
    return detail::endpoint_name(t.local_.to_string(), t.is_connected() ? &t.peer_ : nullptr);
  }

  /// Closes the socket now and drops the queue (abort, failure, cancellation).
  static void shut(datagram_transport& t) noexcept {
    t.sock_.close(); // wakes the pump and the flusher wherever they wait on it
    t.queue_.clear();
    t.queued_bytes_ = 0;
    t.ended_.set();
  }

  /// Ends the endpoint with `e`: closed now, connection_lost(e) follows (asyncio's _fatal_error).
  static void fail(datagram_transport& t, std::exception_ptr e) noexcept {
    if (t.state_ == state::lost)
      return;
    if (!t.error_)
      t.error_ = std::move(e);
    t.state_ = state::aborted;
    shut(t);
  }

  /// A callback whose exception is fatal (connection_made, datagram_received).
  template <class F> static bool guarded(datagram_transport& t, const char* what, F&& f) noexcept {
    std::exception_ptr e = call_protocol(
        "datagram protocol", what, [&] { return describe(t); }, f);
    if (e)
      fail(t, std::move(e));
    return !e;
  }
  /// A callback whose exception is only reported (error_received, pause/resume_writing, connection_lost).
  template <class F> static void reported(datagram_transport& t, const char* what, F&& f) noexcept {
    (void)call_protocol(
        "datagram protocol", what, [&] { return describe(t); }, f);
  }

  /// error_received(e); the endpoint stays open.
  static void error_received(datagram_transport& t, std::exception_ptr e) noexcept {
    if (t.state_ == state::lost || !t.protocol_)
      return;
    std::shared_ptr<datagram_protocol> p = t.protocol_; // the callback may end the endpoint
    reported(t, "error_received", [&] { p->error_received(e); });
  }

  /// std::system_error(err, what), or the exception making it raised (out of memory: that is the error then).
  template <class F> static std::exception_ptr system_error(int err, F&& what) noexcept {
    try {
      return std::make_exception_ptr(std::system_error(err, std::generic_category(), what()));
    } catch (...) {
      return std::current_exception();
    }
  }

  /// error_received(system_error(err)) for a failed send or receive; the endpoint stays open.
  static void error_received(datagram_transport& t, int err, const char* op, const address* addr) noexcept {
    if (t.state_ == state::lost || !t.protocol_)
      return;
    error_received(t, system_error(err, [&] {
                     std::string what = std::string("corio: ") + op;
                     if (addr != nullptr && addr->family() != address_family::unspecified)
                       what += " " + addr->to_string();
                     else
                       what += " (" + describe(t) + ")";
                     return what;
                   }));
  }

  /// A datagram longer than the buffer (the kernel kept only its first buf_size bytes): dropped, and
  /// error_received(system_error(EMSGSIZE)) says so.
  static void truncated_received(datagram_transport& t, const detail::datagram_info& d, std::size_t buf_size) noexcept {
    if (t.state_ == state::lost || !t.protocol_)
      return;
    error_received(t, system_error(EMSGSIZE, [&] {
                     std::string what = "corio: datagram of " + std::to_string(d.full_size);
                     what += " bytes from " + d.from.to_string() + " truncated to " + std::to_string(buf_size) +
                             ": dropped (" + describe(t) + ")";
                     return what;
                   }));
  }

  /// The buffer size that holds a datagram of `n` bytes: the next power of two, at most max_buffer.
  static std::size_t grown(std::size_t n) noexcept { return n < max_buffer ? std::bit_ceil(n) : max_buffer; }

  /// One send attempt: 0 sent, else the errno (EAGAIN: try again once writable).
  static int try_send(datagram_transport& t, std::string_view data, const address& to) noexcept {
    for (;;) {
      ssize_t n = t.is_connected()
                      ? ::send(t.sock_.fd(), data.data(), data.size(), MSG_NOSIGNAL)
                      : ::sendto(t.sock_.fd(), data.data(), data.size(), MSG_NOSIGNAL,
                                 static_cast<const sockaddr*>(to.data()), static_cast<socklen_t>(to.size()));
      if (n >= 0)
        return 0;
      const int err = errno;
      if (err == EWOULDBLOCK)
        return EAGAIN;
      if (err != EINTR)
        return err;
    }
  }

  static void maybe_pause(datagram_transport& t) {
    if (t.writing_paused_ || t.state_ != state::open || t.queued_bytes_ <= t.high_)
      return;
    t.writing_paused_ = true;
    std::shared_ptr<datagram_protocol> p = t.protocol_;
    reported(t, "pause_writing", [&] { p->pause_writing(); });
  }

  static void maybe_resume(datagram_transport& t) {
    if (!t.writing_paused_ || t.queued_bytes_ > t.low_ || t.state_ == state::aborted || t.state_ == state::lost)
      return;
    t.writing_paused_ = false;
    std::shared_ptr<datagram_protocol> p = t.protocol_;
    reported(t, "resume_writing", [&] { p->resume_writing(); });
  }

  static void start_flush(datagram_transport& t) {
    if (t.flushing_)
      return;
    t.flushing_ = true;
    try {
      spawn_lazy(running_loop("datagram transport"), flush(t.shared_from_this()), "datagram transport flush",
                 start_policy::always);
    } catch (...) {
      t.flushing_ = false;
      fail(t, std::current_exception());
    }
  }

  /// Sends the queue in order as the socket takes it; a close()'s socket is closed once it is empty.
  static task<> flush(std::shared_ptr<datagram_transport> param) {
    std::shared_ptr<datagram_transport> t = std::move(param); // a local: let go when the task ends
    bool cancelled = false;
    while (!t->queue_.empty() && (t->state_ == state::open || t->state_ == state::closing)) {
      datagram_transport::queued& q = t->queue_.front();
      const int err = try_send(*t, q.data, q.to);
      if (err == EAGAIN) {
        try {
          co_await writable(t->sock_);
        } catch (const cancelled_error&) {
          cancelled = true; // the loop shuts down: the pump ends the endpoint
        }
        if (cancelled)
          break;
        continue;
      }
      datagram_transport::queued sent = std::move(q);
      t->queue_.pop_front();
      t->queued_bytes_ -= sent.data.size();
      if (err != 0)
        error_received(*t, err, "sendto", t->is_connected() ? nullptr : &sent.to);
      maybe_resume(*t); // may queue more (after this loop's checks)
    }
    t->flushing_ = false;
    if (cancelled)
      co_return;
    if (t->state_ == state::closing && t->queue_.empty()) {
      t->sock_.close();
      t->ended_.set();
    }
  }

  static std::shared_ptr<datagram_transport> start(socket s, std::shared_ptr<datagram_protocol> p) {
    auto t = std::make_shared<datagram_transport>(datagram_transport::key{}, std::move(s), std::move(p));
    guarded(*t, "connection_made", [&] { t->protocol_->connection_made(*t); });
    return t;
  }

  /// Receives and calls the protocol until the endpoint leaves the open state. Raises cancellation.
  static task<> read_loop(std::shared_ptr<datagram_transport> t) {
    std::size_t size = t->local_.family() == address_family::unix_path ? unix_buffer : udp_buffer;
    std::unique_ptr<char[]> buf(new char[size]);
    int in_a_row = 0;
    while (t->state_ == state::open) {
      datagram_info got;
      int err = 0;
      try {
        got = co_await recv_datagram(t->sock_, std::span<char>(buf.get(), size));
      } catch (const std::system_error& e) { // a receive error; EBADF once close() or abort() closed the socket
        err = e.code().value();
      }
      if (t->state_ != state::open)
        co_return;
      if (err != 0) {
        in_a_row = 0;
        error_received(*t, err, "recvfrom", nullptr);
        co_await sleep(std::chrono::milliseconds(0)); // an error that repeats must not hold the loop
        continue;
      }
      if (got.truncated()) {
        truncated_received(*t, got, size);
        // Grow so that the next datagram of that size comes whole (full_size is at least size + 1, so a
        // kernel that does not tell the real size doubles it). Without the memory, keep the buffer: such
        // datagrams go on being reported.
        const std::size_t want = grown(got.full_size);
        if (want > size) {
          if (char* bigger = new (std::nothrow) char[want]) {
            buf.reset(bigger);
            size = want;
          }
        }
      } else {
        std::shared_ptr<datagram_protocol> p = t->protocol_;
        guarded(*t, "datagram_received",
                [&] { p->datagram_received(std::string_view(buf.get(), got.size), got.from); });
      }
      if (++in_a_row >= burst) {
        in_a_row = 0;
        co_await sleep(std::chrono::milliseconds(0));
      }
    }
  }

  /// connection_lost, once; then the transport lets go of the protocol.
  static void lose(datagram_transport& t) noexcept {
    if (t.state_ == state::lost)
      return;
    if (t.sock_.is_open()) // cancelled or failed: nothing more goes
      shut(t);
    t.state_ = state::lost;
    t.writing_paused_ = false;
    std::shared_ptr<datagram_protocol> p = std::move(t.protocol_);
    std::exception_ptr e = t.error_;
    if (p)
      reported(t, "connection_lost", [&] { p->connection_lost(e); });
  }

  static task<> pump(std::shared_ptr<datagram_transport> param) {
    std::shared_ptr<datagram_transport> t = std::move(param);
    bool cancelled = false;
    try {
      co_await read_loop(t);
    } catch (const cancelled_error&) {
      cancelled = true;
    } catch (...) { // out of memory
      fail(*t, std::current_exception());
    }
    if (!cancelled && t->state_ == state::closing) {
      try {
        co_await t->ended_.wait(); // the flush of close() ends
      } catch (const cancelled_error&) {
        cancelled = true;
      }
    }
    if (cancelled) // loop shutdown: not an error of the endpoint
      t->abort();
    lose(*t);
  }
};

task<datagram_endpoint> open_endpoint(datagram_options options) { co_return datagram_endpoint::open(options); }

task<std::pair<std::shared_ptr<datagram_transport>, std::shared_ptr<datagram_protocol>>>
open_datagram_protocol(datagram_protocol_factory make, task<datagram_endpoint> opening) {
  datagram_endpoint ep = co_await std::move(opening);
  std::shared_ptr<datagram_protocol> p = make(); // a factory that raises: `ep` closes as it goes
  if (!p)
    throw std::invalid_argument("corio: create_datagram_endpoint(): the protocol factory returned null");
  std::shared_ptr<datagram_transport> t = datagram_transport_access::start(std::move(ep.raw()), p);
  spawn_lazy(running_loop("create_datagram_endpoint()"), datagram_transport_access::pump(t), "datagram transport",
             start_policy::always);
  std::pair<std::shared_ptr<datagram_transport>, std::shared_ptr<datagram_protocol>> r{std::move(t), std::move(p)};
  co_return r;
}

} // namespace corio::detail

namespace corio {

using detail::datagram_transport_access;

datagram_transport::datagram_transport(key, socket s, std::shared_ptr<datagram_protocol> p)
    : sock_(std::move(s)), protocol_(std::move(p)) {
  local_ = sock_.local_address();
  try {
    peer_ = sock_.peer_address();
  } catch (const std::system_error&) { // ENOTCONN: not connected
  }
}

datagram_transport::~datagram_transport() = default;

void datagram_transport::sendto(std::string_view data, std::optional<address> to) {
  if (error_)
    return; // failed: dropped, connection_lost(error) tells the protocol
  if (state_ != state::open)
    throw invalid_state_error("corio: datagram_transport.sendto() after close() or abort() (" +
                              datagram_transport_access::describe(*this) + ")");
  if (is_connected()) {
    if (to && *to != peer_)
      throw std::invalid_argument("corio: datagram_transport.sendto(): invalid address " + to->to_string() +
                                  ": the endpoint is connected to " + peer_.to_string() + " (give none or that one)");
  } else if (!to || to->family() == address_family::unspecified) {
    throw std::invalid_argument("corio: datagram_transport.sendto(): no address, and the endpoint is not connected");
  }
  const address& dest = to ? *to : peer_;
  if (queue_.empty()) {
    const int err = datagram_transport_access::try_send(*this, data, dest);
    if (err == 0)
      return;
    if (err != EAGAIN) {
      datagram_transport_access::error_received(*this, err, "sendto", is_connected() ? nullptr : &dest);
      return;
    }
  }
  queue_.push_back(queued{std::string(data), dest});
  queued_bytes_ += data.size();
  datagram_transport_access::start_flush(*this);
  datagram_transport_access::maybe_pause(*this);
}

void datagram_transport::close() {
  if (state_ != state::open)
    return;
  state_ = state::closing;
  if (queue_.empty() && !flushing_) {
    sock_.close(); // wakes the pump
    ended_.set();
  } // else the flush closes the socket once the queue is empty
}

void datagram_transport::abort() noexcept {
  if (state_ == state::aborted || state_ == state::lost)
    return;
  state_ = state::aborted;
  datagram_transport_access::shut(*this);
}

void datagram_transport::set_write_buffer_limits(std::optional<std::size_t> high, std::optional<std::size_t> low) {
  const write_buffer_limits limits = detail::resolve_write_buffer_limits(high, low, "datagram_transport");
  high_ = limits.high;
  low_ = limits.low;
  datagram_transport_access::maybe_pause(*this);
}

} // namespace corio
