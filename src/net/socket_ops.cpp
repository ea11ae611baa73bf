// The sock_* operations: syscall first, readiness wait on EAGAIN, closed-socket checks after each wait.
#include "corio/net/socket_ops.hpp"

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <stdexcept>
#include <string>

#include "corio/io.hpp"
#include "file_source.hpp"
#include "net_error.hpp"
#include "pipe_write.hpp"
#include "recv_awaiter.hpp"
#include "recv_datagram.hpp"
#include "ring_ops.hpp"

namespace corio {
namespace {

/// A default-constructed address names no peer: connect(2) and sendto(2) would only say EINVAL.
void check_specified(const address& a, const char* op) {
  if (a.family() == address_family::unspecified)
    throw std::invalid_argument(std::string("corio: ") + op +
                                " an unspecified address (a default-constructed corio::address)");
}

/// After a readiness wait: the socket may have been closed meanwhile (close() woke us).
void check_open(const socket& s, const char* op) {
  if (!s.is_open())
    detail::throw_net_error(EBADF, std::string(op) + ": socket closed");
}

} // namespace

task<> sock_connect(socket& s, address remote) {
  check_specified(remote, "connect to");
  check_open(s, "connect");
  // On io_uring, an IP connect goes to the ring (a Unix one stays here: its connect(2) fails with EAGAIN
  // on a full backlog, which io_uring would wait out instead).
  if (event_loop* loop = event_loop::current(); loop != nullptr && loop->can_accept() && remote.is_ip()) {
    int res = co_await detail::connect_awaiter(s.fd(), remote);
    if (res == -EBADF)
      check_open(s, "connect");
    if (res < 0)
      detail::throw_net_error(-res, "connect to", &remote);
    co_return;
  }
  int r = ::connect(s.fd(), static_cast<const sockaddr*>(remote.data()), static_cast<socklen_t>(remote.size()));
  if (r == 0)
    co_return;
  int err = errno;
  // EINPROGRESS: TCP handshake under way. EINTR: the connect continues asynchronously (POSIX). For AF_UNIX,
  // EAGAIN means the listener's backlog is full — not in progress, so it is reported.
  if (err != EINPROGRESS && err != EINTR)
    detail::throw_net_error(err, "connect to", &remote);
  co_await detail::writable_kept(s.fd());
  check_open(s, "connect");
  if (int e = s.take_error(); e != 0)
    detail::throw_net_error(e, "connect to", &remote);
}

task<accepted> sock_accept(socket& listener) {
  // On io_uring, straight to the ring: a connection an earlier, cancelled accept took comes first.
  if (event_loop* loop = event_loop::current(); loop != nullptr && loop->can_accept()) {
    for (;;) {
      check_open(listener, "accept");
      accepted a;
      int fd = co_await detail::accept_awaiter(listener.fd(), a.peer, false);
      if (fd >= 0) {
        a.conn = socket::adopt(fd);
        co_return a;
      }
      if (fd == -EBADF)
        check_open(listener, "accept");
      if (fd != -ECANCELED && fd != -EINTR && fd != -ECONNABORTED && fd != -EAGAIN)
        detail::throw_net_error(-fd, "accept");
    }
  }
  for (;;) {
    check_open(listener, "accept");
    address peer;
    socklen_t len = static_cast<socklen_t>(address::capacity());
    int fd = ::accept4(listener.fd(), static_cast<sockaddr*>(peer.data()), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      accepted a;
      a.conn = socket::adopt(fd);
      a.peer = address::from_raw(peer.data(), len);
      co_return a;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK)
      co_await detail::readable_kept(listener.fd());
    else if (err != EINTR && err != ECONNABORTED)
      detail::throw_net_error(err, "accept");
  }
}

// On io_uring, straight to the ring: no recv(2) that would fail with EAGAIN first. Stashed bytes of an
// earlier cancelled recv come first.
task<std::size_t> sock_recv(socket& s, std::span<char> buf) {
  event_loop* loop = event_loop::current();
  if (loop != nullptr && loop->can_recv() && !buf.empty() && s.is_stream()) {
    for (;;) {
      check_open(s, "recv");
      int err = 0;
      long k = loop->take_stashed(s.fd(), buf.data(), buf.size(), err);
      if (k == 0 && err != 0)
        detail::throw_net_error(err, "recv");
      if (k >= 0)
        co_return static_cast<std::size_t>(k);
      long r = co_await detail::recv_awaiter(s.fd(), buf);
      if (r >= 0)
        co_return static_cast<std::size_t>(r);
      if (r == -EBADF)
        check_open(s, "recv");
      if (!detail::recv_retryable(r))
        detail::throw_net_error(static_cast<int>(-r), "recv");
      // Nothing happened (no buffer was free, or a cancel raced): recv(2) once, then the ring again.
      auto n = ::recv(s.fd(), buf.data(), buf.size(), 0);
      if (n >= 0)
        co_return static_cast<std::size_t>(n);
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        detail::throw_net_error(errno, "recv");
    }
  }
  for (;;) {
    check_open(s, "recv");
    auto n = ::recv(s.fd(), buf.data(), buf.size(), 0);
    if (n >= 0)
      co_return static_cast<std::size_t>(n);
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK)
      co_await detail::readable_kept(s.fd());
    else if (err != EINTR)
      detail::throw_net_error(err, "recv");
  }
}

