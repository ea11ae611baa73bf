// open_connection and friends: resolve, connect each address in turn, wrap in streams.
#include "corio/net/connection.hpp"

#include <algorithm>
#include <cerrno>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "corio/event_loop.hpp"
#include "corio/sync/event.hpp"
#include "corio/task_group.hpp"
#include "corio/this_task.hpp"

#include "../core/nul_check.hpp"
#include "corio/net/resolve.hpp"
#include "corio/net/socket_ops.hpp"
#include "net_error.hpp"
#include "stream_transport.hpp"

namespace corio {

// g++ 12 copies a braced stream_options temporary bitwise in a co_await expression (HAZARDS.md 2):
// local_address survives that only while an address is trivially copyable.
static_assert(std::is_trivially_copyable_v<address>);

connection make_streams(socket s, address peer, stream_options o) {
  if (peer.family() == address_family::unspecified) {
    try {
      peer = s.peer_address();
    } catch (const std::system_error&) {
      // The peer is gone already (ENOTCONN after a reset): asyncio's peername None. The stream's first
      // read or write reports what happened.
    }
  }
  bool ip = peer.is_ip();
  if (!ip && peer.family() == address_family::unspecified) {
    try {
      ip = s.local_address().is_ip();
    } catch (const std::system_error&) {
    }
  }
  if (o.no_delay && ip)
    s.set_no_delay(true);
  auto t = std::make_shared<detail::stream_transport>(std::move(s), std::move(peer), o);
  return connection{stream_reader(t), stream_writer(t)};
}

namespace {

/// The TLS handshake of a new client connection (when options.tls is set); `host`: the name asked for.
task<connection> maybe_tls(connection c, stream_options o, std::string host) {
  if (o.tls) {
    std::string name = o.server_hostname.empty() ? std::move(host) : o.server_hostname.str();
    co_await c.writer.start_tls(o.tls, std::move(name), o.tls_handshake_timeout);
  }
  co_return std::move(c);
}

/// A stream socket to connect to `remote` with, bound to `local` first if set (socket::bind raises
/// std::system_error naming the local address; the socket is closed then).
socket connecting_socket(const address& remote, const std::optional<address>& local) {
  socket s = socket::open(remote.family(), socket_type::stream);
  if (local)
    s.bind(*local);
  return s;
}

} // namespace

task<connection> open_connection(address remote, stream_options o) {
  detail::check_stream_limit(o.limit, "open_connection()");
  detail::check_tls_arguments(o.server_hostname.str(), o.tls_handshake_timeout, "open_connection()");
  if (o.local_address) {
    std::vector<address> one{remote};
    detail::keep_local_family(one, o.local_address, "open_connection");
  }
  socket s = connecting_socket(remote, o.local_address);
  co_await sock_connect(s, remote);
  std::string host = remote.ip();
  connection c = make_streams(std::move(s), std::move(remote), o);
  connection done = co_await maybe_tls(std::move(c), o, std::move(host)); // named: g++ 12 and temporaries
  co_return done;
}

namespace {

/// asyncio's _interleave_addrinfos: the families take turns, the first family's first `first_count`
/// addresses first.
std::vector<address> interleave(std::vector<address> in, std::size_t first_count) {
  std::vector<std::vector<address>> by_family;
  for (address& a : in) {
    auto it = std::find_if(by_family.begin(), by_family.end(),
                           [&](const std::vector<address>& f) { return f.front().family() == a.family(); });
    if (it == by_family.end())
      by_family.emplace_back().push_back(std::move(a));
    else
      it->push_back(std::move(a));
  }
  std::vector<address> out;
  std::vector<std::size_t> next(by_family.size(), 0);
  if (!by_family.empty())
    for (; next[0] + 1 < first_count && next[0] < by_family[0].size(); ++next[0])
      out.push_back(std::move(by_family[0][next[0]]));
  for (bool any = true; any;) {
    any = false;
    for (std::size_t f = 0; f < by_family.size(); ++f)
      if (next[f] < by_family[f].size()) {
        out.push_back(std::move(by_family[f][next[f]++]));
        any = true;
      }
  }
  return out;
}

/// One Happy Eyeballs race, shared by its attempts (each a task of a task_group) and the task that
/// staggers them. Every wait for "something changed" is on `changed`.
struct race {
  std::optional<address> local; // stream_options::local_address
  std::optional<std::pair<socket, address>> winner;
  std::vector<std::exception_ptr> errors; // per candidate, in order: set once it failed
  std::size_t failures = 0;
  bool delay_passed = false;
  event changed;
};

task<> attempt(std::shared_ptr<race> r, address a, std::size_t i) {
  std::exception_ptr error;
  try {
    socket s = connecting_socket(a, r->local);
    co_await sock_connect(s, a);
    if (!r->winner) // a later success closes its socket: one connection is enough
      r->winner.emplace(std::move(s), std::move(a));
  } catch (const std::system_error&) {
    error = std::current_exception(); // cancellation is not caught: the group ignores it
  }
  if (error) {
    r->errors[i] = error;
    ++r->failures;
  }
  r->changed.set();
}

/// Starts the attempts, the next one when the last failed or `delay` (if any: without one, the addresses
/// are tried one after the other) passed; returns once one connected (the others cancelled) or all failed.
task<> stagger(std::shared_ptr<race> r, task_group& group, std::vector<address> candidates,
               std::optional<duration> delay) {
  struct cancel_on_exit { // the ones still connecting, however this ends; a finished one ignores it
    std::vector<join_handle<>> attempts;
    ~cancel_on_exit() {
      for (join_handle<>& h : attempts)
        h.cancel();
    }
  } started;
  std::vector<join_handle<>>& attempts = started.attempts;
  event_loop& loop = *event_loop::current();
  for (std::size_t i = 0; i < candidates.size() && !r->winner; ++i) {
    // Cancelled before it ran (the caller was cancelled in its first iteration): no attempt may start,
    // as the group has cancelled its children already.
    detail::running_task("open_connection()").check_cancel();
    attempts.push_back(group.spawn(attempt(r, candidates[i], i), "open_connection attempt"));
    if (i + 1 == candidates.size())
      break;
    r->delay_passed = false;
    struct cancel_on_exit { // also when this task is cancelled while it waits
      timer_handle h;
      ~cancel_on_exit() { h.cancel(); }
    } timer{};
    if (delay)
      timer.h = loop.call_later(*delay, [r] {
        r->delay_passed = true;
        r->changed.set();
      });
    while (!r->winner && !r->errors[i] && !r->delay_passed) {
      r->changed.clear();
      co_await r->changed.wait();
    }
  }
  while (!r->winner && r->failures < attempts.size()) {
    r->changed.clear();
    co_await r->changed.wait();
  }
}

task<connection> connect_candidates(std::vector<address> candidates, stream_options o, std::string host) {
  if (candidates.empty())
    throw std::invalid_argument("corio: open_connection() with no address to connect to");
  detail::check_stream_limit(o.limit, "open_connection()");
  detail::check_tls_arguments(o.server_hostname.str(), o.tls_handshake_timeout, "open_connection()");
  detail::keep_local_family(candidates, o.local_address, "open_connection");
  const std::size_t turns = o.interleave.value_or(o.happy_eyeballs_delay ? 1 : 0);
  if (turns > 0)
    candidates = interleave(std::move(candidates), turns);
  auto r = std::make_shared<race>();
  r->local = o.local_address;
  r->errors.resize(candidates.size());
  task_group group;
  group.spawn(stagger(r, group, std::move(candidates), o.happy_eyeballs_delay), "open_connection");
  co_await group.wait(); // cancelling the caller cancels every attempt, and waits for them
  std::optional<std::pair<socket, address>> won = std::move(r->winner);
  if (!won) // every candidate was tried and failed: the first one's error
    std::rethrow_exception(r->errors.front());
  // A failed TLS handshake does not move on: the next address would present the same certificate.
  if (host.empty())
    host = won->second.ip();
  connection c = make_streams(std::move(won->first), std::move(won->second), o);
  connection done = co_await maybe_tls(std::move(c), o, std::move(host)); // named: g++ 12 and temporaries
  co_return done;
}

} // namespace

task<connection> open_connection(std::string host, std::uint16_t port, stream_options o) {
  // Before the name is looked up:
  detail::check_stream_limit(o.limit, "open_connection()");
  detail::reject_nul_host(host, "open_connection()");
  detail::check_tls_arguments(o.server_hostname.str(), o.tls_handshake_timeout, "open_connection()");
  std::vector<address> candidates = co_await resolve(host, port);
  connection c = co_await connect_candidates(std::move(candidates), o, std::move(host));
  co_return c;
}

task<connection> open_connection(std::vector<address> candidates, stream_options o) {
  return connect_candidates(std::move(candidates), o, std::string());
}

task<connection> open_unix_connection(std::string path, stream_options o) {
  co_return co_await open_connection(address::unix_path(path), o);
}

} // namespace corio
