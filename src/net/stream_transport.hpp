// stream_transport: one connected stream socket shared by a stream_reader and a stream_writer (internal).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "byte_buffer.hpp"
#include "corio/detail/io_waiter.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/event_loop.hpp"
#include "corio/io.hpp"
#include "corio/net/address.hpp"
#include "corio/net/socket.hpp"
#include "corio/net/stream_options.hpp"
#include "corio/task.hpp"
#include "corio/this_task.hpp"
#include "write_queue.hpp"

struct iovec;

namespace corio {
class event_loop;
}

namespace corio::detail {

class tls_layer;

/// Reading is pull-based: the reader's task calls recv() when its buffer cannot satisfy a request, so
/// no task or callback runs for a connection nobody reads, and unread data waits in the kernel (TCP's
/// own flow control then slows the peer down).
///
/// Writing is push-based, as asyncio's transports: write() sends at once when nothing is queued; what
/// the kernel does not take is queued (a moved-in string is queued as is, not copied) and the transport
/// itself waits for writability as an io_waiter — no task — flushing in queue order until empty. The
/// writer is "paused" from the moment the queue exceeds the high watermark until it falls to the low
/// one; drain() waits while paused.
///
/// States of the socket: open -> (closing: close() with data still queued) -> closed (fd closed, readers
/// see end of file, waiters woken). A send error (EPIPE, ECONNRESET) drops the queue and is kept in
/// write_error: later writes and drains raise it. A graceful close (close(), once flushed) first reads
/// and drops what the socket holds unread: Linux resets a connection closed with unread bytes, and the
/// reset makes the peer lose what it had not read yet of ours (see discard_unread()).
///
/// TLS (tls_layer.hpp) sits between the buffers and the socket when `tls` is set: try_fill() decrypts,
/// write()/writelines() encrypt into send_or_queue(), write_eof()/close() send close_notify first.
///
/// sendfile (stream_writer::sendfile, send_file() below) takes its place in the byte stream when it starts:
/// what was queued before goes out first, writes made while it runs go out after it. On a plaintext socket
/// the queue is flushed up to that point (`ahead_`: bytes queued before it) and then sendfile(2) runs on
/// the socket itself while later writes wait in the queue, not sent and not armed ("direct"). Over TLS and
/// on a pipe end the file is read in chunks and written through the normal path (encrypted, queued, with
/// backpressure) while later writes are held as they are in `held_` (counted in queued()) and written
/// when the sendfile ends ("held"). close() and write_eof() while it runs take effect when it ends.
///
/// A pipe end (a child process's stdin, stdout or stderr) works the same way with read()/writev()
/// instead of recv()/sendmsg(): it has no peer address (errors name `label` instead, e.g. "stdin of
/// /bin/cat (pid 42)") and no half-close (write_eof() closes it once the queue is flushed). A write to
/// a pipe whose reader is gone raises EPIPE on this stream only: SIGPIPE is held off around the write
/// (see pipe_write.hpp), since pipes have no MSG_NOSIGNAL.
/// Raises std::invalid_argument unless limit > 0 (asyncio's StreamReader(limit=0) raises ValueError):
/// with no room for a separator, every readline() would fail. `who` names the call ("open_connection()").
void check_stream_limit(std::size_t limit, const char* who);
/// Raises std::invalid_argument for TLS arguments that cannot be meant, before anything is done: a
/// server_hostname with a NUL byte (OpenSSL would send and check only what comes before it) or a negative
/// handshake timeout (asyncio's ValueError; zero means no limit). `who` names the call.
void check_tls_arguments(std::string_view server_hostname, duration handshake_timeout, const char* who);

class stream_transport final : public io_waiter {
public:
  stream_transport(socket s, address peer, const stream_options& o);
  /// Over one end of a pipe (non-blocking, close-on-exec); only its reading or its writing half is used.
  stream_transport(socket pipe_end, std::string label, const stream_options& o);
  stream_transport(const stream_transport&) = delete;
  stream_transport& operator=(const stream_transport&) = delete;
  ~stream_transport();

  // ---- reading (the reader's task) ----
  /// One recv() into the buffer: >0 bytes added, 0 at end of file (sets eof), -1 if it would block.
  /// Raises the connection's error (ECONNRESET...) as std::system_error; later calls raise it again.
  long try_fill(std::size_t hint);
  /// On io_uring (plaintext sockets), readers wait with one completion-based recv whose bytes
  /// on_recv() appends to rbuf, instead of waiting for readiness and then calling recv(2).
  [[nodiscard]] bool completion_reads() const noexcept;
  void on_recv(long res, const char* data) noexcept;
  byte_buffer rbuf;
  bool eof = false;
  // The last recv() returned less than asked: the socket is almost surely empty now, so the next fill
  // waits for readiness first instead of paying a recv() that would fail with EAGAIN.
  bool drained = false;
  int read_error = 0;
  std::size_t limit;

