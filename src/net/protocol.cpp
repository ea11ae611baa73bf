// corio::transport: a protocol's connection, on a stream_reader / stream_writer pair.
#include "corio/net/protocol.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/io.hpp"
#include "corio/net/pipe.hpp"
#include "corio/spawn.hpp"
#include "corio/this_task.hpp"
#include "protocol_calls.hpp"
#include "server_hooks.hpp"
#include "stream_transport.hpp"

namespace corio::detail {

/// The transport's machinery, a friend so that the public header shows only the state.
///
/// One task per connection (the "pump": spawned by create_connection, the server's handler task for
/// create_server) reads and calls the protocol, and at the end calls connection_lost; a write pipe's
/// pump reads nothing and waits for the pipe's reader to go away or the transport to close. States:
///   open     reading; writes go through.
///   closing  close() (or eof_received() false): no more reading; the writer flushes, then closes the
///            socket, which wakes the pump; it waits for the close and calls connection_lost.
///   aborted  abort(), a failure (error_ set) or the pump's cancellation: the socket is closed at once,
///            which wakes the pump wherever it waits (a read, resume_, wait_closed).
///   lost     connection_lost was called; the reader, writer and protocol are let go.
/// A second task exists only while the protocol is paused for writing: it waits in drain() and calls
/// resume_writing (or ends the connection with the send error drain() raises).
struct transport_access {
  using state = transport::state;
  using over = transport_over;
  static constexpr std::size_t read_chunk = 64 * 1024;

  static std::string describe(const transport& t) {
    return t.name_.empty() ? "connection with " + t.peer_.to_string() : t.name_;
  }

  /// Ends the connection with `e`: closed now, connection_lost(e) follows (asyncio's _fatal_error).
  static void fail(transport& t, std::exception_ptr e) noexcept {
    if (t.state_ == state::lost)
      return;
    if (!t.error_)
      t.error_ = std::move(e);
    t.state_ = state::aborted;
    t.writer_.abort();
    t.resume_.set();
  }

  /// A callback whose exception is fatal (connection_made, data_received, eof_received).
  template <class F> static bool guarded(transport& t, const char* what, F&& f) noexcept {
    std::exception_ptr e = call_protocol(
        "protocol", what, [&] { return describe(t); }, f);
    if (e)
      fail(t, std::move(e));
    return !e;
  }
  /// A callback whose exception is only reported (pause_writing, resume_writing, connection_lost).
  template <class F> static void reported(transport& t, const char* what, F&& f) noexcept {
    (void)call_protocol(
        "protocol", what, [&] { return describe(t); }, f);
  }

  static void check_writable(const transport& t, const char* op) {
    if (t.kind_ == over::read_pipe)
      throw invalid_state_error(std::string("corio: transport.") + op + " on a " + describe(t) +
                                ": a read pipe's transport cannot write");
    if (t.state_ != state::open)
      throw invalid_state_error(std::string("corio: transport.") + op + " after close() or abort() (" + describe(t) +
                                ")");
    if (t.eof_written_)
      throw invalid_state_error(std::string("corio: transport.") + op + " after write_eof() (" + describe(t) + ")");
    if (t.upgrading_)
      throw invalid_state_error(std::string("corio: transport.") + op + " during start_tls() (" + describe(t) + ")");
  }

  /// Runs a write on the writer; a send error (EPIPE, ECONNRESET) ends the connection with it.
  template <class F> static void do_write(transport& t, const char* op, F&& f) {
    if (t.error_)
      return; // failed: dropped, connection_lost(error) tells the protocol (asyncio's rule)
    check_writable(t, op);
    try {
      f();
    } catch (const std::system_error&) {
      fail(t, std::current_exception());
      return;
    }
    maybe_pause(t);
  }

  static void maybe_pause(transport& t) {
    if (t.writing_paused_ || t.state_ == state::aborted || t.state_ == state::lost ||
        t.writer_.buffer_size() <= t.high_)
      return;
    t.writing_paused_ = true;
    std::shared_ptr<protocol> p = t.protocol_; // alive through the call, even if it calls set_protocol()
    reported(t, "pause_writing", [&] { p->pause_writing(); });
    if (t.state_ == state::aborted || t.state_ == state::lost) // the callback aborted
      return;
    try {
      spawn_lazy(running_loop("transport"), watch_drain(t.shared_from_this()), "transport drain", start_policy::always);
    } catch (...) {
      fail(t, std::current_exception());
    }
  }

