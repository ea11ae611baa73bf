// The epoll backend: level-triggered readiness with lazily dropped interest.
//
// Each fd keeps its registered interest while waiters come and go: "wait readable, read, wait readable"
// costs one epoll_ctl for the first wait only. When an event arrives for a direction nobody waits for,
// that interest is dropped then (one EPOLL_CTL_MOD), so level-triggering never spins. Closing an fd
// removes it from the epoll set in the kernel (if no dup of it is open); a later fd with the same number
// is re-added on demand (MOD answers ENOENT -> ADD).
//
// The cache is trusted only while every arm of the fd came from an owner that calls forget() before
// closing it (`kept` arms: corio::socket and the stream transport). An arm from a user's readable(fd)
// marks the entry untrusted and always re-registers (one epoll_ctl per wait, like a selector), because
// nobody promised to call forget_fd() before that fd is closed and its number reused.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
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

constexpr std::uint32_t read_events = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
constexpr std::uint32_t write_events = EPOLLOUT | EPOLLHUP | EPOLLERR;

class epoll_backend final : public backend {
public:
  epoll_backend() {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0)
      throw_errno(errno, "epoll_create1");
    wakefd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wakefd_ < 0) {
      int err = errno;
      ::close(epfd_);
      throw_errno(err, "eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wakefd_;
    ::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev);
  }
  ~epoll_backend() override {
    ::close(wakefd_);
    ::close(epfd_);
  }

  void arm(int fd, io_dir d, io_waiter* w, bool kept) override {
    if (fd < 0 || fd == wakefd_ || fd == epfd_)
      throw_errno(EBADF, std::string("cannot wait on fd ") + std::to_string(fd));
    if (static_cast<std::size_t>(fd) >= fds_.size()) {
      // The table grows to fd + 1 entries: make sure fd is open first, or readable(1 << 30) would keep
      // gigabytes for the loop's life (or raise bad_alloc) instead of EBADF.
      if (::fcntl(fd, F_GETFD) < 0)
        throw_errno(errno, std::string("cannot wait on fd ") + std::to_string(fd));
      fds_.resize(static_cast<std::size_t>(fd) + 1);
    }
    fd_state& s = fds_[static_cast<std::size_t>(fd)];
    io_waiter*& slot = s.waiters[static_cast<int>(d)];
    if (slot != nullptr)
      throw loop_error(std::string("corio: fd ") + std::to_string(fd) + " already has a " +
                       (d == io_dir::read ? "reader" : "writer") + " waiting");
    std::uint32_t want =
        s.interest | (d == io_dir::read ? std::uint32_t(EPOLLIN | EPOLLRDHUP) : std::uint32_t(EPOLLOUT));
    if (want != s.interest || !s.registered || !kept || !s.trusted)
      update(fd, s, want); // apply() fixes a wrong guess either way: MOD -> ENOENT -> ADD, ADD -> EEXIST -> MOD
    s.trusted = kept;
    slot = w;
    ++armed_;
  }

  void disarm(int fd, io_dir d) noexcept override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size())
      return;
    io_waiter*& slot = fds_[static_cast<std::size_t>(fd)].waiters[static_cast<int>(d)];
    if (slot != nullptr) {
      slot = nullptr;
      --armed_;
    }
  }

  // The kernel drops a closed fd from the epoll set by itself (when no dup of it is open), but our
  // registered/interest cache would survive and make arm() skip the epoll_ctl a reused number needs.
  void forget(int fd) noexcept override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size())
      return;
    fd_state& s = fds_[static_cast<std::size_t>(fd)];
    if (s.registered) {
      epoll_event ev{};
      ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev); // a dup may keep it in the set: take it out now
    }
    s.registered = false;
    s.trusted = false;
    s.interest = 0;
    for (io_waiter*& slot : s.waiters) {
      if (io_waiter* w = slot) {
        slot = nullptr;
        --armed_;
        w->ready();
      }
    }
  }

  int poll(std::chrono::nanoseconds timeout) override {
    int ms = -1;
    if (timeout >= std::chrono::nanoseconds::zero()) {
      // Round up, so a timer due in 0.3 ms does not become a busy loop of zero-timeout polls.
      auto m = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
      ms = m > 24 * 3600 * 1000 ? 24 * 3600 * 1000 : static_cast<int>(m);
    }
    epoll_event events[256];
    int n = ::epoll_wait(epfd_, events, 256, ms);
    if (n < 0) {
      if (errno == EINTR)
        return 0;
      throw_errno(errno, "epoll_wait");
    }
    int delivered = 0;
    for (int i = 0; i < n; ++i)
      delivered += dispatch(events[i]);
    return delivered;
  }

  void wake() noexcept override {
    std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(wakefd_, &one, sizeof one);
  }

  [[nodiscard]] std::size_t armed() const noexcept override { return armed_; }