  // ---- writing ----
  void write(std::string_view data);
  void write(std::string&& data);
  void writelines(const std::string_view* parts, std::size_t count);
  void write_eof();
  /// Stops reading, flushes what is queued, then closes (at once if nothing is queued).
  void close();
  /// Closes now, dropping what is queued.
  void abort() noexcept;
  void raise_write_error() const;
  [[nodiscard]] std::size_t queued() const noexcept { return queued_; }
  [[nodiscard]] bool paused() const noexcept { return paused_; }
  [[nodiscard]] bool closing() const noexcept { return closing_ || closed_ || close_pending_; }
  [[nodiscard]] bool closed() const noexcept { return closed_; }
  [[nodiscard]] bool eof_written() const noexcept { return eof_requested_ || eof_pending_; }
  void set_watermarks(std::size_t high, std::size_t low);
  wait_list drain_waiters; // woken when unpaused, failed or closed
  wait_list close_waiters; // woken when closed

  socket sock;
  address peer;
  int write_error = 0;
  std::unique_ptr<tls_layer> tls; // null: plaintext
  bool is_pipe = false;
  std::string label; // a pipe's name in errors

  // ---- sendfile (send_file) ----
  /// Starts a sendfile's turn (raises as a write would, or when another sendfile runs).
  void begin_file();
  /// Whether the sendfile sends with sendfile(2) on the socket (plaintext socket) rather than in chunks.
  [[nodiscard]] bool file_direct() const noexcept { return file_direct_; }
  /// Direct: the bytes queued before the sendfile are sent. Held: the queue is at most `low` again after
  /// having gone over `high`. Also true once the stream failed or closed (the caller then raises).
  [[nodiscard]] bool file_may_go() const noexcept;
  /// Held: one chunk of the file, written as write() would.
  void file_write(std::string_view chunk);
  /// Ends the sendfile's turn: later writes go on (held ones written), a deferred close()/write_eof() runs.
  void end_file() noexcept;
  /// Raises EPIPE when the stream was closed (the error of a sendfile whose stream closed under it).
  void raise_if_closed() const;
  wait_list file_waiters; // woken by every flush while a sendfile runs, and on failure or close

  /// The socket's own bytes (TLS records when `tls` is set): sent at once if nothing is queued, else
  /// queued in order.
  void send_or_queue(std::string_view data);
  void send_or_queue(std::string&& data);

private:
  friend class tls_layer;
  friend task<std::uint64_t> send_file(std::shared_ptr<stream_transport> t, int file_fd, std::uint64_t offset,
                                       std::optional<std::uint64_t> count);
  /// recv() or read(); sendmsg(MSG_NOSIGNAL) or the SIGPIPE-safe writev(). As the syscalls: -1 and errno.
  long receive(char* p, std::size_t n) noexcept;
  long send_iov(const iovec* iov, std::size_t count) noexcept;
  [[noreturn]] void raise(int err, bool writing) const;
  [[nodiscard]] std::string who() const { return is_pipe ? label : peer.to_string(); }
  void ready() noexcept override; // writable: flush
  void check_writable(std::size_t n) const;
  /// Sends from the queue until it is empty or the kernel is full; 0 or an errno.
  int flush_queue() noexcept;
  void after_flush(int err) noexcept;
  void arm_write();
  void disarm_write() noexcept; // disarms the write interest, unless its loop is gone
  void fail(int err) noexcept;
  /// Closes the socket and wakes every waiter. `graceful` (close() once the queue is flushed): what the
  /// socket holds unread is dropped first (discard_unread), so the peer gets a FIN, not a reset.
  void finish_close(bool graceful = false) noexcept;
  void discard_unread() noexcept;
  void wake_all(wait_list& l) noexcept;
  void update_pause() noexcept;
  /// A direct sendfile runs: writes are queued, not sent, and the queue is flushed only up to ahead_.
  [[nodiscard]] bool barrier() const noexcept { return file_active_ && file_direct_; }
  /// A held sendfile runs: writes go to held_.
  [[nodiscard]] bool holding() const noexcept { return file_active_ && !file_direct_; }
  void hold(std::string_view data);