  /// While paused for writing: resume_writing() once the writer's queue is down to the low-water mark.
  static task<> watch_drain(std::shared_ptr<transport> param) {
    std::shared_ptr<transport> t = std::move(param); // a local: let go when the task ends
    if (t->state_ == state::aborted || t->state_ == state::lost)
      co_return;
    stream_writer w = t->writer_;
    std::exception_ptr error;
    bool cancelled = false;
    try {
      co_await w.drain(); // returns once unpaused, or closed; raises a send error
    } catch (const cancelled_error&) {
      cancelled = true; // the loop shuts down: the pump ends the connection
    } catch (...) {
      error = std::current_exception();
    }
    if (cancelled)
      co_return;
    if (error) {
      fail(*t, error);
      co_return;
    }
    if (!t->writing_paused_ || t->state_ == state::aborted || t->state_ == state::lost)
      co_return;
    t->writing_paused_ = false;
    std::shared_ptr<protocol> p = t->protocol_;
    reported(*t, "resume_writing", [&] { p->resume_writing(); });
  }

  static std::shared_ptr<transport> start(connection c, std::shared_ptr<protocol> p, std::size_t high, std::size_t low,
                                          over kind = over::socket, std::string name = std::string()) {
    if (kind != over::socket && name.empty())
      name = pipe_label(c.writer.fd(), kind == over::read_pipe ? pipe_end::read : pipe_end::write);
    auto t = std::make_shared<transport>(transport::key{}, std::move(c), p, high, low, kind, std::move(name));
    guarded(*t, "connection_made", [&] { p->connection_made(*t); });
    return t;
  }

  static void on_eof(transport& t) {
    t.peer_eof_ = true;
    bool keep_open = false;
    std::shared_ptr<protocol> p = t.protocol_;
    if (!guarded(t, "eof_received", [&] { keep_open = p->eof_received(); }))
      return;
    if (!keep_open || t.kind_ == over::read_pipe) // nothing to write on a read pipe: it ends (asyncio's rule)
      t.close();                                  // no-op if the callback closed or aborted
  }

  /// A buffered protocol's buffer for the next bytes; an empty one (or an exception) is a fatal error of
  /// the connection: false, the connection failed.
  static bool get_buffer(transport& t, buffered_protocol& p, std::size_t sizehint, std::span<char>& into) {
    return guarded(t, "get_buffer", [&] {
      into = p.get_buffer(sizehint);
      if (into.empty())
        throw std::invalid_argument("corio: buffered_protocol::get_buffer() returned an empty buffer");
    });
  }