task<std::size_t> sock_send(socket& s, std::string_view data) {
  if (data.empty())
    co_return 0;
  for (;;) {
    check_open(s, "send");
    auto n = ::send(s.fd(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0)
      co_return static_cast<std::size_t>(n);
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK)
      co_await detail::writable_kept(s.fd());
    else if (err != EINTR)
      detail::throw_net_error(err, "send");
  }
}

task<> sock_sendall(socket& s, std::string_view data) {
  while (!data.empty()) {
    check_open(s, "send");
    auto n = ::send(s.fd(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK)
      co_await detail::writable_kept(s.fd());
    else if (err != EINTR)
      detail::throw_net_error(err, "send");
  }
}

task<std::uint64_t> sock_sendfile(socket& s, int file_fd, std::uint64_t offset, std::optional<std::uint64_t> count) {
  check_open(s, "sendfile");
  if (file_fd < 0)
    throw std::system_error(EBADF, std::generic_category(), "corio: sendfile: file fd " + std::to_string(file_fd));
  const std::uint64_t want = count.value_or(std::numeric_limits<std::uint64_t>::max());
  std::uint64_t sent = 0;
  bool copy = false; // sendfile(2) cannot read this fd: read and send instead
  while (sent < want) {
    check_open(s, "sendfile");
    const std::uint64_t at = offset + sent;
    if (at > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max())) {
      copy = true; // beyond what off_t holds: pread answers for it
      break;
    }
    auto off = static_cast<off_t>(at);
    // At most what one sendfile(2) moves anyway (0x7ffff000 bytes).
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(want - sent, 0x7ffff000));
    const auto r = detail::sendfile_nosignal(s.fd(), file_fd, &off, n); // never SIGPIPE
    if (r > 0) {
      sent += static_cast<std::uint64_t>(r);
      continue;
    }
    if (r == 0)
      break; // end of file
    const int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      co_await detail::writable_kept(s.fd());
    } else if (err == EINVAL || err == ESPIPE || err == ENOSYS || err == EBADF || err == EOVERFLOW ||
               err == EOPNOTSUPP) {
      copy = true; // the file's side (the socket is open): pread/read say what is wrong, if anything
      break;
    } else if (err != EINTR) {
      detail::throw_net_error(err, "sendfile");
    }
  }
  if (copy && sent < want) {
    detail::file_source src(file_fd, offset + sent);
    std::string buf(64 * 1024, '\0');
    while (sent < want) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(want - sent, buf.size()));
      const std::size_t k = co_await src.read(std::span<char>(buf.data(), n));
      if (k == 0)
        break;
      co_await sock_sendall(s, std::string_view(buf.data(), k));
      sent += k;
    }
  }
  co_return sent;
}

