// The io_uring backend: readiness through one-shot IORING_OP_POLL_ADD, submitted in batches.
//
// Every arm() queues one POLL_ADD in the submission ring; nothing reaches the kernel until poll(), which
// submits the whole batch and waits for completions in one io_uring_enter (with a timeout, through
// IORING_FEAT_EXT_ARG). So a loop iteration that re-arms 64 sockets costs one system call, where epoll
// costs its epoll_wait plus an epoll_ctl for every interest that changed.
//
// Each in-flight poll is a `poll_op` whose address is the completion's user_data. States of a poll_op:
//   queued/in flight, live  -> its completion delivers the fd's waiter (ready()) and frees it;
//   in flight, withdrawn    -> disarm()/forget() cleared `live` and queued a POLL_REMOVE for it (whose own
//                              completion is ignored); its completion, -ECANCELED or a result that came
//                              first, only frees it. A new arm on the same fd and direction gets a new
//                              op meanwhile, so a stale completion can never wake the wrong waiter.
// io_uring holds a reference to the file while a poll is in flight, so a socket closed with a poll armed
// stays open (and keeps its port) until the poll is removed: forget() submits its removals at once.
//
// Cross-thread wake(): an eventfd with a multishot poll on it, as epoll's backend has.
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "backend.hpp"
#include "corio/errors.hpp"

namespace corio::detail {
namespace {

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), "corio: " + what);
}

constexpr std::uint64_t ignore_tag = 0; // a POLL_REMOVE's own completion
constexpr std::uint64_t wake_tag = 1;   // the eventfd's multishot poll
constexpr unsigned ring_entries = 1024;
constexpr unsigned cq_entries = 16384; // completions beyond this wait in the kernel (IORING_FEAT_NODROP)

