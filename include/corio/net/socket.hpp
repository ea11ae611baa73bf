// corio::socket: a move-only, non-blocking socket descriptor that closes itself.
#pragma once

#include <utility>

#include "corio/net/address.hpp"

namespace corio {

enum class socket_type : unsigned char { stream, datagram };

/// Owns one socket fd, opened non-blocking and close-on-exec. Closing it (close() or the destructor)
/// first tells the running event loop (event_loop::forget_fd), so tasks still waiting on it wake up —
/// their operation raises std::system_error(EBADF, "... socket closed") — and a later fd with the same
/// number is watched correctly. Errors are std::system_error naming the operation and the address.
///
/// Asynchronous operations on it are the sock_* functions (socket_ops.hpp): one reader and one writer
/// task at a time, as with corio::readable / writable.
class socket {
public:
  socket() noexcept = default;
  /// Takes ownership of `fd` (made non-blocking and close-on-exec here).
  explicit socket(int fd);
  socket(socket&& o) noexcept : fd_(std::exchange(o.fd_, -1)), stream_(std::exchange(o.stream_, -1)) {}
  socket& operator=(socket&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = std::exchange(o.fd_, -1);
      stream_ = std::exchange(o.stream_, -1);
    }
    return *this;
  }
  socket(const socket&) = delete;
  socket& operator=(const socket&) = delete;
  ~socket() { close(); }

  /// Takes ownership of an fd that is already non-blocking and close-on-exec (accept4, socket with flags).
  [[nodiscard]] static socket adopt(int fd) noexcept {
    socket s;
    s.fd_ = fd;
    return s;
  }
  /// A new socket of the address's family (TCP for stream, UDP for datagram on IP families).
  [[nodiscard]] static socket open(address_family family, socket_type type);

  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  /// Gives up ownership: the caller closes the fd. The running loop forgets what it kept about the fd.
  /// No received byte is lost: on io_uring a recv still in flight is cancelled and waited for first,
  /// and should the loop then hold bytes it took from the kernel that nobody has read (a recv abandoned
  /// mid-wait, e.g. its frame destroyed), release() raises invalid_state_error saying how many and keeps
  /// the socket: read them (sock_recv returns them at once), then release.
  [[nodiscard]] int release();
  /// Closes now (no-op if not open). Never throws; close errors other than EBADF are ignored, as POSIX
  /// says the fd is gone anyway.
  void close() noexcept;

  void bind(const address& local);
  void listen(int backlog = 1024);
  /// Half-close: no more sends (the peer reads end of file); receiving still works.
  void shutdown_write();
  void shutdown_read();

  void set_reuse_address(bool on);
  void set_reuse_port(bool on);
  void set_no_delay(bool on);   // TCP_NODELAY
  void set_keep_alive(bool on); // SO_KEEPALIVE
  void set_v6_only(bool on);    // IPV6_V6ONLY
  void set_broadcast(bool on);  // SO_BROADCAST
  void set_linger_reset();      // SO_LINGER {1, 0}: close() sends RST instead of FIN (tests, aborts)
  void set_send_buffer(int bytes);
  void set_receive_buffer(int bytes);
  /// Any integer option (setsockopt level/name/value).
  void set_option(int level, int name, int value);
  [[nodiscard]] int get_option(int level, int name) const;

  [[nodiscard]] address local_address() const;
  /// The connected peer's address; std::system_error (ENOTCONN) if there is none.
  [[nodiscard]] address peer_address() const;
  /// The pending error (SO_ERROR), cleared by reading it; 0 if none.
  [[nodiscard]] int take_error() const noexcept;
  /// True for a byte-stream socket (SOCK_STREAM): known when made by open(), else asked once
  /// (getsockopt SO_TYPE) and kept. sock_recv() reads only these through io_uring's buffer ring, whose
  /// 16 KiB buffers and stash would cut or split datagrams.
  [[nodiscard]] bool is_stream() const noexcept;

private:
  int fd_ = -1;
  mutable signed char stream_ = -1; // -1: not known yet; 0: not a stream socket; 1: SOCK_STREAM
};

} // namespace corio
