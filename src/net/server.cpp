// corio::server: accept loops (one task per listening socket) and one task per connection.
#include "corio/net/server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <unordered_map>

#include "../core/nul_check.hpp"
#include "corio/io.hpp"
#include "corio/net/connection.hpp"
#include "corio/net/resolve.hpp"
#include "corio/net/socket.hpp"
#include "corio/sleep.hpp"
#include "corio/spawn.hpp"
#include "corio/sync/event.hpp"
#include "net_error.hpp"
#include "ring_ops.hpp"
#include "server_hooks.hpp"
#include "stream_transport.hpp"

namespace corio::detail {

/// Shared by the server handle, its accept tasks and its connection tasks. The tasks take their
/// reference as a local (not a parameter, which would live on in the finished frame held by a
/// join_handle stored here: a cycle).
struct server_state : std::enable_shared_from_this<server_state> {
  connection_handler handler;
  server_options opts;
  event_loop* loop = nullptr;
  std::vector<socket> listeners;
  std::vector<address> addrs;
  /// A Unix socket file this server made, and its identity when bound: close() removes the path only if
  /// it still names that file. A newer server may have replaced it (start_unix_server removes a socket
  /// file in its way, as asyncio does); its file must not go with us (asyncio 3.13 checks st_ino too).
  struct unix_file {
    std::string path;
    dev_t dev = 0;
    ino_t ino = 0;
  };
  std::vector<unix_file> unix_paths; // removed on close
  std::vector<join_handle<>> acceptors;
  /// A connection's task, and its writer: a local of the task's frame, set once the task made the
  /// streams and cleared before the local goes (abort_clients() resets the connection through it).
  struct client {
    join_handle<> task;
    stream_writer* writer = nullptr;
    bool reset = false;                  // abort_clients() came before the task made its streams
    std::function<void()> close_handler; // a protocol's graceful close (server_hooks.hpp); empty: cancel
  };
  std::unordered_map<std::uint64_t, client> handlers; // by task id; a task erases itself at its end
  int accepting = 0;                                  // accept tasks not finished
  std::size_t accept_errors = 0;
  std::size_t tls_errors = 0; // failed handshakes
  bool serving = false;
  bool serving_forever = false; // a serve_forever() runs: a second one raises (asyncio's RuntimeError)
  bool closed = false;
  event closed_event; // set by close()
  event idle_event;   // set once closed and every task is finished