  /// Reads and calls the protocol until the connection leaves the open state (or the peer's end of file
  /// was kept open and the transport then closes). Raises read errors and cancellation.
  static task<> read_loop(std::shared_ptr<transport> t) {
    // A buffered protocol gives the buffer of each read; the others get views of this one (made at the
    // first read for one, since set_protocol() may switch kinds).
    std::unique_ptr<char[]> buf;
    stream_reader r = t->reader_;
    stream_writer w = t->writer_;
    for (;;) {
      if (t->state_ != state::open)
        co_return;
      if (t->upgrading_) { // start_tls(): no reading until the handshake is over
        t->pump_parked_.set();
        while (t->upgrading_ && t->state_ == state::open)
          co_await t->upgraded_.wait();
        continue;
      }
      if (t->peer_eof_) { // kept open for writing: nothing more to read; wait for close() or abort()
        co_await w.wait_closed();
        co_return;
      }
      while (t->reading_paused_ && t->state_ == state::open)
        co_await t->resume_.wait();
      if (t->state_ != state::open)
        co_return;
      // A buffered protocol's read lands in its buffer: it is told, and kept alive until then. Other
      // reads go to whichever protocol is current when the bytes arrive (set_protocol() may come first).
      std::shared_ptr<protocol> owner = t->protocol_;
      auto* buffered = dynamic_cast<buffered_protocol*>(owner.get());
      if (buffered == nullptr) {
        owner.reset();
        if (!buf)
          buf.reset(new char[read_chunk]);
      }
      std::span<char> into(buf.get(), buffered != nullptr ? 0 : read_chunk);
      if (buffered != nullptr && !get_buffer(*t, *buffered, read_chunk, into))
        co_return; // failed: the connection is aborted
      if (t->state_ != state::open)
        co_return; // get_buffer closed or aborted it
      // start_tls() cancels this read (only this one: in_read_) to take the socket over; the read loses
      // nothing (bytes not read stay for the handshake). Its cancel is taken back at once, whether it
      // raised here or the read had finished first.
      std::size_t n = 0;
      bool upgrade = false;
      t->in_read_ = true;
      try {
        n = co_await r.readinto(into);
      } catch (const cancelled_error&) {
        t->in_read_ = false;
        if (!t->pump_cancelled_)
          throw;
        upgrade = true;
      }
      t->in_read_ = false;
      if (t->pump_cancelled_) {
        t->pump_cancelled_ = false;
        (void)corio::uncancel();
      }
      if (upgrade)
        continue; // the loop's top waits for the handshake (a buffered protocol's buffer is asked again)
      // A read that was in progress when pause_reading() came from elsewhere: held until resumed.
      while (t->reading_paused_ && t->state_ == state::open)
        co_await t->resume_.wait();
      if (t->state_ != state::open)
        co_return; // closed or aborted meanwhile: what came is dropped
      if (n == 0)
        on_eof(*t);
      else if (buffered != nullptr)
        guarded(*t, "buffer_updated", [&] { buffered->buffer_updated(n); });
      else
        deliver(*t, std::string_view(buf.get(), n));
    }
  }

  /// Bytes read into the transport's own chunk, to the current protocol: data_received, or for a
  /// buffered protocol (set_protocol() switched to one during the read) copied into its buffers.
  static void deliver(transport& t, std::string_view data) {
    std::shared_ptr<protocol> p = t.protocol_; // alive through the calls, even if they switch protocols
    auto* buffered = dynamic_cast<buffered_protocol*>(p.get());
    if (buffered == nullptr) {
      guarded(t, "data_received", [&] { p->data_received(data); });
      return;
    }
    while (!data.empty() && t.state_ == state::open) {
      std::span<char> into;
      if (!get_buffer(t, *buffered, data.size(), into))
        return;
      const std::size_t k = std::min(into.size(), data.size());
      std::memcpy(into.data(), data.data(), k);
      data.remove_prefix(k);
      if (!guarded(t, "buffer_updated", [&] { buffered->buffer_updated(k); }))
        return;
    }
  }

  /// A write pipe's pump: nothing to read. The fd turns readable (EPOLLERR, EPOLLHUP) when the pipe's
  /// reader goes away; the wait also ends when the transport closes the fd (the socket tells the loop).
  static task<> watch_write_pipe(std::shared_ptr<transport> t) {
    if (t->state_ != state::open)
      co_return;
    co_await corio::detail::readable_kept(t->writer_.fd());
    if (t->state_ != state::open)
      co_return; // closed or aborted (the pump goes on as for a socket)
    const std::size_t unsent = t->writer_.buffer_size();
    if (unsent == 0) {
      t->close();
      co_return;
    }
    fail(*t, std::make_exception_ptr(std::system_error(EPIPE, std::system_category(),
                                                       "corio: " + describe(*t) + ": the reading end closed with " +
                                                           std::to_string(unsent) + " bytes unsent")));
  }

  /// connection_lost, once; then the transport lets go of the connection and the protocol.
  static void lose(transport& t) noexcept {
    if (t.state_ == state::lost)
      return;
    t.state_ = state::lost;
    t.writer_.abort(); // closed already, except after a cancellation or a failure
    t.reading_paused_ = false;
    std::shared_ptr<protocol> p = std::move(t.protocol_);
    std::exception_ptr e = t.error_;
    if (p)
      reported(t, "connection_lost", [&] { p->connection_lost(e); });
    t.reader_ = stream_reader();
    t.writer_ = stream_writer();
  }