class uring_backend final : public backend {
public:
  uring_backend() {
    io_uring_params p{};
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = cq_entries;
    int r = io_uring_queue_init_params(ring_entries, &ring_, &p);
    if (r < 0)
      throw_errno(-r, "io_uring_queue_init");
    if ((p.features & IORING_FEAT_EXT_ARG) == 0 || (p.features & IORING_FEAT_NODROP) == 0) {
      io_uring_queue_exit(&ring_);
      throw_errno(ENOSYS, "io_uring: the kernel lacks IORING_FEAT_EXT_ARG or IORING_FEAT_NODROP (Linux 5.11+ needed)");
    }
    wakefd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wakefd_ < 0) {
      int err = errno;
      io_uring_queue_exit(&ring_);
      throw_errno(err, "eventfd");
    }
    arm_wake();
    // Probe now, so that `auto` falls back at construction rather than at the first poll: a seccomp
    // filter or io_uring_disabled=2 makes the first submission fail, not the setup.
    r = io_uring_submit(&ring_);
    if (r < 0) {
      ::close(wakefd_);
      io_uring_queue_exit(&ring_);
      throw_errno(-r, "io_uring_submit");
    }
  }

  ~uring_backend() override {
    ::close(wakefd_);
    io_uring_queue_exit(&ring_); // the kernel cancels what is still in flight
  }

  void arm(int fd, io_dir d, io_waiter* w, bool kept) override {
    if (fd < 0 || fd == wakefd_ || fd == ring_.ring_fd)
      throw_errno(EBADF, std::string("cannot wait on fd ") + std::to_string(fd));
    if (!kept)
      check_pollable(fd); // as epoll_ctl would: EBADF, or EPERM for a regular file (always "ready")
    if (static_cast<std::size_t>(fd) >= fds_.size())
      fds_.resize(static_cast<std::size_t>(fd) + 1);
    fd_state& s = fds_[static_cast<std::size_t>(fd)];
    const int i = static_cast<int>(d);
    if (s.waiters[i] != nullptr)
      throw loop_error(std::string("corio: fd ") + std::to_string(fd) + " already has a " +
                       (d == io_dir::read ? "reader" : "writer") + " waiting");
    poll_op* op = new_op(fd, d);
    io_uring_sqe* sqe = get_sqe_noexcept();
    if (sqe == nullptr) {
      free_op(op);
      throw_errno(EBUSY, "io_uring: submission ring full");
    }
    io_uring_prep_poll_add(sqe, fd, d == io_dir::read ? POLLIN | POLLRDHUP : POLLOUT);
    io_uring_sqe_set_data(sqe, op);
    s.waiters[i] = w;
    s.ops[i] = op;
    ++armed_;
  }

  void disarm(int fd, io_dir d) noexcept override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size())
      return;
    fd_state& s = fds_[static_cast<std::size_t>(fd)];
    const int i = static_cast<int>(d);
    if (s.waiters[i] == nullptr)
      return;
    s.waiters[i] = nullptr;
    --armed_;
    withdraw(s.ops[i]);
    s.ops[i] = nullptr;
  }

  void forget(int fd) noexcept override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size())
      return;
    fd_state& s = fds_[static_cast<std::size_t>(fd)];
    bool removed = false;
    for (int i = 0; i < 2; ++i) {
      if (s.ops[i] != nullptr) {
        withdraw(s.ops[i]);
        s.ops[i] = nullptr;
        removed = true;
      }
    }
    if (removed)
      (void)io_uring_submit(&ring_); // release the kernel's file reference now: the close is real at once
    for (io_waiter*& slot : s.waiters) {
      if (io_waiter* w = slot) {
        slot = nullptr;
        --armed_;
        w->ready();
      }
    }
  }

  int poll(std::chrono::nanoseconds timeout) override {
    io_uring_cqe* cqe = nullptr;
    int r;
    if (timeout < std::chrono::nanoseconds::zero()) {
      r = io_uring_submit_and_wait(&ring_, 1);
    } else if (timeout == std::chrono::nanoseconds::zero()) {
      r = io_uring_sq_ready(&ring_) > 0 ? io_uring_submit(&ring_) : 0;
    } else {
      auto ns = timeout.count();
      __kernel_timespec ts{};
      ts.tv_sec = ns / 1000000000;
      ts.tv_nsec = ns % 1000000000;
      r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
      throw_errno(-r, "io_uring_enter");
    return reap();
  }

  void wake() noexcept override {
    std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(wakefd_, &one, sizeof one);
  }

  [[nodiscard]] std::size_t armed() const noexcept override { return armed_; }

private:
  struct poll_op {
    int fd = -1;
    io_dir dir = io_dir::read;
    bool live = false;
    poll_op* next_free = nullptr;
  };
  struct fd_state {
    io_waiter* waiters[2] = {nullptr, nullptr};
    poll_op* ops[2] = {nullptr, nullptr}; // the live poll of each waiter
  };

  /// Completions are copied out and the ring advanced before any is delivered: a waiter's ready() may
  /// arm again, and a full submission ring then submits (which can post more completions).
  int reap() {
    int delivered = 0;
    for (;;) {
      io_uring_cqe* batch[256];
      unsigned n = io_uring_peek_batch_cqe(&ring_, batch, 256);
      if (n == 0)
        return delivered;
      struct done {
        std::uint64_t data;
        int res;
        unsigned flags;
      } got[256];
      for (unsigned i = 0; i < n; ++i)
        got[i] = {batch[i]->user_data, batch[i]->res, batch[i]->flags};
      io_uring_cq_advance(&ring_, n);
      for (unsigned i = 0; i < n; ++i)
        delivered += dispatch(got[i].data, got[i].flags);
      if (n < 256)
        return delivered;
    }
  }

  int dispatch(std::uint64_t data, unsigned flags) {
    if (data == ignore_tag)
      return 0;
    if (data == wake_tag) {
      std::uint64_t value;
      [[maybe_unused]] auto r = ::read(wakefd_, &value, sizeof value);
      if ((flags & IORING_CQE_F_MORE) == 0)
        arm_wake(); // the kernel ended the multishot poll (e.g. on overflow): start another
      return 0;
    }
    auto* op = reinterpret_cast<poll_op*>(data);
    const bool live = op->live;
    const int fd = op->fd;
    const int i = static_cast<int>(op->dir);
    free_op(op);
    if (!live)
      return 0;
    // Whatever the result (events, or an error such as the fd having been closed), the waiter runs and
    // finds out with its own system call.
    fd_state& s = fds_[static_cast<std::size_t>(fd)];
    io_waiter* w = s.waiters[i];
    s.waiters[i] = nullptr;
    s.ops[i] = nullptr;
    --armed_;
    w->ready();
    return 1;
  }

  void withdraw(poll_op* op) noexcept {
    op->live = false;
    io_uring_sqe* sqe = get_sqe_noexcept();
    if (sqe == nullptr)
      return; // cannot happen after a submit; the op then just completes later and is freed
    io_uring_prep_poll_remove(sqe, reinterpret_cast<std::uint64_t>(op));
    io_uring_sqe_set_data64(sqe, ignore_tag);
  }

  void arm_wake() {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_poll_multishot(sqe, wakefd_, POLLIN);
    io_uring_sqe_set_data64(sqe, wake_tag);
  }

  void check_pollable(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) < 0)
      throw_errno(errno, std::string("cannot wait on fd ") + std::to_string(fd));
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
      throw_errno(EPERM, std::string("cannot wait on fd ") + std::to_string(fd) + " (a regular file is always ready)");
  }

  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = get_sqe_noexcept();
    if (sqe == nullptr)
      throw_errno(EBUSY, "io_uring: submission ring full");
    return sqe;
  }
  io_uring_sqe* get_sqe_noexcept() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) { // the ring is full: hand the batch to the kernel and go on
      (void)io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  poll_op* new_op(int fd, io_dir d) {
    if (free_ops_ == nullptr) {
      constexpr std::size_t chunk = 256;
      chunks_.reserve(chunks_.size() + 1);
      chunks_.push_back(std::make_unique<poll_op[]>(chunk));
      poll_op* block = chunks_.back().get();
      for (std::size_t i = 0; i < chunk; ++i) {
        block[i].next_free = free_ops_;
        free_ops_ = &block[i];
      }
    }
    poll_op* op = free_ops_;
    free_ops_ = op->next_free;
    op->fd = fd;
    op->dir = d;
    op->live = true;
    return op;
  }
  void free_op(poll_op* op) noexcept {
    op->live = false;
    op->next_free = free_ops_;
    free_ops_ = op;
  }

  io_uring ring_{};
  int wakefd_ = -1;
  std::vector<fd_state> fds_;
  std::vector<std::unique_ptr<poll_op[]>> chunks_;
  poll_op* free_ops_ = nullptr;
  std::size_t armed_ = 0;
};

} // namespace

std::unique_ptr<backend> make_uring_backend() { return std::make_unique<uring_backend>(); }

} // namespace corio::detail
