// corio::socket: fd ownership and the synchronous socket calls.
#include "corio/net/socket.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "net_error.hpp"

namespace corio {
namespace {

int to_domain(address_family f) {
  switch (f) {
  case address_family::ipv4:
    return AF_INET;
  case address_family::ipv6:
    return AF_INET6;
  case address_family::unix_path:
    return AF_UNIX;
  default:
    throw std::system_error(EAFNOSUPPORT, std::generic_category(), "corio: socket of an unspecified family");
  }
}

} // namespace

socket::socket(int fd) : fd_(fd) {
  if (fd < 0)
    throw std::system_error(EBADF, std::generic_category(), "corio: socket(fd) of a negative fd");
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || ::fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    fd_ = -1; // not ours after all: the caller keeps it
    detail::throw_net_error(errno, "socket(fd): fcntl");
  }
}

socket socket::open(address_family family, socket_type type) {
  int domain = to_domain(family);
  int kind = (type == socket_type::stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
  int fd = ::socket(domain, kind, 0);
  if (fd < 0)
    detail::throw_net_error(errno, "socket()");
  socket s = adopt(fd);
  s.stream_ = type == socket_type::stream ? 1 : 0;
  return s;
}

bool socket::is_stream() const noexcept {
  if (stream_ < 0 && fd_ >= 0) {
    int type = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(fd_, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
      return false; // not a socket (a pipe...): read it with recv(2)/read(2), not the ring; ask again later
    stream_ = type == SOCK_STREAM ? 1 : 0;
  }
  return stream_ == 1;
}

int socket::release() {
  if (fd_ >= 0) {
    // The new owner will not tell the loop when it closes the fd: the loop forgets it now, unless it
    // holds bytes of it that would be lost (on io_uring, taken from the kernel by a recv nobody waits for).
    if (event_loop* loop = event_loop::current(); loop != nullptr) {
      if (std::size_t held = loop->release_fd(fd_); held > 0)
        throw invalid_state_error("corio: socket::release() of fd " + std::to_string(fd_) + ": the event loop holds " +
                                  std::to_string(held) + (held == 1 ? " byte" : " bytes") +
                                  " received on it and not yet read; read them first (sock_recv returns them at once)");
    }
  }
  stream_ = -1;
  return std::exchange(fd_, -1);
}

void socket::close() noexcept {
  if (fd_ < 0)
    return;
  if (event_loop* loop = event_loop::current())
    loop->forget_fd(fd_);
  ::close(fd_); // Linux frees the fd even when close() reports EINTR or EIO: never retry
  fd_ = -1;
  stream_ = -1;
}

void socket::bind(const address& local) {
  if (::bind(fd_, static_cast<const sockaddr*>(local.data()), static_cast<socklen_t>(local.size())) < 0)
    detail::throw_net_error(errno, "bind to", &local);
}

void socket::listen(int backlog) {
  if (::listen(fd_, backlog) < 0)
    detail::throw_net_error(errno, "listen");
}

void socket::shutdown_write() {
  if (::shutdown(fd_, SHUT_WR) < 0)
    detail::throw_net_error(errno, "shutdown(write)");
}

void socket::shutdown_read() {
  if (::shutdown(fd_, SHUT_RD) < 0)
    detail::throw_net_error(errno, "shutdown(read)");
}

void socket::set_option(int level, int name, int value) {
  if (::setsockopt(fd_, level, name, &value, sizeof value) < 0)
    detail::throw_net_error(errno, "setsockopt");
}

int socket::get_option(int level, int name) const {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd_, level, name, &value, &len) < 0)
    detail::throw_net_error(errno, "getsockopt");
  return value;
}

void socket::set_reuse_address(bool on) { set_option(SOL_SOCKET, SO_REUSEADDR, on ? 1 : 0); }
void socket::set_reuse_port(bool on) { set_option(SOL_SOCKET, SO_REUSEPORT, on ? 1 : 0); }
void socket::set_no_delay(bool on) { set_option(IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0); }
void socket::set_keep_alive(bool on) { set_option(SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0); }
void socket::set_v6_only(bool on) { set_option(IPPROTO_IPV6, IPV6_V6ONLY, on ? 1 : 0); }
void socket::set_broadcast(bool on) { set_option(SOL_SOCKET, SO_BROADCAST, on ? 1 : 0); }
void socket::set_send_buffer(int bytes) { set_option(SOL_SOCKET, SO_SNDBUF, bytes); }
void socket::set_receive_buffer(int bytes) { set_option(SOL_SOCKET, SO_RCVBUF, bytes); }

void socket::set_linger_reset() {
  linger l{};
  l.l_onoff = 1;
  l.l_linger = 0;
  if (::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l) < 0)
    detail::throw_net_error(errno, "setsockopt(SO_LINGER)");
}

address socket::local_address() const {
  address a;
  socklen_t len = static_cast<socklen_t>(address::capacity());
  if (::getsockname(fd_, static_cast<sockaddr*>(a.data()), &len) < 0)
    detail::throw_net_error(errno, "getsockname");
  return address::from_raw(a.data(), len);
}

address socket::peer_address() const {
  address a;
  socklen_t len = static_cast<socklen_t>(address::capacity());
  if (::getpeername(fd_, static_cast<sockaddr*>(a.data()), &len) < 0)
    detail::throw_net_error(errno, "getpeername");
  return address::from_raw(a.data(), len);
}

int socket::take_error() const noexcept {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    return errno;
  return err;
}

} // namespace corio
