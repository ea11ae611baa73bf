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
//
// Completion-based recv (recv()): IORING_OP_RECV with IOSQE_BUFFER_SELECT from a ring of provided
// buffers registered with the kernel (1,024 x 16 KiB per loop, mapped lazily), so no buffer of the caller's
// is ever lent to the kernel: a caller that is cancelled or destroyed mid-recv leaves nothing the kernel
// could write into. The bytes are copied out in completed() and the buffer goes straight back to the
// ring. States of a recv op (one per fd at a time, fd_state::rop):
//   in flight, owned     -> its completion goes to `target`, then the op is freed;
//   in flight, abandoned -> the caller stopped waiting (abandon_recv): an ASYNC_CANCEL is queued; if the
//                           kernel took bytes first, they are appended to the fd's stash (with an end of
//                           file or an error), which take_stashed() hands to the next reader first;
//   adopted              -> a new recv() on that fd while the abandoned op is still in flight takes it
//                           over instead of starting a second recv (two recvs on one socket could
//                           complete out of order); if the cancel won, its owner sees -ECANCELED: retry.
// A *kept* recv (recv(..., keep = true): the stream transports, which read their socket only through
// the ring and the stash) is one-shot by default, as sock_recv's: keeps_recv() says false and the transport
// submits a recv per read. Measured on kernel 6.18 (bench/compare_echo, echo at 64 connections): one-shot
// recvs served 1.13x the messages per second of multishot ones, level with epoll, at 512 1.05x. A recv
// submitted after the last read mostly finds bytes already there and completes inside the io_uring_enter
// that submits it; a multishot recv instead goes through a poll wake-up and task work for every arrival,
// paid partly on the sending side. With CORIO_URING_MULTISHOT_RECV=1 a kept recv is an
// IORING_OP_RECV_MULTISHOT with a byte limit (`optlen`, IORING_RECV_MSHOT_LIM; a kernel without either
// answers -EINVAL, and the backend goes back to one-shot recvs). Each completion with IORING_CQE_F_MORE is
// one buffer of bytes; the op stays in flight after delivering, so the next read costs no submission:
//   in flight, kept      -> bytes go to the reader waiting (more than it asked for: the rest is stashed),
//                           or, with none waiting, to the stash. The kernel ends it after 64 KiB, so a
//                           slow reader has at most that much taken for it and TCP's flow control
//                           pushes back on the sender (should a kernel ignore the limit, it is cancelled
//                           once 64 KiB are stashed); end_recv() (start_tls, before TLS reads with
//                           recv(2)) cancels it;
//   adopted one-shot     -> a one-shot recv() (sock_recv) adopted it: cancelled after that delivery;
//   ended                -> its last completion (no F_MORE: end of file, an error, -ENOBUFS, the cancel)
//                           frees it; take_stashed() answers -2 ("wait for the ring") until then, so no
//                           recv(2) overtakes bytes still in flight.
// -ENOBUFS (every buffer is out) is delivered as "try again" and the caller falls back to recv(2).
//
// Completion-based accept and connect (accept(), connect()): IORING_OP_ACCEPT and IORING_OP_CONNECT, each
// a `net_op` that owns the address it is given or fills in, so nothing of the caller's is lent to the
// kernel. Their user_data is the op's address with bit 2 set. States of an accept op (fd_state::aop, one
// per listening fd at a time):
//   in flight, owned     -> its completion goes to `target` (the new fd and the peer's address), then the
//                           op is freed;
//   in flight, abandoned -> the caller stopped waiting (abandon_accept): an ASYNC_CANCEL is queued; a
//                           connection the kernel accepted first is not closed but kept for the listener
//                           (fd_state::accepted, in order), and take_accepted() hands it out first;
//   adopted              -> an accept() while the abandoned op is still in flight takes it over;
//   in flight, kept      -> (accept(..., keep = true): a server's accept loop) a multishot accept, one
//                           completion with IORING_CQE_F_MORE per connection: to the waiter, or kept
//                           when none waits; cancelled once `accepted_limit` are kept (the rest wait in
//                           the kernel's backlog). A multishot accept gives no address: the backend asks
//                           getpeername(2) for it. A kernel without it answers -EINVAL, and accepts are
//                           one-shot from then on;
//   forgotten            -> forget() (the listener is closing): the waiter gets -EBADF, the op is
//                           cancelled, kept connections are closed, and a connection its completion
//                           still brings is closed.
// A connect op (fd_state::cop) is owned, or abandoned (cancelled; its completion only frees it).
//
// File jobs (start_file_job): OPENAT, then READ (64 KiB at a time into the job's own string, at the
// file position, until a read returns 0) or WRITE (until all is written), then CLOSE; each completion
// submits the next step. Their user_data is the job's address with bit 1 set (poll_ops are 8-aligned).
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
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
constexpr std::uint64_t job_bit = 2;    // set in a file job's user_data
constexpr std::uint64_t net_bit = 4;    // set in an accept or connect op's user_data
constexpr unsigned ring_entries = 1024;
constexpr unsigned cq_entries = 16384; // completions beyond this wait in the kernel (IORING_FEAT_NODROP)