private:
  struct fd_state {
    io_waiter* waiters[2] = {nullptr, nullptr};
    std::uint32_t interest = 0;
    bool registered = false; // as far as we know: apply() copes when it is wrong
    bool trusted = false;    // every arm since the last forget() was kept: `registered` is surely right
  };

  int dispatch(const epoll_event& ev) {
    int fd = ev.data.fd;
    if (fd == wakefd_) {
      std::uint64_t value;
      [[maybe_unused]] auto r = ::read(wakefd_, &value, sizeof value);
      return 0;
    }
    fd_state& s = fds_[static_cast<std::size_t>(fd)];
    int delivered = 0;
    std::uint32_t unwanted = 0;
    for (int d = 0; d < 2; ++d) {
      if ((ev.events & (d == 0 ? read_events : write_events)) == 0)
        continue;
      if (io_waiter* w = s.waiters[d]) {
        s.waiters[d] = nullptr;
        --armed_;
        ++delivered;
        w->ready();
      } else {
        unwanted |= d == 0 ? std::uint32_t(EPOLLIN | EPOLLRDHUP) : std::uint32_t(EPOLLOUT);
      }
    }
    // Nobody waits in that direction any more: stop listening, or level-triggering would spin. The
    // waiters above may have re-armed the fd already (s is re-read).
    if ((unwanted & s.interest) != 0) {
      std::uint32_t want = s.interest;
      if (s.waiters[0] == nullptr)
        want &= ~std::uint32_t(EPOLLIN | EPOLLRDHUP);
      if (s.waiters[1] == nullptr)
        want &= ~std::uint32_t(EPOLLOUT);
      if (want != s.interest)
        update_quiet(fd, s, want);
    }
    return delivered;
  }

  /// Registers `want` for fd; throws on a bad fd.
  void update(int fd, fd_state& s, std::uint32_t want) {
    int err = apply(fd, s, want);
    if (err != 0)
      throw_errno(err, std::string("cannot wait on fd ") + std::to_string(fd) + " (epoll_ctl)");
  }
  void update_quiet(int fd, fd_state& s, std::uint32_t want) noexcept { (void)apply(fd, s, want); }

  int apply(int fd, fd_state& s, std::uint32_t want) noexcept {
    epoll_event ev{};
    ev.events = want;
    ev.data.fd = fd;
    if (want == 0) {
      if (s.registered)
        ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev);
      s.registered = false;
      s.interest = 0;
      return 0;
    }
    int op = s.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int r = ::epoll_ctl(epfd_, op, fd, &ev);
    if (r < 0 && errno == ENOENT && op == EPOLL_CTL_MOD) // the fd was closed and its number reused
      r = ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    else if (r < 0 && errno == EEXIST && op == EPOLL_CTL_ADD)
      r = ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
    if (r < 0)
      return errno;
    s.registered = true;
    s.interest = want;
    return 0;
  }

  int epfd_ = -1;
  int wakefd_ = -1;
  std::vector<fd_state> fds_;
  std::size_t armed_ = 0;
};

} // namespace

std::unique_ptr<backend> make_epoll_backend() { return std::make_unique<epoll_backend>(); }

} // namespace corio::detail
