// The low-level socket API (asyncio's loop.sock_connect / sock_accept / sock_recv / sock_sendall ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "corio/io.hpp"
#include "corio/net/address.hpp"
#include "corio/net/socket.hpp"
#include "corio/task.hpp"

namespace corio {

/// What sock_accept() returns: the connection (non-blocking, close-on-exec) and who it is from.
struct accepted {
  socket conn;
  address peer;
};

/// One datagram's size and sender (sock_recvfrom). Binds as `auto [n, from] = co_await sock_recvfrom(s, buf)`.
struct received_from {
  std::size_t size = 0; // bytes copied into the buffer (at most its size)
  address from;
  std::size_t full_size = 0; // the datagram's real length: > size when it was truncated
  bool truncated = false;    // longer than the buffer: only its first `size` bytes arrived, the rest is gone

  template <std::size_t I> auto& get() & {
    static_assert(I < 2);
    if constexpr (I == 0)
      return size;
    else
      return from;
  }
  template <std::size_t I> const auto& get() const& {
    static_assert(I < 2);
    if constexpr (I == 0)
      return size;
    else
      return from;
  }
  template <std::size_t I> auto&& get() && {
    static_assert(I < 2);
    if constexpr (I == 0)
      return std::move(size);
    else
      return std::move(from);
  }
};

/// Suspends until the socket is readable, as corio::readable(fd), but cheaper: the loop keeps the
/// socket's registration between waits (a socket tells the loop when it closes). Ready at once when the
/// loop holds bytes of the socket (see sock_recv).
[[nodiscard]] inline detail::io_awaiter readable(const socket& s) noexcept { return detail::readable_kept(s.fd()); }
/// Suspends until the socket is writable; see readable(const socket&).
[[nodiscard]] inline detail::io_awaiter writable(const socket& s) noexcept { return detail::writable_kept(s.fd()); }

// Each operation tries the syscall first and waits for readiness only when it would block (EAGAIN), so
// a ready socket costs no trip through the loop. They are cancellable at every wait, and a cancelled one
// has transferred nothing (data is only moved by the syscall that follows readiness; on io_uring,
// sock_recv's recv is cancelled in the kernel and waited for, and bytes the kernel took before the
// cancel are returned, the cancellation then raised at the task's next await). One reading and
// one writing task per socket at a time. The socket and the buffers are borrowed: keep them alive until
// the operation finishes (they are, with `co_await sock_recv(s, buf)`). Closing the socket meanwhile
// makes the operation raise std::system_error(EBADF). Other failures raise std::system_error naming the
// operation and address, e.g. "corio: connect to 127.0.0.1:9: Connection refused".

/// Connects `s` to `remote` (non-blocking connect; completion read from SO_ERROR). A default-constructed
/// (unspecified) address raises std::invalid_argument.
[[nodiscard]] task<> sock_connect(socket& s, address remote);
/// Accepts one connection on a listening socket. ECONNABORTED (the peer gave up while queued) and EINTR
/// are retried; other errors (EMFILE...) raise.
[[nodiscard]] task<accepted> sock_accept(socket& listener);
/// Receives up to buf.size() bytes; 0 means end of file (or an empty buf). On a datagram socket: one
/// datagram per call, cut to buf.size() as recv(2) cuts it (sock_recvfrom / datagram_endpoint say so).
/// On io_uring a stream socket is read through the loop's buffer ring; other sockets with recv(2). Bytes
/// the loop holds for the socket (taken from the kernel by a recv abandoned mid-wait) come first.
[[nodiscard]] task<std::size_t> sock_recv(socket& s, std::span<char> buf);
/// Sends some of `data` (at least one byte unless empty); returns how much. EPIPE/ECONNRESET raise
/// (never SIGPIPE).
[[nodiscard]] task<std::size_t> sock_send(socket& s, std::string_view data);
/// Sends all of `data`, waiting for room as needed. On failure or cancellation, an unknown prefix has
/// been sent (as asyncio's sock_sendall).
[[nodiscard]] task<> sock_sendall(socket& s, std::string_view data);
/// Sends `count` bytes of the file open as `file_fd` (to its end when nullopt), starting at `offset`, with
/// sendfile(2) — zero-copy, as asyncio's loop.sock_sendfile — waiting for room as sock_sendall does.
/// Returns the bytes sent: fewer than `count` when the file ends first; 0 for a count of 0 (unlike
/// asyncio, where 0 means "to the end"). The file's position is neither used nor moved. When sendfile(2)
/// cannot read the fd (a pipe, a socket, an fd not open for reading: EINVAL, ESPIPE, ENOSYS, EBADF...) the
/// bytes are read and sent in 64 KiB chunks instead (asyncio's fallback=True); on an unseekable fd `offset`
/// bytes are read and skipped. A read error raises std::system_error naming the file fd; a send error
/// (EPIPE, ECONNRESET) raises as sock_sendall's. Reading the file may block the loop briefly (a cold page
/// cache; a blocking pipe whose writer is slow: pass a non-blocking one, which is waited for). Cancellable
/// at every wait; on failure or cancellation an unknown prefix of the range has been sent.
[[nodiscard]] task<std::uint64_t> sock_sendfile(socket& s, int file_fd, std::uint64_t offset = 0,
                                                std::optional<std::uint64_t> count = std::nullopt);
/// Sends one datagram to `to`; returns its size. A default-constructed address raises std::invalid_argument.
[[nodiscard]] task<std::size_t> sock_sendto(socket& s, std::string_view data, address to);
/// Receives one datagram and its sender. A datagram longer than buf is truncated to buf.size(), as
/// recvfrom(2) does, and says so: `truncated`, with `full_size` its real length (asyncio's sock_recvfrom
/// cuts it silently). Never through io_uring's buffer ring, on either backend. On a stream socket (TCP):
/// as sock_recv (bytes the loop holds come first; `from` is unspecified, as recvfrom(2) gives none).
[[nodiscard]] task<received_from> sock_recvfrom(socket& s, std::span<char> buf);

/// A socket bound to `local` and listening (SO_REUSEADDR on IP; IPV6_V6ONLY on IPv6 so that "::" and
/// "0.0.0.0" can both be bound to one port).
[[nodiscard]] socket listen_on(const address& local, int backlog = 1024, bool reuse_port = false);

} // namespace corio

// The tuple protocol behind `auto [n, from] = ...` (two elements, as before full_size and truncated).
namespace std {
template <> struct tuple_size<corio::received_from> : integral_constant<size_t, 2> {};
template <> struct tuple_element<0, corio::received_from> { using type = size_t; };
template <> struct tuple_element<1, corio::received_from> { using type = corio::address; };
} // namespace std