  void start_serving();
  void close();
  void close_clients();
  void abort_clients();
  void cancel_clients(); // every handler, protocol or not
  void check_idle() {
    if (closed && accepting == 0 && handlers.empty())
      idle_event.set();
  }
  void report(std::exception_ptr e, const address& peer) {
    if (opts.on_handler_error) {
      try {
        opts.on_handler_error(e, peer);
        return;
      } catch (...) {
        std::fprintf(stderr, "corio: server on_handler_error raised: %s\n", describe(std::current_exception()).c_str());
      }
    }
    std::fprintf(stderr, "corio: connection handler for %s failed: %s\n", peer.to_string().c_str(),
                 describe(e).c_str());
  }
  void spawn_handler(socket s, address peer);
};

namespace {

/// SO_LINGER {1, 0}: closing `fd` sends a reset, not a FIN, and drops what the kernel still holds. On the
/// fd, not through socket::set_linger_reset: the socket may be a stream's (not ours), and this must not
/// throw (a failure only means a FIN instead of a reset).
void linger_reset(int fd) noexcept {
  if (fd < 0)
    return;
  linger l{};
  l.l_onoff = 1;
  l.l_linger = 0;
  (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

/// Closes a connection now, dropping what is queued: the peer sees a reset (abort_clients()).
void reset_connection(stream_writer& w) noexcept {
  linger_reset(w.fd()); // -1 once closed (the handler closed it, or it failed): abort() is then a no-op
  w.abort();
}

task<> run_handler(std::shared_ptr<server_state> param, socket s, address peer) {
  std::shared_ptr<server_state> st = std::move(param);
  struct done_guard {
    server_state* st;
    std::uint64_t id;
    ~done_guard() {
      st->handlers.erase(id); // our own join_handle: the running reference keeps this frame alive
      st->check_idle();
    }
  } guard{st.get(), event_loop::current()->current_task()->id};
  server_state::client& me = st->handlers.at(guard.id); // node-based map: stays put until erased
  // abort_clients() came before we started: reset the connection, the handler never runs.
  if (me.reset) {
    linger_reset(s.fd());
    co_return; // `s` closes with the frame
  }
  // Cancelled before we started (close_clients(), the loop's shutdown): the handler never runs, as asyncio
  // never starts a task cancelled before its first step. We ran only for the guard; `s` closes with the frame.
  if (event_loop::current()->current_task()->cancel_requests > 0)
    co_return; // ends cancelled (the cancel was never raised)
  std::exception_ptr failure;
  connection c;
  struct writer_guard { // destroyed before `c`
    server_state::client& me;
    ~writer_guard() { me.writer = nullptr; }
  } registered{me};
  bool handshake_failed = false;
  try {
    c = make_streams(std::move(s), peer, st->opts.streams);
    me.writer = &c.writer;
    if (st->opts.tls) {
      try {
        co_await c.writer.start_tls(st->opts.tls, {}, st->opts.tls_handshake_timeout);
      } catch (const tls_error&) {
        handshake_failed = true; // the client's problem (or a scanner's): start_tls closed the connection
      }
    }
    if (!handshake_failed) {
      handler_close_slot() = &me.close_handler; // taken by a protocol handler before its first suspension
      struct slot_guard {
        std::function<void()>* mine;
        ~slot_guard() {
          if (handler_close_slot() == mine) // a stream handler did not take it
            handler_close_slot() = nullptr;
        }
      } slot{&me.close_handler};
      co_await st->handler(c.reader, c.writer);
    }
  } catch (const cancelled_error&) {
    throw; // close_clients() or loop shutdown: not an error of the handler
  } catch (...) {
    failure = std::current_exception();
  }
  if (handshake_failed) {
    ++st->tls_errors;
    co_return;
  }
  if (failure) {
    st->report(failure, peer);
    if (c.writer.valid())
      c.writer.abort();
    co_return;
  }
  // The handler is done: what it wrote still goes out, then the connection closes.
  c.writer.close();
  co_await c.writer.wait_closed();
}

/// Accept errors that concern one connection only: go on at once.
bool per_connection_error(int err) {
  return err == ECONNABORTED || err == EPROTO || err == EPERM || err == ENETDOWN || err == ENOPROTOOPT ||
         err == EHOSTDOWN || err == ENONET || err == EHOSTUNREACH || err == EOPNOTSUPP || err == ENETUNREACH;
}

task<> accept_loop(std::shared_ptr<server_state> param, std::size_t index) {
  std::shared_ptr<server_state> st = std::move(param);
  struct done_guard {
    server_state* st;
    ~done_guard() {
      --st->accepting;
      st->check_idle();
    }
  } guard{st.get()};
  int budget = 64; // connections accepted in a row before letting other tasks run
  for (;;) {
    const socket& l = st->listeners[index];
    if (!l.is_open())
      co_return; // close() closed it (and woke us)
    address peer;
    int fd;
    int err = 0;
    if (st->loop->can_accept()) {
      // io_uring: a kept (multishot) accept; connections it took while we were busy come first.
      fd = co_await detail::accept_awaiter(l.fd(), peer, true);
      if (fd < 0)
        err = -fd;
    } else {
      socklen_t len = static_cast<socklen_t>(address::capacity());
      fd = ::accept4(l.fd(), static_cast<sockaddr*>(peer.data()), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0)
        peer = address::from_raw(peer.data(), len);
      else
        err = errno;
    }
    if (fd >= 0) {
      st->spawn_handler(socket::adopt(fd), std::move(peer));
      if (--budget == 0) {
        budget = 64;
        co_await sleep(duration::zero());
      }
      continue;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) {
      budget = 64;
      co_await detail::readable_kept(l.fd());
    } else if (err == EINTR || err == ECANCELED) {
    } else if (per_connection_error(err)) {
      ++st->accept_errors;
    } else if (err == EBADF || err == EINVAL || err == ENOTSOCK) {
      co_return; // not listening any more
    } else {
      // EMFILE, ENFILE, ENOBUFS, ENOMEM (or anything unforeseen): the pending connection stays queued in
      // the kernel. Sleep without watching the socket — level-triggered readiness would spin — then retry.
      ++st->accept_errors;
      std::fprintf(stderr, "corio: accept on %s: %s; retrying in %.3f s\n", st->addrs[index].to_string().c_str(),
                   std::generic_category().message(err).c_str(),
                   std::chrono::duration<double>(st->opts.accept_retry_delay).count());
      co_await sleep(st->opts.accept_retry_delay);
    }
  }
}

} // namespace

void server_state::spawn_handler(socket s, address peer) {
  // Started even if cancelled first: its body unregisters it (and skips the handler then).
  auto h = spawn_lazy(*loop, run_handler(shared_from_this(), std::move(s), std::move(peer)), {}, start_policy::always);
  auto id = h.id();
  handlers.emplace(id, client{std::move(h), nullptr, false, {}});
}

void server_state::start_serving() {
  if (serving || closed)
    return;
  loop = &running_loop("server.start_serving()");
  serving = true;
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    ++accepting;
    acceptors.push_back(spawn_lazy(*loop, accept_loop(shared_from_this(), i), {}, start_policy::always));
  }
}

void server_state::close() {
  if (closed)
    return;
  closed = true;
  serving = false;
  // After the loop is gone (a server kept past corio::run) its tasks are gone too: touch nothing of it.
  bool loop_alive = loop != nullptr && event_loop::current() == loop;
  if (loop_alive)
    for (auto& a : acceptors)
      a.cancel();
  for (auto& l : listeners)
    l.close(); // wakes an accept loop still waiting on it
  for (const auto& f : unix_paths) {
    struct stat now {};
    if (::lstat(f.path.c_str(), &now) == 0 && now.st_dev == f.dev && now.st_ino == f.ino)
      ::unlink(f.path.c_str());
  }
  unix_paths.clear();
  closed_event.set();
  check_idle();
}

std::function<void()>*& handler_close_slot() noexcept {
  thread_local std::function<void()>* slot = nullptr;
  return slot;
}

void server_state::close_clients() {
  if (loop == nullptr || event_loop::current() != loop)
    return;
  // A protocol's connection is closed as asyncio does (transport.close(): what is queued goes out first);
  // a stream handler is cancelled. Collected first: closing and cancelling change nothing here now, but
  // the calls must not see the map change under them.
  std::vector<std::function<void()>> graceful;
  std::vector<join_handle<>> running;
  for (auto& [id, c] : handlers) {
    if (c.close_handler)
      graceful.push_back(c.close_handler);
    else
      running.push_back(c.task);
  }
  for (auto& close : graceful)
    close();
  for (auto& h : running)
    h.cancel();
}

void server_state::cancel_clients() {
  std::vector<join_handle<>> running;
  for (auto& [id, c] : handlers)
    running.push_back(c.task);
  for (auto& h : running)
    h.cancel();
}

void server_state::abort_clients() {
  if (loop == nullptr || event_loop::current() != loop)
    return;
  // An abort only closes the socket and wakes waiters (they run later): the map does not change here.
  for (auto& [id, c] : handlers) {
    c.reset = true;
    if (c.writer != nullptr)
      reset_connection(*c.writer);
  }
  cancel_clients(); // protocols too: connection_lost(nullptr), nothing flushed
}

} // namespace corio::detail

namespace corio {

server& server::operator=(server&& o) noexcept {
  if (this != &o) {
    server old(std::move(*this));
    s_ = std::move(o.s_);
  }
  return *this;
}

server::~server() {
  if (s_) {
    s_->close();
    s_->close_clients();
  }
}

namespace {
detail::server_state& need(const std::shared_ptr<detail::server_state>& s) {
  if (!s)
    throw invalid_state_error("corio: use of an empty server");
  return *s;
}
} // namespace

void server::start_serving() { need(s_).start_serving(); }
bool server::is_serving() const { return need(s_).serving; }
void server::close() { need(s_).close(); }
void server::close_clients() { need(s_).close_clients(); }
void server::abort_clients() { need(s_).abort_clients(); }
std::vector<address> server::addresses() const { return need(s_).addrs; }
std::size_t server::active_connections() const { return need(s_).handlers.size(); }
std::size_t server::accept_errors() const { return need(s_).accept_errors; }
std::size_t server::tls_handshake_errors() const { return need(s_).tls_errors; }
event_loop* server::get_loop() const { return need(s_).loop; }

std::uint16_t server::port() const {
  for (const address& a : need(s_).addrs)
    if (a.is_ip())
      return a.port();
  return 0;
}

task<> server::serve_forever() {
  std::shared_ptr<detail::server_state> st = s_;
  if (need(st).serving_forever || st->closed) { // asyncio raises RuntimeError for both
    std::string names;
    for (const address& a : st->addrs)
      names.append(names.empty() ? "" : ", ").append(a.to_string());
    throw invalid_state_error("corio: server.serve_forever(): the server on " + names +
                              (st->closed ? " is closed" : " is already being awaited on serve_forever()"));
  }
  st->serving_forever = true;
  struct forever_guard { // declared after `st`: destroyed first, even when the frame is destroyed unfinished
    detail::server_state& st;
    ~forever_guard() { st.serving_forever = false; }
  } guard{*st};
  st->start_serving();
  try {
    while (!st->closed)
      co_await st->closed_event.wait();
  } catch (...) {
    st->close(); // asyncio: cancelling serve_forever() closes the server
    throw;
  }
}

task<> server::wait_closed() {
  std::shared_ptr<detail::server_state> st = s_;
  need(st);
  while (!(st->closed && st->accepting == 0 && st->handlers.empty()))
    co_await st->idle_event.wait();
}

namespace {

/// Removes a stale Unix socket file (left by a crashed server); anything else at the path is an error
/// bind() will report.
void remove_stale_socket(const std::string& path) {
  struct stat st {};
  if (!path.empty() && path.front() != '\0' && ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
    ::unlink(path.c_str());
}

socket listen_socket(const address& a, const server_options& o) {
  socket s = socket::open(a.family(), socket_type::stream);
  if (a.is_ip() && o.reuse_address)
    s.set_reuse_address(true);
  if (a.family() == address_family::ipv6)
    s.set_v6_only(true); // "::" and "0.0.0.0" side by side on one port
  if (o.reuse_port)
    s.set_reuse_port(true);
  if (a.family() == address_family::unix_path)
    remove_stale_socket(a.path());
  s.bind(a);
  s.listen(o.backlog);
  return s;
}

bool family_unavailable(const std::system_error& e) {
  return e.code().value() == EAFNOSUPPORT || e.code().value() == EADDRNOTAVAIL;
}

/// A server's state before it listens: the handler and options checked.
std::shared_ptr<detail::server_state> new_server(connection_handler handler, server_options options) {
  if (!handler)
    throw std::invalid_argument("corio: start_server() without a handler");
  if (options.tls && !options.tls.is_server())
    throw std::invalid_argument("corio: start_server() needs a server tls_context (tls_context::server)");
  if (options.streams.tls)
    throw std::invalid_argument("corio: start_server(): set server_options::tls, not streams.tls");
  detail::check_stream_limit(options.streams.limit, "start_server()"); // not once per connection
  detail::check_tls_arguments({}, options.tls_handshake_timeout, "start_server()");
  auto st = std::make_shared<detail::server_state>();
  st->loop = event_loop::current(); // get_loop(); start_serving() sets it again
  st->handler = std::move(handler);
  st->opts = std::move(options);
  return st;
}

} // namespace

server start_server(connection_handler handler, socket listener, server_options options) {
  auto st = new_server(std::move(handler), std::move(options));
  if (!listener.is_open())
    throw std::invalid_argument("corio: start_server() of an empty socket");
  const std::string name = "corio: start_server(): fd " + std::to_string(listener.fd());
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(listener.fd(), SOL_SOCKET, SO_TYPE, &type, &len) < 0)
    throw std::system_error(errno, std::system_category(), name + " (not a socket?)");
  if (type != SOCK_STREAM)
    throw std::invalid_argument(name + " is not a stream socket");
  listener.listen(st->opts.backlog); // asyncio listens too: a bound socket starts listening, a listening one keeps on
  st->addrs.push_back(listener.local_address());
  st->listeners.push_back(std::move(listener));
  if (st->opts.start_serving)
    st->start_serving();
  return server(std::move(st));
}

server start_server(connection_handler handler, std::vector<address> addresses, server_options options) {
  if (addresses.empty())
    throw std::invalid_argument("corio: start_server() without an address");
  // An address listed twice (a resolver's answer, a caller's list) is bound once, as asyncio's
  // create_server does (set(infos)): binding it again would fail with EADDRINUSE.
  std::vector<address> unique;
  for (address& a : addresses)
    if (std::find(unique.begin(), unique.end(), a) == unique.end())
      unique.push_back(std::move(a));
  addresses = std::move(unique);
  auto st = new_server(std::move(handler), std::move(options));
  // Port 0 on several addresses: the first bind picks the port, the others take the same one. Another
  // process may hold it on the other family: start again with a new pick (a few times).
  for (int attempt = 0;; ++attempt) {
    st->listeners.clear();
    st->addrs.clear();
    st->unix_paths.clear();
    std::uint16_t chosen = 0;
    try {
      for (const address& requested : addresses) {
        address a = requested;
        if (a.is_ip() && a.port() == 0 && chosen != 0)
          a = a.with_port(chosen);
        socket s;
        try {
          s = listen_socket(a, st->opts);
        } catch (const std::system_error& e) {
          if (addresses.size() > 1 && family_unavailable(e))
            continue; // e.g. no IPv6 on this host: serve on the others
          throw;
        }
        address bound = s.local_address();
        if (bound.is_ip() && chosen == 0)
          chosen = bound.port();
        if (bound.family() == address_family::unix_path && !bound.path().empty() && bound.path().front() != '\0') {
          struct stat made {};
          if (::lstat(bound.path().c_str(), &made) == 0) // else already gone: nothing of ours to remove
            st->unix_paths.push_back({bound.path(), made.st_dev, made.st_ino});
        }
        st->addrs.push_back(bound);
        st->listeners.push_back(std::move(s));
      }
    } catch (const std::system_error& e) {
      bool picked = false;
      for (const address& r : addresses)
        picked = picked || (r.is_ip() && r.port() == 0);
      if (e.code().value() == EADDRINUSE && picked && chosen != 0 && attempt < 8)
        continue;
      throw;
    }
    break;
  }
  if (st->listeners.empty())
    throw std::system_error(EADDRNOTAVAIL, std::generic_category(), "corio: start_server(): no address could be bound");
  if (st->opts.start_serving)
    st->start_serving();
  return server(std::move(st));
}

task<server> start_server(connection_handler handler, std::string host, std::uint16_t port, server_options options) {
  detail::reject_nul_host(host, "start_server()"); // these before the name is looked up
  detail::check_tls_arguments({}, options.tls_handshake_timeout, "start_server()");
  std::vector<address> addresses = co_await resolve(host, port);
  co_return start_server(std::move(handler), std::move(addresses), std::move(options));
}

task<server> start_unix_server(connection_handler handler, std::string path, server_options options) {
  co_return start_server(std::move(handler), std::vector<address>{address::unix_path(path)}, std::move(options));
}

} // namespace corio