class uring_backend final : public backend {
public:
  uring_backend() {
    // COOP_TASKRUN: a completion that arrives while the loop thread runs is not pushed to it with an
    // interrupt; the kernel posts it the next time the thread enters the kernel (each iteration's
    // io_uring_enter, or any send). TASKRUN_FLAG says so in the ring, so that a poll(0) knows to enter.
    // Without it, every completion interrupted the loop: io_uring served 0.75x epoll's plain HTTP
    // requests per second; with it, the same (bench/compare_http). Kernels before 5.19 lack both flags:
    // set up without them there.
    io_uring_params p{};
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    p.cq_entries = cq_entries;
    int r = io_uring_queue_init_params(ring_entries, &ring_, &p);
    if (r == -EINVAL) {
      p = io_uring_params{};
      p.flags = IORING_SETUP_CQSIZE;
      p.cq_entries = cq_entries;
      r = io_uring_queue_init_params(ring_entries, &ring_, &p);
    }
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
    setup_buffers();
    if (const char* v = std::getenv("CORIO_URING_ACCEPT"); v != nullptr && std::strcmp(v, "0") == 0)
      net_ops_on_ = false;
    if (const char* v = std::getenv("CORIO_URING_MULTISHOT"); v != nullptr && std::strcmp(v, "0") == 0)
      multishot_accept_ = false;
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
    drain();
    ::close(wakefd_);
    io_uring_queue_exit(&ring_);
    while (file_job* job = jobs_) { // jobs drain() gave up on (their waiters are gone with the loop)
      jobs_ = job->next;
      if (job->fd >= 0 && !job->closing) // (a close in flight closes it, or has)
        ::close(job->fd);
      delete job;
    }
    if (bufs_ != nullptr)
      ::munmap(bufs_, buf_count * buf_size);
    if (br_ != nullptr)
      ::munmap(br_, br_bytes());
  }

  void arm(int fd, io_dir d, io_waiter* w, bool kept) override {
    if (fd < 0 || fd == wakefd_ || fd == ring_.ring_fd)
      throw_errno(EBADF, std::string("cannot wait on fd ") + std::to_string(fd));
    if (!kept)
      check_pollable(fd); // as epoll_ctl would: EBADF, or EPERM for a regular file (always "ready")
    fd_state& s = state_for(fd, "wait on");
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
    fd_state* known = state_of(fd);
    if (known == nullptr)
      return;
    fd_state& s = *known;
    const int i = static_cast<int>(d);
    if (s.waiters[i] == nullptr)
      return;
    s.waiters[i] = nullptr;
    --armed_;
    withdraw(s.ops[i]);
    s.ops[i] = nullptr;
  }

  void forget(int fd) noexcept override {
    fd_state* known = state_of(fd);
    if (known == nullptr)
      return;
    fd_state& s = *known;
    bool removed = false;
    for (int i = 0; i < 2; ++i) {
      if (s.ops[i] != nullptr) {
        withdraw(s.ops[i]);
        s.ops[i] = nullptr;
        removed = true;
      }
    }
    io_completion* reader = nullptr;
    if (poll_op* op = s.rop) {
      reader = op->target;
      if (reader != nullptr)
        --armed_;
      op->target = nullptr;
      op->fd_gone = true; // its completion must not stash into a later fd with this number
      s.rop = nullptr;
      cancel_recv_op(op);
      removed = true;
    }
    s.stash.clear();
    s.stash.shrink_to_fit();
    s.stash_end = false;
    s.stash_err = 0;
    removed = removed || s.aop != nullptr || s.cop != nullptr;
    net_completion* acceptor = forget_net_op(s.aop);
    net_completion* connector = forget_net_op(s.cop);
    close_kept(s);
    if (removed)
      (void)io_uring_submit(&ring_); // release the kernel's file reference now: the close is real at once
    if (reader != nullptr)
      reader->completed(-EBADF, nullptr);
    if (acceptor != nullptr)
      acceptor->finished(-EBADF, nullptr, 0);
    if (connector != nullptr)
      connector->finished(-EBADF, nullptr, 0);
    for (io_waiter*& slot : s.waiters) {
      if (io_waiter* w = slot) {
        slot = nullptr;
        --armed_;
        w->ready();
      }
    }
  }

