// The I/O backend interface: what the loop core needs from epoll, io_uring, ... (internal).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "corio/detail/io_waiter.hpp"
#include "corio/event_loop.hpp"

namespace corio::detail {

class file_job_waiter;

/// A whole-file operation the io_uring backend runs without a thread: open, then read to the end or
/// write everything, then close, one submission per step. The backend owns the job from start_file_job()
/// until its last step completes, so the path, the data and the read buffer outlive a caller that stops
/// waiting (abandon_file_job): a write then finishes anyway, a read stops at its next step; either way
/// the file is closed and the job freed.
struct file_job {
  enum class kind : unsigned char { read, write, append } what = kind::read;
  std::string path;
  std::string data; // read: what was read so far; write/append: what to write
  std::size_t done = 0;
  int fd = -1;
  int err = 0;                       // the first failure (errno)
  const char* step = nullptr;        // and which step failed: "cannot open", "cannot read", ...
  bool opened = false;               // the open step is done
  bool blocking_open = false;        // a write's second open, without O_NONBLOCK (io_uring: open_job())
  bool closing = false;              // the close step is in flight
  file_job_waiter* target = nullptr; // null once abandoned
  file_job* prev = nullptr;          // the backend's list of jobs in flight
  file_job* next = nullptr;
};

/// Told when a file_job has finished (from poll(), on the loop's thread).
class file_job_waiter {
public:
  virtual void file_done(file_job& job) noexcept = 0;

protected:
  ~file_job_waiter() = default;
};

/// A readiness backend. Single-threaded except wake(), which any thread may call.
/// Interface kept narrow so a completion-based backend (io_uring) can implement it too: arm() is "tell
/// me once", poll() delivers, disarm() withdraws an arm that has not been delivered.
class backend {
public:
  virtual ~backend() = default;

  /// Delivers `w->ready()` once, from a later poll(), when `fd` is ready in direction `d` (readable also
  /// on EOF, hang-up or error, so the reader sees them). Throws std::system_error naming the fd if it
  /// cannot be watched (EBADF, or EPERM for regular files), and corio::loop_error if another waiter is
  /// already armed for the same fd and direction.
  ///
  /// `kept`: the caller owns the fd and calls forget() before closing it (corio::socket, the stream
  /// transport), so what the backend learnt about the fd stays true and can be reused without a system
  /// call. An arm that is not kept (a user's readable(fd)) re-registers with the kernel every time, so
  /// an fd closed and its number reused without forget() is still watched correctly.
  virtual void arm(int fd, io_dir d, io_waiter* w, bool kept) = 0;
  /// Withdraws an undelivered arm (the waiter was cancelled). No-op if nothing is armed.
  virtual void disarm(int fd, io_dir d) noexcept = 0;
  /// `fd` is about to be closed: waiters still armed on it are delivered (ready() — they must notice the
  /// close themselves) and everything known about it is dropped, so that a new fd reusing the number
  /// starts clean. No-op for an fd the backend never saw.
  virtual void forget(int fd) noexcept = 0;
  /// Waits up to `timeout` (negative: no limit; zero: do not block) and delivers what is ready.
  /// Returns the number of waiters delivered.
  virtual int poll(std::chrono::nanoseconds timeout) = 0;
  /// Makes a concurrent or later poll() return soon. Thread-safe, async-signal-safe.
  virtual void wake() noexcept = 0;
  /// Number of arms not yet delivered (for leak checks).
  [[nodiscard]] virtual std::size_t armed() const noexcept = 0;

  // ---- completion-based receiving (io_uring; epoll says no) ----
  // One recv per fd at a time, into the backend's buffers; the bytes are copied out in completed(). A
  // caller that stops waiting abandons the recv: what the kernel already took for it is not lost but
  // stashed for the fd, and take_stashed() hands it out first, so bytes are never lost or reordered.