  static task<> pump(std::shared_ptr<transport> param) {
    std::shared_ptr<transport> t = std::move(param);
    t->pump_task_ = event_loop::current()->current_task();
    bool cancelled = false;
    try {
      if (t->kind_ == over::write_pipe)
        co_await watch_write_pipe(t);
      else
        co_await read_loop(t);
    } catch (const cancelled_error&) {
      cancelled = true;
    } catch (...) { // a read error (ECONNRESET...)
      fail(*t, std::current_exception());
    }
    if (!cancelled && t->state_ == state::closing) {
      stream_writer w = t->writer_;
      try {
        co_await w.wait_closed();
        co_await w.drain(); // raises the error that ended the flush, if one did
      } catch (const cancelled_error&) {
        cancelled = true;
      } catch (...) {
        fail(*t, std::current_exception());
      }
    }
    if (cancelled) // close_clients(), loop shutdown: not an error of the connection
      t->abort();
    t->in_read_ = false;
    t->pump_task_ = nullptr;
    t->pump_parked_.set(); // a start_tls() waiting for the pump to stop reading: it stopped for good
    lose(*t);
  }

  /// transport::start_tls: takes the socket from the pump (cancelling its read, if it is in one), runs the
  /// stream's handshake, and gives it back.
  static task<> start_tls(std::shared_ptr<transport> t, tls_context ctx, std::string server_hostname,
                          duration timeout) {
    check_tls_arguments(server_hostname, timeout, "transport.start_tls()");
    if (t->kind_ != over::socket)
      throw invalid_state_error("corio: transport.start_tls() on a " + describe(*t) + ": TLS needs a socket");
    if (t->state_ != state::open)
      throw invalid_state_error("corio: transport.start_tls() after close(), abort() or a failure (" + describe(*t) +
                                ")");
    if (t->upgrading_)
      throw invalid_state_error("corio: transport.start_tls(): an upgrade is already under way (" + describe(*t) + ")");
    if (!ctx)
      throw std::invalid_argument("corio: transport.start_tls() with an empty tls_context");
    if (t->writer_.tls_info())
      throw invalid_state_error("corio: transport.start_tls() on a connection that already speaks TLS (" +
                                describe(*t) + ")");
    t->upgrading_ = true;
    t->upgraded_.clear();
    t->pump_parked_.clear();
    struct end_of_upgrade {
      transport& t;
      ~end_of_upgrade() {
        t.upgrading_ = false;
        t.upgraded_.set(); // the pump reads again (through TLS), or sees the connection ended
      }
    } guard{*t};
    // Cancelled anywhere here (a timeout too), the connection is aborted: a peer that agreed to TLS cannot
    // go on in plaintext.
    std::exception_ptr cancelled;
    if (t->in_read_ && t->pump_task_ != nullptr) {
      t->pump_cancelled_ = true;
      (void)t->pump_task_->loop->cancel_task(t->pump_task_);
      try {
        co_await t->pump_parked_.wait();
      } catch (const cancelled_error&) {
        cancelled = std::current_exception();
      }
      if (!cancelled && t->state_ != state::open)
        throw invalid_state_error("corio: transport.start_tls(): the connection ended (" + describe(*t) + ")");
    }
    if (!cancelled) {
      stream_writer w = t->writer_;
      try {
        co_await w.start_tls(std::move(ctx), std::move(server_hostname), timeout);
      } catch (const cancelled_error&) {
        cancelled = std::current_exception(); // the stream was aborted
      } catch (...) {
        fail(*t, std::current_exception()); // connection_lost receives the handshake's error
        throw;
      }
    }
    if (cancelled) {
      t->abort();
      std::rethrow_exception(cancelled);
    }
  }
};

task<std::pair<std::shared_ptr<transport>, std::shared_ptr<protocol>>>
connect_protocol(task<connection> connecting, protocol_factory make, std::size_t high, std::size_t low,
                 transport_over over) {
  connection c = co_await std::move(connecting);
  std::shared_ptr<protocol> p = make(); // a factory that raises: `c` closes as it goes
  if (!p)
    throw std::invalid_argument("corio: create_connection(): the protocol factory returned null");
  std::shared_ptr<transport> t = transport_access::start(std::move(c), p, high, low, over);
  spawn_lazy(running_loop("create_connection()"), transport_access::pump(t), "transport", start_policy::always);
  std::pair<std::shared_ptr<transport>, std::shared_ptr<protocol>> r{std::move(t), std::move(p)};
  co_return r;
}

std::shared_ptr<transport> start_pipe_transport(socket s, transport_over over, std::shared_ptr<protocol> p,
                                                std::string name, std::size_t high, std::size_t low) {
  stream_options o;
  o.high_water = high;
  o.low_water = low;
  auto st = std::make_shared<stream_transport>(std::move(s), name, o);
  connection c{stream_reader(st), stream_writer(st)};
  std::shared_ptr<transport> t = transport_access::start(std::move(c), std::move(p), high, low, over, std::move(name));
  spawn_lazy(running_loop("start_pipe_transport()"), transport_access::pump(t), "transport", start_policy::always);
  return t;
}

task<connection> accepted_streams(socket s, stream_options o) {
  if (!s.is_open())
    throw std::invalid_argument("corio: connect_accepted_socket() of an empty socket");
  check_tls_arguments(o.server_hostname.str(), o.tls_handshake_timeout, "connect_accepted_socket()");
  connection c = make_streams(std::move(s), address(), o);
  if (o.tls) {
    std::string name = o.server_hostname.str();
    co_await c.writer.start_tls(o.tls, std::move(name), o.tls_handshake_timeout);
  }
  co_return std::move(c);
}

task<connection> pipe_streams_of(int fd, transport_over over, stream_options o) {
  // One stream over the fd, both halves: the transport uses the one its kind says.
  if (over == transport_over::read_pipe)
    co_return pipe_connection(fd, pipe_end::read, o, "connect_read_pipe");
  co_return pipe_connection(fd, pipe_end::write, o, "connect_write_pipe");
}

namespace {

task<> serve_protocol(protocol_factory make, stream_reader r, stream_writer w, std::size_t high, std::size_t low) {
  // First thing, before anything can suspend or start another handler: where close_clients() finds
  // how to close this connection.
  std::function<void()>* close_slot = std::exchange(handler_close_slot(), nullptr);
  std::shared_ptr<protocol> p;
  try {
    p = make();
    if (!p)
      throw std::invalid_argument("corio: create_server(): the protocol factory returned null");
  } catch (...) {
    report_protocol_error("protocol", "factory", "connection with " + w.peer_address().to_string(),
                          std::current_exception());
  }
  if (!p) {
    w.abort();
    co_return;
  }
  connection c{std::move(r), std::move(w)};
  std::shared_ptr<transport> t = transport_access::start(std::move(c), std::move(p), high, low);
  if (close_slot != nullptr) // close_clients(): transport.close(), as asyncio's Server.close_clients
    *close_slot = [weak = std::weak_ptr<transport>(t)] {
      if (std::shared_ptr<transport> live = weak.lock())
        live->close();
    };
  co_await transport_access::pump(std::move(t));
}

} // namespace

connection_handler protocol_handler(protocol_factory make, std::size_t high, std::size_t low) {
  return [make = std::move(make), high, low](stream_reader r, stream_writer w) {
    return serve_protocol(make, std::move(r), std::move(w), high, low);
  };
}

void report_protocol_error(const char* kind, const char* what, const std::string& where,
                           std::exception_ptr e) noexcept {
  try {
    exception_context c;
    // No "corio: " here: the default handler prints "corio: <message>: <exception>".
    c.message = std::string(kind) + " " + what + "() raised (" + where + ")";
    c.exception = std::move(e);
    if (event_loop* loop = event_loop::current())
      loop->call_exception_handler(c);
    else
      event_loop::default_exception_handler(c);
  } catch (...) { // out of memory building the message
  }
}

} // namespace corio::detail