  write_queue queue_;           // recycles its strings: no allocation per queued write once warm
  std::size_t head_offset_ = 0; // bytes of queue_.front() already sent
  std::size_t queued_ = 0;      // bytes not yet sent
  std::size_t high_, low_;
  event_loop* loop_ = nullptr;    // the loop armed on, while write_armed_
  std::uint64_t loop_serial_ = 0; // its serial(): the stream may outlive it (kept past corio::run())
  bool write_armed_ = false;
  bool paused_ = false;
  bool eof_requested_ = false; // write_eof(): shut down once the queue is empty
  bool closing_ = false;
  bool closed_ = false;
  bool file_active_ = false;   // a sendfile runs (begin_file .. end_file)
  bool file_direct_ = false;   // ... with sendfile(2) on the socket
  bool file_writing_ = false;  // file_write() is writing: the deferred close/eof do not refuse it
  bool close_pending_ = false; // close() while a sendfile runs
  bool eof_pending_ = false;   // write_eof() while a sendfile runs
  std::size_t ahead_ = 0;      // direct: bytes queued before the sendfile, not yet sent
  std::string held_;           // held: bytes written while the sendfile runs
};

/// stream_writer::sendfile: see the class comment and socket_ops.hpp's sock_sendfile.
task<std::uint64_t> send_file(std::shared_ptr<stream_transport> t, int file_fd, std::uint64_t offset,
                              std::optional<std::uint64_t> count);

/// A task waiting on a transport's wait_list (drain, wait_closed).
struct transport_wait final : listed_wait_node {
  wait_list* list = nullptr;
  event_loop* loop = nullptr;
  const char* name = "";
  transport_wait(wait_list& l, const char* n) noexcept : list(&l), name(n) {}
  ~transport_wait() { list->remove(this); } // a frame destroyed while waiting (teardown)
  void detach() noexcept override { list->remove(this); }
  [[nodiscard]] const char* what() const noexcept override { return name; }
};

} // namespace corio::detail

namespace corio::detail {

/// `co_await fill_awaiter(t)`: waits until the transport has something new for its reader — readiness
/// of the socket (epoll, TLS, pipes), or one completion-based recv whose bytes land in t.rbuf (io_uring).
/// Cancellable; a cancelled recv is abandoned and its bytes, if the kernel took some, are read next.
class fill_awaiter final : public wait_node, public io_completion {
public:
  explicit fill_awaiter(stream_transport& t)
      : t_(t), ready_(readable_kept(t.sock.fd())), completion_(t.completion_reads()) {}
  fill_awaiter(const fill_awaiter&) = delete;
  ~fill_awaiter() { detach(); }

  bool await_ready() {
    if (!completion_)
      return ready_.await_ready();
    loop_ = &await_point("read");
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) {
    if (!completion_)
      return ready_.await_suspend(h);
    handle = h;
    task = loop_->current_task();
    fd_ = t_.sock.fd();
    loop_->start_recv(fd_, 256 * 1024, this, true); // kept: the transport reads only through the ring
    pending_ = true;
    event_loop::begin_wait(this);
  }
  void await_resume() const {
    if (!completion_)
      return ready_.await_resume();
    if (!got_data_ && task != nullptr) // bytes already in rbuf are not lost by a later cancellation
      task->check_cancel();
  }
  void completed(long res, const char* data) noexcept override {
    pending_ = false;
    got_data_ = res > 0;
    t_.on_recv(res, data);
    loop_->wake(this);
  }
  void detach() noexcept override {
    if (pending_) {
      pending_ = false;
      loop_->abandon_recv(fd_);
    }
  }
  [[nodiscard]] const char* what() const noexcept override { return "stream read"; }

private:
  stream_transport& t_;
  io_awaiter ready_;
  bool completion_;
  bool pending_ = false;
  bool got_data_ = false;
  int fd_ = -1;
  event_loop* loop_ = nullptr;
};

/// `co_await transport_awaiter(list, "drain()")`: waits until the transport wakes the list. Cancellable.
class transport_awaiter {
public:
  transport_awaiter(wait_list& l, const char* name) noexcept : wait_(l, name) {}
  bool await_ready() {
    wait_.loop = &await_point(wait_.name);
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    wait_.handle = h;
    wait_.task = wait_.loop->current_task();
    wait_.list->push_back(&wait_);
    event_loop::begin_wait(&wait_);
  }
  void await_resume() const {
    if (wait_.task != nullptr)
      wait_.task->check_cancel();
  }

private:
  transport_wait wait_;
};

} // namespace corio::detail
