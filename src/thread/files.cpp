#include "corio/files.hpp"

#include "../backend/backend.hpp"
#include "../core/nul_check.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/event_loop.hpp"
#include "corio/this_task.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <system_error>

namespace corio::detail {

namespace {

[[noreturn]] void fail(int err, const char* what, const std::string& path) {
  std::string message("corio: ");
  message.append(what).append(" \"").append(path).append("\"");
  throw std::system_error(err, std::generic_category(), message);
}

bool stopped(const std::atomic<bool>* stop) noexcept {
  return stop != nullptr && stop->load(std::memory_order_acquire);
}

bool is_fifo(const std::string& path) noexcept {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

constexpr int fifo_poll_ms = 10; // how often a FIFO's wait for its other end looks at `stop`

/// Closes the fd on every path; a close() error is reported by close_checked() only.
///
/// Opens with O_NONBLOCK, for a FIFO's blocking open waits for its other end, out of reach of a
/// cancel (and of the loop's close, which joins the pool): a FIFO opened for writing with no reader yet
/// (ENXIO) is tried again every 10 ms until one comes or `stop` is set (fd() is then -1: nothing was
/// opened). A FIFO read keeps O_NONBLOCK (read_file_blocking() polls it); anything else is blocking
/// again once open. A regular file under a lease or mandatory lock (EWOULDBLOCK) is opened blocking.
class file {
public:
  file(const std::string& path, int flags, const char* what, const std::atomic<bool>* stop) : path_(path) {
    int nonblock = O_NONBLOCK;
    for (;;) {
      fd_ = ::open(path.c_str(), flags | O_CLOEXEC | nonblock, 0666);
      if (fd_ >= 0)
        break;
      if (errno == EINTR)
        continue;
      if (errno == EWOULDBLOCK && nonblock != 0) {
        nonblock = 0;
        continue;
      }
      if (errno != ENXIO || (flags & O_ACCMODE) == O_RDONLY || !is_fifo(path))
        fail(errno, what, path);
      if (stopped(stop))
        return;
      ::poll(nullptr, 0, fifo_poll_ms); // no reader yet
    }
    struct stat st {};
    fifo_ = ::fstat(fd_, &st) == 0 && S_ISFIFO(st.st_mode);
    if (nonblock != 0 && (!fifo_ || (flags & O_ACCMODE) != O_RDONLY)) {
      int fl = ::fcntl(fd_, F_GETFL);
      if (fl < 0 || ::fcntl(fd_, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int err = errno;
        ::close(fd_);
        fail(err, what, path);
      }
    }
  }
  file(const file&) = delete;
  file& operator=(const file&) = delete;
  ~file() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] bool fifo() const noexcept { return fifo_; }
  /// For writes: a failing close() can be the first report of a failed write (NFS, quota).
  void close_checked(const char* what) {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) < 0 && errno != EINTR)
      fail(errno, what, path_);
  }

private:
  const std::string& path_;
  int fd_ = -1;
  bool fifo_ = false;
};

/// A FIFO being read (non-blocking): waits until it has bytes, or its writers have come and gone (end
/// of file), or `stop` is set (false). Before any writer opened it, poll() reports nothing (Linux:
/// POLLHUP only once a writer has been seen), as a blocking open would wait.
bool wait_readable(int fd, const std::atomic<bool>* stop) noexcept {
  pollfd p{fd, POLLIN, 0};
  while (!stopped(stop)) {
    if (::poll(&p, 1, fifo_poll_ms) > 0)
      return true;
  }
  return false;
}

} // namespace