  int poll(std::chrono::nanoseconds timeout) override {
    // Completions already in the ring (posted while the loop's own syscalls ran: COOP_TASKRUN) are
    // delivered without entering the kernel; what is queued to submit (mostly the next recvs of the
    // connections just served) waits for the next poll, so that one io_uring_enter submits more of them.
    // Bounded: at most `max_deferred` polls in a row, and never with 32 entries or more waiting; and only
    // when a waiter is woken (completions that only free withdrawn polls do not count, so a loop on a
    // virtual clock never jumps ahead of I/O it has not submitted). Plain HTTP under wrk: 0.07-0.10
    // io_uring_enter per request instead of 0.15-0.27, the same requests per second.
    // A cross-thread wake() reaped here counts too: it was consumed, and blocking now would lose it.
    if (deferred_ < max_deferred && io_uring_cq_ready(&ring_) > 0 && io_uring_sq_ready(&ring_) < max_deferred_sqes) {
      ++deferred_;
      woken_by_thread_ = false;
      if (const int woken = reap(); woken > 0 || woken_by_thread_)
        return woken;
    }
    deferred_ = 0;
    io_uring_cqe* cqe = nullptr;
    int r;
    if (timeout < std::chrono::nanoseconds::zero()) {
      r = io_uring_submit_and_wait(&ring_, 1);
    } else if (timeout == std::chrono::nanoseconds::zero()) {
      // Submits what is queued and runs pending completion work: one syscall, none if there is neither.
      r = io_uring_sq_ready(&ring_) > 0 || (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_TASKRUN) != 0
              ? io_uring_submit_and_get_events(&ring_)
              : 0;
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

  [[nodiscard]] bool can_recv() const noexcept override { return br_ != nullptr; }

  void recv(int fd, std::size_t max, io_completion* c, bool keep) override {
    fd_state& s = state_for(fd, "recv on");
    if (max == 0)
      throw std::invalid_argument("corio: a recv of 0 bytes");
    if (poll_op* op = s.rop) {
      if (op->target != nullptr)
        throw loop_error(std::string("corio: fd ") + std::to_string(fd) + " already has a reader waiting");
      op->target = c; // adopt the recv still in flight (abandoned, or kept)
      op->max = max;
      if (!keep)
        op->one_more = true; // a kept recv ends after this reader's delivery
      ++armed_;
      return;
    }
    poll_op* op = new_op(fd, io_dir::read);
    io_uring_sqe* sqe = get_sqe_noexcept();
    if (sqe == nullptr) {
      free_op(op);
      throw_errno(EBUSY, "io_uring: submission ring full");
    }
    if (keep && multishot_) {
      io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
      sqe->file_index = stash_limit; // the kernel's `optlen`: the op ends after this many bytes
      op->multishot = true;
    } else {
      io_uring_prep_recv(sqe, fd, nullptr, static_cast<unsigned>(max < buf_size ? max : buf_size), 0);
    }
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = buf_group;
    io_uring_sqe_set_data(sqe, op);
    op->is_recv = true;
    op->target = c;
    op->max = max;
    s.rop = op;
    ++armed_;
    ++recvs_;
  }

  [[nodiscard]] bool keeps_recv() const noexcept override { return can_recv() && multishot_; }

  void end_recv(int fd) noexcept override {
    if (fd_state* s = state_of(fd); s != nullptr && s->rop != nullptr && s->rop->multishot)
      cancel_recv_op(s->rop);
  }

  void abandon_recv(int fd) noexcept override {
    fd_state* s = state_of(fd);
    poll_op* op = s != nullptr ? s->rop : nullptr;
    if (op == nullptr || op->target == nullptr)
      return;
    op->target = nullptr;
    --armed_;
    cancel_recv_op(op);
  }

  bool cancel_recv(int fd) noexcept override {
    fd_state* s = state_of(fd);
    poll_op* op = s != nullptr ? s->rop : nullptr;
    return op != nullptr && op->target != nullptr && cancel_recv_op(op);
  }

  [[nodiscard]] bool has_stashed(int fd) const noexcept override {
    const fd_state* s =
        fd >= 0 && static_cast<std::size_t>(fd) < fds_.size() ? &fds_[static_cast<std::size_t>(fd)] : nullptr;
    return s != nullptr && (!s->stash.empty() || s->stash_end);
  }

  // The recv is cancelled, and completions reaped (delivered to their waiters as poll() would) until
  // its last one: bounded at 1 s, though a cancelled recv completes at once in practice. A cross-thread
  // wake() reaped meanwhile is posted again for poll().
  std::size_t settle_recv(int fd) override {
    fd_state* known = state_of(fd);
    if (known == nullptr)
      return 0;
    if (poll_op* op = known->rop) {
      (void)cancel_recv_op(op);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      bool woken = false;
      while (fds_[static_cast<std::size_t>(fd)].rop == op && std::chrono::steady_clock::now() < deadline) {
        __kernel_timespec ts{0, 10 * 1000 * 1000};
        io_uring_cqe* cqe = nullptr;
        (void)io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
        woken_by_thread_ = false;
        (void)reap();
        woken = woken || woken_by_thread_;
      }
      if (woken)
        wake();
    }
    return fds_[static_cast<std::size_t>(fd)].stash.size();
  }

  long take_stashed(int fd, char* p, std::size_t n, int& err) noexcept override {
    fd_state* known = state_of(fd);
    if (known == nullptr)
      return -1;
    fd_state& s = *known;
    if (!s.stash.empty()) {
      std::size_t k = n < s.stash.size() ? n : s.stash.size();
      std::memcpy(p, s.stash.data(), k);
      s.stash.erase(0, k);
      return static_cast<long>(k);
    }
    if (s.stash_end) {
      s.stash_end = false;
      err = s.stash_err;
      s.stash_err = 0;
      return 0;
    }
    return s.rop != nullptr ? -2 : -1;
  }

  [[nodiscard]] bool can_accept() const noexcept override { return net_ops_on_; }

  void accept(int fd, net_completion* c, bool keep) override {
    fd_state& s = state_for(fd, "accept on");
    if (net_op* op = s.aop) {
      if (op->target != nullptr)
        throw loop_error(std::string("corio: fd ") + std::to_string(fd) + " already has an accept waiting");
      op->target = c; // adopt the accept still in flight (abandoned, or kept)
      if (!keep)
        op->one_more = true; // a kept accept ends after this caller's delivery
      ++armed_;
      return;
    }
    io_uring_sqe* sqe = get_sqe();
    auto* op = new net_op{};
    op->what = net_op::kind::accept;
    op->fd = fd;
    if (keep && multishot_accept_) {
      io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      op->multishot = true;
    } else {
      op->len = sizeof op->addr;
      io_uring_prep_accept(sqe, fd, reinterpret_cast<sockaddr*>(&op->addr), &op->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    start_net_op(sqe, op, c, s.aop);
  }

  void abandon_accept(int fd) noexcept override {
    if (fd_state* s = state_of(fd))
      abandon_net_op(s->aop);
  }

  int take_accepted(int fd, void* addr, unsigned& len) noexcept override {
    fd_state* s = state_of(fd);
    if (s == nullptr || s->accepted.empty())
      return -1;
    const kept_conn k = s->accepted.front();
    s->accepted.erase(s->accepted.begin()); // at most accepted_limit
    len = k.len < len ? k.len : len;
    std::memcpy(addr, &k.addr, len);
    return k.fd;
  }

  void connect(int fd, const void* addr, unsigned len, net_completion* c) override {
    fd_state& s = state_for(fd, "connect");
    if (s.cop != nullptr)
      throw loop_error(std::string("corio: fd ") + std::to_string(fd) + " is already connecting");
    if (len > sizeof(sockaddr_storage))
      throw std::invalid_argument("corio: connect: an address of " + std::to_string(len) + " bytes");
    io_uring_sqe* sqe = get_sqe();
    auto* op = new net_op{};
    op->what = net_op::kind::connect;
    op->fd = fd;
    std::memcpy(&op->addr, addr, len);
    op->len = len;
    io_uring_prep_connect(sqe, fd, reinterpret_cast<const sockaddr*>(&op->addr), op->len);
    start_net_op(sqe, op, c, s.cop);
  }

  void abandon_connect(int fd) noexcept override {
    if (fd_state* s = state_of(fd))
      abandon_net_op(s->cop);
  }

  [[nodiscard]] bool can_file_io() const noexcept override { return true; }

  void start_file_job(file_job* job) override {
    if (!open_job(job)) {
      delete job;
      throw_errno(EBUSY, "io_uring: submission ring full");
    }
    job->next = jobs_;
    if (jobs_ != nullptr)
      jobs_->prev = job;
    jobs_ = job;
    ++armed_;
  }

  void abandon_file_job(file_job* job) noexcept override {
    if (job->target != nullptr) {
      job->target = nullptr;
      --armed_;
      if (waits_for_reader(job)) // nothing written yet: skipped, as the pool does
        (void)cancel_request(reinterpret_cast<std::uint64_t>(job) | job_bit);
    }
  }

private:
  /// One step of a file job completed with `res`: submit the next, or finish it.
  int step_file_job(file_job* job, int res) {
    if (job->closing) { // the close completed: for a write, a failing close may be the first report
      if (res < 0 && res != -EINTR && job->err == 0 && job->what != file_job::kind::read) {
        job->err = -res;
        job->step = "cannot close";
      }
      job->fd = -1;
      return finish_job(job);
    }
    if (!job->opened) {
      if (job->what != file_job::kind::read && !job->blocking_open &&
          (res == -EWOULDBLOCK || (res == -ENXIO && is_fifo(job->path)))) {
        if (job->target == nullptr)
          return finish_job(job);  // abandoned before it could open: skipped
        job->blocking_open = true; // wait for the FIFO's reader (or the lease) in an io_uring worker
        if (open_job(job))
          return 0;
        res = -EBUSY; // cannot happen after a submit
      }
      if (res < 0) {
        job->err = -res;
        job->step = "cannot open";
        return finish_job(job);
      }
      job->fd = res;
      job->opened = true;
      if (job->what != file_job::kind::read && !job->blocking_open) { // blocking writes (see open_job)
        const int fl = ::fcntl(job->fd, F_GETFL);
        if (fl < 0 || ::fcntl(job->fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
          job->err = errno;
          job->step = "cannot open";
          return close_job(job);
        }
      }
      return next_io(job);
    }
    if (res == -EINTR || res == -EAGAIN)
      return next_io(job);
    if (res < 0) {
      job->err = -res;
      job->step = job->what == file_job::kind::read ? "cannot read" : "cannot write";
      return close_job(job);
    }
    if (job->what == file_job::kind::read && res == 0) { // end of file
      job->data.resize(job->done);
      return close_job(job);
    }
    job->done += static_cast<std::size_t>(res);
    return next_io(job);
  }

  /// Queues a job's OPENAT; false if the ring is full. A write opens with O_NONBLOCK first: a FIFO's
  /// blocking open waits for a reader, out of reach of a cancel that should skip it (files.hpp), so a FIFO
  /// with no reader yet (ENXIO), or a file under a lease (EWOULDBLOCK), is opened again without it
  /// (`blocking_open`), which abandon_file_job() and drain() cancel. O_NONBLOCK is cleared once open:
  /// io_uring would answer -EAGAIN to a write on a non-blocking FIFO instead of waiting.
  bool open_job(file_job* job) noexcept {
    io_uring_sqe* sqe = get_sqe_noexcept();
    if (sqe == nullptr)
      return false;
    int flags = O_CLOEXEC;
    switch (job->what) {
    case file_job::kind::read:
      flags |= O_RDONLY;
      break;
    case file_job::kind::write:
      flags |= O_WRONLY | O_CREAT | O_TRUNC;
      break;
    case file_job::kind::append:
      flags |= O_WRONLY | O_CREAT | O_APPEND;
      break;
    }
    if (job->what != file_job::kind::read && !job->blocking_open)
      flags |= O_NONBLOCK;
    io_uring_prep_openat(sqe, AT_FDCWD, job->path.c_str(), flags, 0666);
    io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(job) | job_bit);
    return true;
  }
  static bool is_fifo(const std::string& path) noexcept {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
  }
  /// A write whose open waits for a FIFO's reader: nothing is written yet, a cancel may skip it.
  static bool waits_for_reader(const file_job* job) noexcept {
    return job->what != file_job::kind::read && job->blocking_open && !job->opened;
  }

  int next_io(file_job* job) {
    if (job->target == nullptr && (job->what == file_job::kind::read || stop_writes_))
      return close_job(job); // nobody wants the rest any more (a write: drain() gave up on it)
    if (job->what != file_job::kind::read && job->done == job->data.size())
      return close_job(job); // all written
    io_uring_sqe* sqe = get_sqe_noexcept();
    if (sqe == nullptr) { // cannot happen after a submit
      job->err = EBUSY;
      job->step = job->what == file_job::kind::read ? "cannot read" : "cannot write";
      return close_job(job);
    }
    if (job->what == file_job::kind::read) {
      if (job->data.size() - job->done < 4096)
        job->data.resize(std::max(job->data.size() * 2, job->done + 65536));
      io_uring_prep_read(sqe, job->fd, job->data.data() + job->done,
                         static_cast<unsigned>(std::min<std::size_t>(job->data.size() - job->done, 1u << 30)),
                         static_cast<std::uint64_t>(-1));
    } else {
      const std::size_t rest = job->data.size() - job->done;
      io_uring_prep_write(sqe, job->fd, job->data.data() + job->done,
                          static_cast<unsigned>(std::min<std::size_t>(rest, 1u << 30)), static_cast<std::uint64_t>(-1));
    }
    io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(job) | job_bit);
    return 0;
  }

  int close_job(file_job* job) {
    job->closing = true;
    io_uring_sqe* sqe = get_sqe_noexcept();
    if (sqe == nullptr) { // cannot happen after a submit; close it here then
      ::close(job->fd);
      job->fd = -1;
      return finish_job(job);
    }
    io_uring_prep_close(sqe, job->fd);
    io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(job) | job_bit);
    return 0;
  }

  int finish_job(file_job* job) {
    unlink_job(job);
    int delivered = 0;
    if (file_job_waiter* w = job->target) {
      job->target = nullptr;
      --armed_;
      w->file_done(*job);
      delivered = 1;
    }
    delete job;
    return delivered;
  }

  struct poll_op {
    int fd = -1;
    io_dir dir = io_dir::read;
    bool live = false;        // a poll whose waiter still waits
    bool is_recv = false;     // a recv op (see the states above)
    bool multishot = false;   // a kept recv: completions with IORING_CQE_F_MORE, until its last
    bool one_more = false;    // a kept recv adopted by a one-shot reader: cancelled after its delivery
    bool cancel_sent = false; // a recv op's ASYNC_CANCEL is queued
    bool fd_gone = false;     // forget() ran for its fd: its completion only frees it
    io_completion* target = nullptr;
    std::size_t max = 0; // what target takes at most; more is stashed
    poll_op* next_free = nullptr;
  };
  struct net_op {
    enum class kind : unsigned char { accept, connect } what = kind::accept;
    int fd = -1;
    bool multishot = false;   // a kept accept: completions with IORING_CQE_F_MORE, until its last
    bool one_more = false;    // a kept accept adopted by a one-shot caller: cancelled after its delivery
    bool cancel_sent = false; // its ASYNC_CANCEL is queued
    bool fd_gone = false;     // forget() ran for its fd: its completion only frees it (and closes a connection)
    net_completion* target = nullptr;
    socklen_t len = 0;
    sockaddr_storage addr{}; // connect: the address; accept: the peer's (one-shot)
  };
  struct kept_conn {
    int fd;
    socklen_t len;
    sockaddr_storage addr;
  };
  struct fd_state {
    io_waiter* waiters[2] = {nullptr, nullptr};
    poll_op* ops[2] = {nullptr, nullptr}; // the live poll of each waiter
    poll_op* rop = nullptr;               // the recv in flight: owned, abandoned or kept
    std::string stash;                    // bytes a recv took for nobody (abandoned, or kept)
    bool stash_end = false;               // ... and then the end of the stream (stash_err: an error)
    int stash_err = 0;
    net_op* aop = nullptr;           // the accept in flight: owned, abandoned or kept
    net_op* cop = nullptr;           // the connect in flight
    std::vector<kept_conn> accepted; // connections an accept took for nobody (abandoned, or kept), in order
  };
  /// The state of fd, made if new; throws std::system_error (EBADF) naming `what` for a negative fd.
  fd_state& state_for(int fd, const char* what) {
    if (fd < 0)
      throw_errno(EBADF, std::string("cannot ") + what + " fd " + std::to_string(fd));
    if (static_cast<std::size_t>(fd) >= fds_.size())
      fds_.resize(static_cast<std::size_t>(fd) + 1);
    return fds_[static_cast<std::size_t>(fd)];
  }
  /// The state of an fd this backend has seen, or null (a negative fd, or one never armed or received on).
  fd_state* state_of(int fd) noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < fds_.size() ? &fds_[static_cast<std::size_t>(fd)] : nullptr;
  }

  static constexpr int max_deferred = 8;            // polls in a row that deliver without submitting
  static constexpr unsigned max_deferred_sqes = 32; // with this many queued, poll() submits at once
  int deferred_ = 0;
  bool woken_by_thread_ = false;                        // reap() took a wake() (the eventfd's completion)
  static constexpr std::size_t buf_count = 1024;        // a power of two; see docs/benchmarks.md
  static constexpr std::size_t stash_limit = 64 * 1024; // a kept recv ends when this much waits unread
  static constexpr std::size_t buf_size = 16 * 1024;
  static constexpr int buf_group = 0;
  static std::size_t br_bytes() { return buf_count * sizeof(io_uring_buf); }

  /// Before the loop goes. A file job's read may be running in an io_uring worker thread, writing into
  /// the job's buffer, and closing the ring does not wait for it: so every recv, accept, connect and read
  /// job still in flight is cancelled and its completion awaited before its memory is freed. A write or
  /// append job is not cancelled but stepped to its end (files.hpp: a write already submitted finishes,
  /// and on this backend every write is submitted when its await begins), for its open may have
  /// truncated the file already: cancelled there, the file would be left empty. Both within 2 s; a write
  /// still running then is cancelled (the file may be left partly written) and awaited 1 s more. What is
  /// left after that is freed with the ring (~uring_backend).
  void drain() noexcept {
    if (jobs_ == nullptr && recvs_ == 0 && net_ops_ == 0)
      return;
    for (file_job* job = jobs_; job != nullptr; job = job->next) {
      job->target = nullptr;
      if (job->what == file_job::kind::read || waits_for_reader(job))
        (void)cancel_request(reinterpret_cast<std::uint64_t>(job) | job_bit);
    }
    for (fd_state& s : fds_) {
      if (s.rop != nullptr) {
        s.rop->target = nullptr;
        s.rop->fd_gone = true;
        cancel_recv_op(s.rop);
        s.rop = nullptr;
      }
      (void)forget_net_op(s.aop);
      (void)forget_net_op(s.cop);
      close_kept(s);
    }
    reap_until(std::chrono::steady_clock::now() + std::chrono::seconds(2));
    if (jobs_ == nullptr)
      return;
    stop_writes_ = true; // a write's next step is its close
    for (file_job* job = jobs_; job != nullptr; job = job->next)
      if (job->what != file_job::kind::read)
        (void)cancel_request(reinterpret_cast<std::uint64_t>(job) | job_bit);
    reap_until(std::chrono::steady_clock::now() + std::chrono::seconds(1));
  }

  /// drain()'s loop: submits, and takes completions until nothing is in flight or `deadline`. A file
  /// job's completion steps it as poll() would (nobody waits for it: it ends in its close).
  void reap_until(std::chrono::steady_clock::time_point deadline) noexcept {
    while ((jobs_ != nullptr || recvs_ > 0 || net_ops_ > 0) && std::chrono::steady_clock::now() < deadline) {
      __kernel_timespec ts{0, 50 * 1000 * 1000};
      io_uring_cqe* cqe = nullptr;
      (void)io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      io_uring_cqe* batch[256];
      unsigned n = io_uring_peek_batch_cqe(&ring_, batch, 256);
      for (unsigned i = 0; i < n; ++i) {
        const std::uint64_t data = batch[i]->user_data;
        const int res = batch[i]->res;
        if ((data & job_bit) != 0) {
          (void)step_file_job(reinterpret_cast<file_job*>(data & ~job_bit), res);
        } else if ((data & net_bit) != 0) {
          // Forgotten above (or earlier): it only closes a connection it brings, and is freed at its last.
          (void)complete_net(reinterpret_cast<net_op*>(data & ~net_bit), res, batch[i]->flags);
        } else if (data > wake_tag) {
          auto* op = reinterpret_cast<poll_op*>(data);
          if (op->multishot && (batch[i]->flags & IORING_CQE_F_MORE) != 0)
            continue; // a kept recv's bytes: its last completion follows
          if (op->is_recv)
            --recvs_;
          free_op(op); // the buffer, if one was taken, is not given back: the ring goes too
        }
      }
      io_uring_cq_advance(&ring_, n);
    }
  }

  /// False when the submission ring has no room even after submitting.
  bool cancel_request(std::uint64_t user_data) noexcept {
    io_uring_sqe* sqe = get_sqe_noexcept();
    if (sqe == nullptr)
      return false;
    io_uring_prep_cancel64(sqe, user_data, 0);
    io_uring_sqe_set_data64(sqe, ignore_tag);
    return true;
  }
  /// Queues the ASYNC_CANCEL of a recv op, once. False when it is not queued (no room).
  bool cancel_recv_op(poll_op* op) noexcept {
    if (!op->cancel_sent)
      op->cancel_sent = cancel_request(reinterpret_cast<std::uint64_t>(op));
    return op->cancel_sent;
  }

  /// op's SQE is prepared: it goes in flight for c, in the fd's slot for it (aop or cop).
  void start_net_op(io_uring_sqe* sqe, net_op* op, net_completion* c, net_op*& slot) noexcept {
    io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(op) | net_bit);
    op->target = c;
    slot = op;
    ++armed_;
    ++net_ops_;
  }
  /// Queues the ASYNC_CANCEL of an accept or connect op, once.
  void cancel_net_op(net_op* op) noexcept {
    if (!op->cancel_sent) {
      op->cancel_sent = true;
      cancel_request(reinterpret_cast<std::uint64_t>(op) | net_bit);
    }
  }
  /// The waiter of op (if any, and still waiting) stops waiting: the op is cancelled; an accept's
  /// connection that comes anyway is kept for the listener.
  void abandon_net_op(net_op* op) noexcept {
    if (op == nullptr || op->target == nullptr)
      return;
    op->target = nullptr;
    --armed_;
    cancel_net_op(op);
  }
  /// Closes the connections kept for a listener that goes, as the kernel resets those still queued on
  /// a listener that closes.
  static void close_kept(fd_state& s) noexcept {
    for (const kept_conn& k : s.accepted)
      ::close(k.fd);
    s.accepted.clear();
    s.accepted.shrink_to_fit();
  }
  /// The fd of `slot`'s op is going: the op is cancelled and only freed by its completion. Returns its
  /// waiter (to be told -EBADF), if any.
  net_completion* forget_net_op(net_op*& slot) noexcept {
    net_op* op = slot;
    if (op == nullptr)
      return nullptr;
    slot = nullptr;
    net_completion* waiter = op->target;
    if (waiter != nullptr)
      --armed_;
    op->target = nullptr;
    op->fd_gone = true;
    cancel_net_op(op);
    return waiter;
  }