task<std::size_t> sock_sendto(socket& s, std::string_view data, address to) {
  check_specified(to, "sendto");
  for (;;) {
    check_open(s, "sendto");
    auto n = ::sendto(s.fd(), data.data(), data.size(), MSG_NOSIGNAL, static_cast<const sockaddr*>(to.data()),
                      static_cast<socklen_t>(to.size()));
    if (n >= 0)
      co_return static_cast<std::size_t>(n);
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK)
      co_await detail::writable_kept(s.fd());
    else if (err != EINTR)
      detail::throw_net_error(err, "sendto", &to);
  }
}

task<received_from> sock_recvfrom(socket& s, std::span<char> buf) {
  detail::datagram_info d = co_await detail::recv_datagram(s, buf);
  co_return received_from{d.size, std::move(d.from), d.full_size, d.truncated()};
}

socket listen_on(const address& local, int backlog, bool reuse_port) {
  socket s = socket::open(local.family(), socket_type::stream);
  if (local.is_ip())
    s.set_reuse_address(true);
  if (local.family() == address_family::ipv6)
    s.set_v6_only(true);
  if (reuse_port)
    s.set_reuse_port(true);
  s.bind(local);
  s.listen(backlog);
  return s;
}

} // namespace corio

namespace corio::detail {

task<datagram_info> recv_datagram(socket& s, std::span<char> buf) {
  if (s.is_stream()) {
    // sock_recvfrom on a stream socket: recvfrom(2) on TCP gives bytes and no address. Through
    // sock_recv, which serves first what the loop holds for the socket (io_uring), and without
    // MSG_TRUNC, which on TCP discards the bytes instead of copying them (tcp(7)).
    datagram_info d;
    d.size = co_await sock_recv(s, buf);
    d.full_size = d.size;
    co_return d;
  }
  for (;;) {
    check_open(s, "recvfrom");
    sockaddr_storage from{};
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    // MSG_TRUNC: the return value is the datagram's real length, even when longer than buf (Linux).
    auto n = ::recvmsg(s.fd(), &msg, MSG_TRUNC);
    if (n >= 0) {
      datagram_info d;
      const auto real = static_cast<std::size_t>(n);
      const bool cut = real > buf.size() || (msg.msg_flags & MSG_TRUNC) != 0;
      d.size = real < buf.size() ? real : buf.size();
      d.full_size = real > buf.size() ? real : cut ? buf.size() + 1 : real;
      d.from = address::from_raw(&from, msg.msg_namelen);
      co_return d;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK)
      co_await readable_kept(s.fd());
    else if (err != EINTR)
      throw_net_error(err, "recvfrom");
  }
}

task<std::size_t> file_source::read(std::span<char> buf) {
  for (;;) {
    if (seekable_) {
      const auto r = ::pread(fd_, buf.data(), buf.size(), static_cast<off_t>(pos_));
      if (r >= 0) {
        pos_ += static_cast<std::uint64_t>(r);
        co_return static_cast<std::size_t>(r);
      }
      if (errno == ESPIPE) {
        seekable_ = false; // a pipe, socket or terminal: pos_ is now what is left to skip
        continue;
      }
    } else {
      const std::size_t n = pos_ > 0 ? static_cast<std::size_t>(std::min<std::uint64_t>(pos_, buf.size())) : buf.size();
      const auto r = ::read(fd_, buf.data(), n);
      if (r > 0 && pos_ > 0) {
        pos_ -= static_cast<std::uint64_t>(r); // skipped
        continue;
      }
      if (r >= 0)
        co_return static_cast<std::size_t>(r);
    }
    const int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK)
      co_await corio::readable(fd_);
    else if (err != EINTR)
      throw std::system_error(err, std::generic_category(),
                              "corio: sendfile: read from file fd " + std::to_string(fd_));
  }
}

} // namespace corio::detail