std::string read_file_blocking(const std::string& path, const std::atomic<bool>* stop) {
  reject_nul(path, "read_file", "the path");
  file f(path, O_RDONLY, "read_file: cannot open", stop);
  std::string out;
  struct stat st {};
  if (::fstat(f.fd(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
    out.reserve(static_cast<std::size_t>(st.st_size) + 1); // +1: the read that sees end of file
  std::size_t used = 0;
  // `stop` is looked at before every read: an endless file (/dev/zero, a FIFO fed forever) read for a
  // cancelled await would otherwise grow `out` until memory runs out, and the loop's close waits for it.
  while (!stopped(stop)) {
    if (f.fifo() && !wait_readable(f.fd(), stop))
      break;
    if (out.size() - used < 4096)
      out.resize(std::max<std::size_t>(out.capacity(), used + 65536));
    ssize_t n = ::read(f.fd(), out.data() + used, out.size() - used);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      fail(errno, "read_file: cannot read", path);
    }
    if (n == 0)
      break;
    used += static_cast<std::size_t>(n);
  }
  out.resize(used); // stopped: what was read, which nobody takes
  return out;
}

void write_file_blocking(const std::string& path, std::string_view data, bool append, const std::atomic<bool>* stop) {
  reject_nul(path, append ? "append_file" : "write_file", "the path");
  const char* what = append ? "append_file: cannot open" : "write_file: cannot open";
  file f(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), what, stop);
  if (f.fd() < 0)
    return; // a FIFO that no reader opened before the await was cancelled: the write is skipped
  // Once open (a regular file truncated) the write is under way: it finishes even if `stop` is set.
  while (!data.empty()) {
    ssize_t n = ::write(f.fd(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fail(errno, append ? "append_file: cannot write" : "write_file: cannot write", path);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  f.close_checked(append ? "append_file: cannot close" : "write_file: cannot close");
}

} // namespace corio::detail

namespace corio {
namespace {

/// `co_await file_job_awaiter(job)`: runs a whole-file job on the loop's backend (io_uring).
class file_job_awaiter final : public detail::wait_node, public detail::file_job_waiter {
public:
  explicit file_job_awaiter(std::unique_ptr<detail::file_job> job) noexcept : job_(std::move(job)) {}
  file_job_awaiter(const file_job_awaiter&) = delete;
  ~file_job_awaiter() { detach(); }

  bool await_ready() {
    loop_ = &detail::await_point(name());
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) {
    handle = h;
    task = loop_->current_task();
    job_->target = this;
    running_ = job_.get();
    loop_->start_file_job(job_.release()); // the backend owns it now (and deletes it if this throws)
    event_loop::begin_wait(this);
  }
  /// The data read (or nothing); raises the job's error, or the cancellation that ended the wait.
  std::string await_resume() {
    if (!finished_ && task != nullptr)
      task->check_cancel(); // not finished: the wait was cancelled
    if (err_ != 0)
      throw std::system_error(err_, std::generic_category(),
                              std::string("corio: ") + name() + ": " + step_ + " \"" + path_ + "\"");
    return std::move(data_);
  }
  void file_done(detail::file_job& job) noexcept override {
    running_ = nullptr;
    finished_ = true;
    err_ = job.err;
    step_ = job.step;
    if (err_ != 0)
      path_ = std::move(job.path);
    else if (job.what == detail::file_job::kind::read)
      data_ = std::move(job.data);
    loop_->wake(this);
  }
  void detach() noexcept override {
    if (running_ != nullptr) {
      loop_->abandon_file_job(running_);
      running_ = nullptr;
    }
  }
  [[nodiscard]] const char* what() const noexcept override { return name(); }

private:
  [[nodiscard]] const char* name() const noexcept {
    switch (kind_) {
    case detail::file_job::kind::read:
      return "read_file";
    case detail::file_job::kind::write:
      return "write_file";
    default:
      return "append_file";
    }
  }

  std::unique_ptr<detail::file_job> job_;
  detail::file_job::kind kind_ = job_->what;
  detail::file_job* running_ = nullptr; // owned by the backend while it runs
  bool finished_ = false;
  event_loop* loop_ = nullptr;
  int err_ = 0;
  const char* step_ = "";
  std::string path_;
  std::string data_;
};

std::unique_ptr<detail::file_job> make_job(detail::file_job::kind k, std::string path, std::string data) {
  auto job = std::make_unique<detail::file_job>();
  job->what = k;
  job->path = std::move(path);
  job->data = std::move(data);
  return job;
}

/// Sets the stop flag of a call on the pool when the awaiting frame ends: the await finished (then the
/// call is done and the flag unused), was cancelled, or the frame was destroyed.
struct stop_on_exit {
  std::shared_ptr<std::atomic<bool>> flag = std::make_shared<std::atomic<bool>>(false);
  stop_on_exit() = default;
  stop_on_exit(const stop_on_exit&) = delete;
  stop_on_exit& operator=(const stop_on_exit&) = delete;
  ~stop_on_exit() { flag->store(true, std::memory_order_release); }
};

bool on_ring() {
  event_loop* loop = event_loop::current();
  return loop != nullptr && loop->can_file_io();
}

} // namespace

task<std::string> read_file(std::string path) {
  detail::reject_nul(path, "read_file", "the path"); // before anything is opened, on either path
  if (on_ring()) {
    auto job = make_job(detail::file_job::kind::read, std::move(path), {});
    co_return co_await file_job_awaiter(std::move(job));
  }
  // The lambda is named first: g++ 12 destroys a temporary inside a co_await expression twice (HAZARDS.md).
  stop_on_exit stop;
  auto read = [p = std::move(path), f = stop.flag] { return detail::read_file_blocking(p, f.get()); };
  co_return co_await to_thread(std::move(read));
}

task<> write_file(std::string path, std::string data) {
  detail::reject_nul(path, "write_file", "the path");
  if (on_ring()) {
    auto job = make_job(detail::file_job::kind::write, std::move(path), std::move(data));
    (void)co_await file_job_awaiter(std::move(job));
    co_return;
  }
  stop_on_exit stop;
  auto write = [p = std::move(path), d = std::move(data), f = stop.flag] {
    detail::write_file_blocking(p, d, false, f.get());
  };
  co_await to_thread(std::move(write));
}

task<> append_file(std::string path, std::string data) {
  detail::reject_nul(path, "append_file", "the path");
  if (on_ring()) {
    auto job = make_job(detail::file_job::kind::append, std::move(path), std::move(data));
    (void)co_await file_job_awaiter(std::move(job));
    co_return;
  }
  stop_on_exit stop;
  auto append = [p = std::move(path), d = std::move(data), f = stop.flag] {
    detail::write_file_blocking(p, d, true, f.get());
  };
  co_await to_thread(std::move(append));
}

} // namespace corio