  int complete_net(net_op* op, int res, unsigned flags) {
    const bool last = !op->multishot || (flags & IORING_CQE_F_MORE) == 0;
    if (last)
      --net_ops_;
    const bool is_accept = op->what == net_op::kind::accept;
    if (op->fd_gone) {
      if (is_accept && res >= 0)
        ::close(res); // the listener closed meanwhile: as if the connection had still been queued
      if (last)
        delete op;
      return 0;
    }
    fd_state& s = fds_[static_cast<std::size_t>(op->fd)];
    net_completion* target = op->target;
    op->target = nullptr;
    if (!is_accept) {
      if (s.cop == op)
        s.cop = nullptr;
      delete op;
      if (target == nullptr)
        return 0;
      --armed_;
      target->finished(res, nullptr, 0);
      return 1;
    }
    if (op->multishot && res == -EINVAL) {
      // A kernel without multishot accept: one-shot accepts from now on.
      multishot_accept_ = false;
      res = -ECANCELED; // "nothing happened, try again"
    }
    kept_conn got{res, 0, {}};
    if (res >= 0) {
      if (op->multishot) { // no address with a multishot accept: ask for it
        got.len = sizeof got.addr;
        if (::getpeername(res, reinterpret_cast<sockaddr*>(&got.addr), &got.len) != 0)
          got.len = 0; // the peer has gone already (ENOTCONN): the connection is still handed out
      } else {
        got.len = op->len;
        got.addr = op->addr;
      }
    }
    const bool one_more = op->one_more;
    if (last) {
      if (s.aop == op)
        s.aop = nullptr;
      delete op;
    } else if ((target != nullptr && one_more) || (target == nullptr && s.accepted.size() + 1 >= accepted_limit)) {
      cancel_net_op(op); // adopted by a one-shot caller; or enough kept: the rest wait in the backlog
    }
    if (target != nullptr) {
      --armed_;
      target->finished(res, &got.addr, got.len);
      return 1;
    }
    if (res >= 0)
      s.accepted.push_back(got);
    return 0;
  }