  [[nodiscard]] virtual bool can_recv() const noexcept { return false; }
  /// Starts a recv of at most `max` bytes (capped at the buffer size); c->completed() runs from a later
  /// poll(). If a recv of that fd is still in flight (abandoned, or kept), c adopts it instead of
  /// starting another. `keep`: the recv may stay in flight after it delivered (a multishot recv, where
  /// the kernel has it and CORIO_URING_MULTISHOT_RECV=1 asks for it), and bytes arriving while nobody waits are stashed
  /// for the next reader; only for an fd read solely through recv() and take_stashed() (a stream), never for one a
  /// caller might recv(2) itself. end_recv() stops it.
  virtual void recv(int fd, std::size_t max, io_completion* c, bool keep = false);
  /// Whether recv(..., keep = true) keeps (false before the first, on a kernel that refused it).
  [[nodiscard]] virtual bool keeps_recv() const noexcept { return false; }
  /// c stops waiting: completed() will not be called for it.
  virtual void abandon_recv(int /*fd*/) noexcept {}
  /// The reader waiting on fd's recv was cancelled but keeps waiting: the recv is cancelled in the kernel,
  /// and its completion still goes to the reader, with the bytes the kernel took first or -ECANCELED. False
  /// when the cancel could not be queued (abandon instead).
  virtual bool cancel_recv(int /*fd*/) noexcept { return false; }
  /// Whether take_stashed(fd) has something at once (bytes, or the end of the stream): fd reads without
  /// blocking, whatever the kernel says.
  [[nodiscard]] virtual bool has_stashed(int /*fd*/) const noexcept { return false; }
  /// Before fd leaves the loop's hands (socket::release): a recv of fd still in flight is cancelled and
  /// waited for (its bytes go to its reader, or to the stash). Returns the bytes then stashed. Raises what
  /// delivering other completions meanwhile may raise (as poll()).
  virtual std::size_t settle_recv(int /*fd*/) { return 0; }
  /// A kept recv of fd, if one is in flight, ends soon (its last bytes are stashed, or go to a reader
  /// that adopts it): before the fd is read some other way.
  virtual void end_recv(int /*fd*/) noexcept {}
  /// Copies stashed bytes of fd into [p, p+n): returns how many; 0 when an abandoned recv ended the
  /// stream (err: 0 at end of file, else the error); -1 when nothing is stashed; -2 when nothing is but
  /// a recv (abandoned or kept) is still in flight (do not recv(2) now: bytes could overtake its; start_recv()
  /// adopts it).
  virtual long take_stashed(int fd, char* p, std::size_t n, int& err) noexcept;

  // ---- completion-based accept and connect (io_uring; epoll says no) ----
  // One accept and one connect per fd at a time. A connection an abandoned accept got anyway is not
  // closed but kept for the listener (in the order accepted), and take_accepted() hands it out first;
  // forget() closes those still kept.

  [[nodiscard]] virtual bool can_accept() const noexcept { return false; }
  /// Starts an accept on the listening socket `fd`; c->finished() runs from a later poll(). If an
  /// accept of that fd is still in flight (abandoned, or kept), c adopts it. `keep`: the accept may stay
  /// in flight after it delivered (a multishot accept, where the kernel has it), and connections that
  /// arrive while nobody waits are kept (up to a bound) for the next accept; for a listener accepted
  /// from only through accept() and take_accepted() (a server's accept loop).
  virtual void accept(int fd, net_completion* c, bool keep = false);
  /// c stops waiting: finished() will not be called for it.
  virtual void abandon_accept(int /*fd*/) noexcept {}
  /// A connection an accept took while nobody waited: its fd (the caller owns it), the peer's address
  /// copied into [addr, addr+len) (len: in, the room; out, the size, 0 if unknown); -1 if none is kept.
  virtual int take_accepted(int /*fd*/, void* /*addr*/, unsigned& /*len*/) noexcept { return -1; }
  /// Starts connecting socket `fd` to the address [addr, addr+len) (copied); c->finished() runs from a
  /// later poll() with 0 or -errno.
  virtual void connect(int fd, const void* addr, unsigned len, net_completion* c);
  /// c stops waiting: finished() will not be called for it; the connect is cancelled.
  virtual void abandon_connect(int /*fd*/) noexcept {}

  // ---- whole-file jobs (io_uring; epoll says no and files go to the thread pool) ----
  [[nodiscard]] virtual bool can_file_io() const noexcept { return false; }
  /// Takes ownership of `job` (allocated with new) and starts it; job->target->file_done() runs when
  /// it ends, after which the backend deletes it.
  virtual void start_file_job(file_job* job);
  /// The waiter goes away: file_done() will not be called; the job finishes on its own.
  virtual void abandon_file_job(file_job* /*job*/) noexcept {}
};

/// The epoll backend (src/backend/epoll.cpp).
std::unique_ptr<backend> make_epoll_backend();
/// The io_uring backend (src/backend/uring.cpp). Throws std::system_error when io_uring cannot be used
/// here (an old kernel, a seccomp filter, io_uring_disabled, or corio built without liburing).
std::unique_ptr<backend> make_uring_backend();

/// What a loop uses when neither its options nor CORIO_BACKEND say.
inline constexpr backend_kind default_backend = backend_kind::automatic;
/// CORIO_BACKEND (epoll, io_uring or auto; unset: default_backend). Throws loop_error for anything else.
backend_kind backend_from_env();
/// Makes the backend asked for (from_env: backend_from_env()). `automatic` tries io_uring and falls
/// back to epoll with one line on stderr per process; an explicit io_uring that cannot be had throws
/// loop_error saying why. `chosen` is set to epoll or io_uring.
std::unique_ptr<backend> make_backend(backend_kind want, backend_kind& chosen);

} // namespace corio::detail