namespace corio {

using detail::transport_access;
using over = detail::transport_over;

transport::transport(key, connection c, std::shared_ptr<corio::protocol> p, std::size_t high, std::size_t low,
                     detail::transport_over kind, std::string name)
    : reader_(std::move(c.reader)), writer_(std::move(c.writer)), protocol_(std::move(p)), name_(std::move(name)),
      high_(high), low_(low), kind_(kind) {
  if (kind_ == over::socket) { // a pipe has no addresses
    peer_ = writer_.peer_address();
    try {
      local_ = writer_.local_address();
    } catch (const std::system_error&) { // the socket is already unusable: the first read reports it
    }
  }
  resume_.set();
}

transport::~transport() = default;

void transport::write(std::string_view data) {
  transport_access::do_write(*this, "write()", [&] {
    if (!data.empty())
      writer_.write(data);
  });
}

void transport::write(std::string&& data) {
  transport_access::do_write(*this, "write()", [&] {
    if (!data.empty())
      writer_.write(std::move(data));
  });
}

void transport::writelines(std::span<const std::string_view> parts) {
  transport_access::do_write(*this, "writelines()", [&] { writer_.writelines(parts); });
}

void transport::writelines(const std::vector<std::string>& parts) {
  transport_access::do_write(*this, "writelines()", [&] { writer_.writelines(parts); });
}

void transport::write_eof() {
  if (kind_ == over::write_pipe) { // a pipe has no half-close: asyncio's write pipe closes
    close();
    return;
  }
  if (state_ != state::open || eof_written_ || kind_ == over::read_pipe)
    return;
  eof_written_ = true;
  try {
    writer_.write_eof();
  } catch (const std::system_error&) {
    transport_access::fail(*this, std::current_exception());
  }
}

void transport::close() {
  if (state_ != state::open)
    return;
  state_ = state::closing;
  try {
    writer_.close(); // closes the socket once flushed (at once if nothing is queued): the pump wakes
  } catch (...) {
    transport_access::fail(*this, std::current_exception());
  }
  resume_.set(); // a pump waiting while reading is paused
}

void transport::abort() noexcept {
  if (state_ == state::aborted || state_ == state::lost)
    return;
  state_ = state::aborted;
  writer_.abort();
  resume_.set();
}

void transport::pause_reading() {
  if (state_ != state::open || reading_paused_ || kind_ == over::write_pipe)
    return;
  reading_paused_ = true;
  resume_.clear();
}

void transport::resume_reading() {
  if (state_ != state::open || !reading_paused_)
    return;
  reading_paused_ = false;
  resume_.set();
}

void transport::set_write_buffer_limits(std::optional<std::size_t> high, std::optional<std::size_t> low) {
  const write_buffer_limits limits = detail::resolve_write_buffer_limits(high, low, "transport");
  if (state_ != state::lost)
    writer_.set_write_buffer_limits(limits.high, limits.low);
  high_ = limits.high;
  low_ = limits.low;
  transport_access::maybe_pause(*this);
}

void transport::set_protocol(std::shared_ptr<corio::protocol> p) {
  if (!p)
    throw std::invalid_argument("corio: transport.set_protocol(nullptr)");
  if (state_ == state::lost)
    throw invalid_state_error("corio: transport.set_protocol() after connection_lost (" +
                              transport_access::describe(*this) + ")");
  protocol_ = std::move(p);
}

task<> transport::start_tls(tls_context ctx, std::string server_hostname, duration handshake_timeout) {
  return transport_access::start_tls(shared_from_this(), std::move(ctx), std::move(server_hostname), handshake_timeout);
}

task<> transport::start_tls(tls_context ctx, std::string server_hostname) {
  return start_tls(std::move(ctx), std::move(server_hostname), std::chrono::seconds(60));
}

task<> transport::start_tls(tls_context ctx) { return start_tls(std::move(ctx), std::string()); }

std::optional<tls_info> transport::tls_info() const {
  return writer_.valid() ? writer_.tls_info() : std::optional<corio::tls_info>();
}

std::size_t transport::get_write_buffer_size() const noexcept { return writer_.valid() ? writer_.buffer_size() : 0; }

int transport::fd() const { return writer_.valid() ? writer_.fd() : -1; }

} // namespace corio