  void unlink_job(file_job* job) noexcept {
    if (job->prev != nullptr)
      job->prev->next = job->next;
    else
      jobs_ = job->next;
    if (job->next != nullptr)
      job->next->prev = job->prev;
  }

  /// Registers the provided-buffer ring; without it (kernels before 5.19, or CORIO_URING_RECV=0) recv()
  /// is not offered and readers use readiness and recv(2).
  void setup_buffers() noexcept {
    if (const char* v = std::getenv("CORIO_URING_RECV"); v != nullptr && std::strcmp(v, "0") == 0)
      return;
    if (const char* v = std::getenv("CORIO_URING_MULTISHOT_RECV"); v != nullptr && std::strcmp(v, "1") == 0)
      multishot_ = true;
    if (const char* v = std::getenv("CORIO_URING_MULTISHOT"); v != nullptr && std::strcmp(v, "0") == 0)
      multishot_ = false;
    void* ring = ::mmap(nullptr, br_bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ring == MAP_FAILED)
      return;
    void* bufs = ::mmap(nullptr, buf_count * buf_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (bufs == MAP_FAILED) {
      ::munmap(ring, br_bytes());
      return;
    }
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(ring);
    reg.ring_entries = buf_count;
    reg.bgid = buf_group;
    if (io_uring_register_buf_ring(&ring_, &reg, 0) != 0) {
      ::munmap(bufs, buf_count * buf_size);
      ::munmap(ring, br_bytes());
      return;
    }
    br_ = static_cast<io_uring_buf_ring*>(ring);
    bufs_ = static_cast<char*>(bufs);
    io_uring_buf_ring_init(br_);
    for (unsigned i = 0; i < buf_count; ++i)
      io_uring_buf_ring_add(br_, bufs_ + i * buf_size, buf_size, static_cast<unsigned short>(i),
                            io_uring_buf_ring_mask(buf_count), static_cast<int>(i));
    io_uring_buf_ring_advance(br_, buf_count);
  }

  void give_back(unsigned bid) noexcept {
    io_uring_buf_ring_add(br_, bufs_ + bid * buf_size, buf_size, static_cast<unsigned short>(bid),
                          io_uring_buf_ring_mask(buf_count), 0);
    io_uring_buf_ring_advance(br_, 1);
  }

  int complete_recv(poll_op* op, int res, unsigned flags) {
    const char* data = nullptr;
    unsigned bid = 0;
    const bool has_buf = (flags & IORING_CQE_F_BUFFER) != 0;
    if (has_buf) {
      bid = flags >> IORING_CQE_BUFFER_SHIFT;
      data = bufs_ + bid * buf_size;
    }
    // A kept (multishot) recv stays in flight while its completions say "more"; its last one, and a
    // one-shot recv's only one, end it.
    const bool last = !op->multishot || (flags & IORING_CQE_F_MORE) == 0;
    if (last)
      --recvs_;
    if (op->fd_gone) {
      if (last)
        free_op(op);
      if (has_buf)
        give_back(bid);
      return 0;
    }
    if (op->multishot && res == -EINVAL && !has_buf) {
      // A kernel without multishot recv or without its byte limit: one-shot recvs from now on (a kept
      // recv without the limit could take megabytes for a reader that does not read).
      multishot_ = false;
      res = -ECANCELED; // "nothing happened, try again"
    }
    fd_state& s = fds_[static_cast<std::size_t>(op->fd)];
    io_completion* target = op->target;
    const std::size_t max = op->max;
    op->target = nullptr;
    if (last) {
      if (s.rop == op)
        s.rop = nullptr;
      free_op(op);
    }
    int delivered = 0;
    if (target != nullptr) {
      --armed_;
      if (res > 0 && static_cast<std::size_t>(res) > max) { // a multishot recv fills whole buffers
        s.stash.append(data + max, static_cast<std::size_t>(res) - max);
        res = static_cast<int>(max);
      }
      if (!last && op->one_more)
        cancel_recv_op(op);
      target->completed(res, data);
      delivered = 1;
    } else if (res > 0) {
      s.stash.append(data, static_cast<std::size_t>(res)); // nobody waits, but the kernel took these bytes
      if (!last && s.stash.size() >= stash_limit)
        cancel_recv_op(op); // the kernel's limit should have ended it: stop taking bytes for nobody
    } else if (res == 0 || !recv_retryable(res)) {
      s.stash_end = true;
      s.stash_err = res < 0 ? -res : 0;
    }
    if (target == nullptr && (!s.stash.empty() || s.stash_end) && s.waiters[0] != nullptr) {
      // A reader waiting for readiness: the fd reads at once now (the stash comes first), although the
      // kernel's buffer, which its poll watches, may be empty.
      io_waiter* w = s.waiters[0];
      s.waiters[0] = nullptr;
      --armed_;
      withdraw(s.ops[0]);
      s.ops[0] = nullptr;
      w->ready();
      ++delivered;
    }
    if (has_buf)
      give_back(bid);
    return delivered;
  }

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
        delivered += dispatch(got[i].data, got[i].res, got[i].flags);
      if (n < 256)
        return delivered;
    }
  }

  int dispatch(std::uint64_t data, int res, unsigned flags) {
    if (data == ignore_tag)
      return 0;
    if (data == wake_tag) {
      woken_by_thread_ = true;
      std::uint64_t value;
      [[maybe_unused]] auto r = ::read(wakefd_, &value, sizeof value);
      if ((flags & IORING_CQE_F_MORE) == 0)
        arm_wake(); // the kernel ended the multishot poll (e.g. on overflow): start another
      return 0;
    }
    if ((data & job_bit) != 0)
      return step_file_job(reinterpret_cast<file_job*>(data & ~job_bit), res);
    if ((data & net_bit) != 0)
      return complete_net(reinterpret_cast<net_op*>(data & ~net_bit), res, flags);
    auto* op = reinterpret_cast<poll_op*>(data);
    if (op->is_recv)
      return complete_recv(op, res, flags);
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
    op->is_recv = false;
    op->multishot = false;
    op->one_more = false;
    op->cancel_sent = false;
    op->fd_gone = false;
    op->target = nullptr;
    return op;
  }
  void free_op(poll_op* op) noexcept {
    op->live = false;
    op->next_free = free_ops_;
    free_ops_ = op;
  }

  io_uring ring_{};
  io_uring_buf_ring* br_ = nullptr; // null: no completion-based recv
  bool multishot_ = false;          // kept recvs are multishot (on: CORIO_URING_MULTISHOT_RECV=1, and kernel support)
  char* bufs_ = nullptr;
  int wakefd_ = -1;
  std::vector<fd_state> fds_;
  std::vector<std::unique_ptr<poll_op[]>> chunks_;
  poll_op* free_ops_ = nullptr;
  file_job* jobs_ = nullptr;     // file jobs in flight
  bool stop_writes_ = false;     // drain() timed out: abandoned writes close at their next step
  std::size_t recvs_ = 0;        // recv ops in flight (owned or abandoned)
  std::size_t net_ops_ = 0;      // accept and connect ops in flight
  bool net_ops_on_ = true;       // accept() and connect() offered (off: CORIO_URING_ACCEPT=0)
  bool multishot_accept_ = true; // kept accepts are multishot (off: CORIO_URING_MULTISHOT=0, or no kernel support)
  static constexpr std::size_t accepted_limit = 64; // a kept accept stops when this many wait unclaimed
  std::size_t armed_ = 0;
};

} // namespace

std::unique_ptr<backend> make_uring_backend() { return std::make_unique<uring_backend>(); }

} // namespace corio::detail
