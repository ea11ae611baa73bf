#include "corio/signals.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "loop_services.hpp"

namespace corio {

const char* keyboard_interrupt::what() const noexcept { return "corio: interrupted (SIGINT)"; }

namespace detail {

namespace {

std::string signal_name(int signo) {
  std::string out = std::to_string(signo);
  if (const char* abbrev = ::sigabbrev_np(signo))
    out.append(" (SIG").append(abbrev).append(")");
  return out;
}

void check_signal(int signo) {
  if (signo <= 0 || signo >= NSIG)
    throw std::invalid_argument(std::string("corio: add_signal_handler: no signal number ") + std::to_string(signo));
  if (signo == SIGKILL || signo == SIGSTOP)
    throw std::invalid_argument("corio: add_signal_handler: signal " + signal_name(signo) + " cannot be caught");
  for (int fault : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS})
    if (signo == fault)
      throw std::invalid_argument("corio: add_signal_handler: " + signal_name(signo) +
                                  " is raised by a fault in the thread itself; it cannot wait for the loop");
}

sigset_t just(int signo) {
  sigset_t s;
  ::sigemptyset(&s);
  ::sigaddset(&s, signo);
  return s;
}

} // namespace

/// A loop's signal handlers: one signalfd for all of them, watched through the loop's backend. Every
/// member is used on the loop's thread only.
class signal_set final : public io_waiter {
public:
  explicit signal_set(event_loop& loop) noexcept : loop_(loop) { ::sigemptyset(&mask_); }
  signal_set(const signal_set&) = delete;
  signal_set& operator=(const signal_set&) = delete;
  ~signal_set() {
    while (!handlers_.empty())
      remove(handlers_.begin()->first);
  }

  void add(int signo, unique_function fn) {
    auto handler = std::make_shared<unique_function>(std::move(fn));
    if (auto it = handlers_.find(signo); it != handlers_.end()) {
      it->second.fn = std::move(handler); // a callback already scheduled keeps the old one alive
      return;
    }
    sigset_t current;
    ::pthread_sigmask(SIG_BLOCK, nullptr, &current);
    const bool was_blocked = ::sigismember(&current, signo) == 1;
    sigset_t wanted = mask_;
    ::sigaddset(&wanted, signo);
    const int fd = ::signalfd(fd_, &wanted, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
      throw std::system_error(errno, std::generic_category(), "corio: add_signal_handler: signalfd");
    const bool new_fd = fd_ < 0;
    fd_ = fd;
    if (new_fd) {
      try {
        loop_.arm(fd_, io_dir::read, this);
      } catch (...) {
        ::close(fd_);
        fd_ = -1;
        throw;
      }
    }
    mask_ = wanted;
    const sigset_t one = just(signo);
    ::pthread_sigmask(SIG_BLOCK, &one, nullptr); // from now on it waits in the signalfd
    handlers_.emplace(signo, entry{std::move(handler), was_blocked});
  }

  bool remove(int signo) noexcept {
    auto it = handlers_.find(signo);
    if (it == handlers_.end())
      return false;
    const bool was_blocked = it->second.was_blocked;
    handlers_.erase(it);
    ::sigdelset(&mask_, signo);
    if (handlers_.empty()) {
      loop_.disarm(fd_, io_dir::read);
      loop_.forget_fd(fd_); // else a later fd with this number (a new signalfd) is never watched
      ::close(fd_);
      fd_ = -1;
    } else {
      (void)::signalfd(fd_, &mask_, 0); // same fd: narrowing the mask of a valid signalfd cannot fail
    }
    if (!was_blocked) {
      // Unblocking delivers a pending instance with the default action; it arrived while the handler
      // was installed, so it is discarded instead.
      const sigset_t one = just(signo);
      const timespec zero{};
      bool discarded = false;
      while (::sigtimedwait(&one, nullptr, &zero) == signo)
        discarded = true;
      ::pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
      if (discarded && signo == SIGCHLD)
        sigchld_taken(nullptr); // it may have been meant for another loop's child
    }
    return true;
  }

  [[nodiscard]] bool handles(int signo) const noexcept { return handlers_.count(signo) != 0; }

  /// The signalfd is readable (on the loop thread, from the backend's poll).
  void ready() noexcept override {
    signalfd_siginfo infos[16];
    bool sigchld = false;
    for (;;) {
      const ssize_t n = ::read(fd_, infos, sizeof infos);
      if (n <= 0)
        break; // EAGAIN: drained (EINTR cannot happen on a non-blocking read that has data)
      for (ssize_t i = 0; i < n / static_cast<ssize_t>(sizeof(signalfd_siginfo)); ++i) {
        sigchld |= infos[i].ssi_signo == SIGCHLD;
        dispatch(static_cast<int>(infos[i].ssi_signo));
      }
    }
    if (sigchld)
      sigchld_taken(&loop_); // process-directed: it may stand for another loop's child too
    try {
      loop_.arm(fd_, io_dir::read, this);
    } catch (...) {
      std::fprintf(stderr, "corio: signal handlers: cannot watch the signalfd again: %s\n",
                   describe(std::current_exception()).c_str());
    }
  }

private:
  struct entry {
    std::shared_ptr<unique_function> fn;
    bool was_blocked; // before add_signal_handler: what remove restores
  };

  void dispatch(int signo) noexcept {
    auto it = handlers_.find(signo);
    if (it == handlers_.end())
      return; // removed meanwhile
    try {
      // A callback, as asyncio does: the handler runs between tasks, never inside the backend's poll.
      loop_.call_soon([fn = it->second.fn] { (*fn)(); });
    } catch (...) {
      std::fprintf(stderr, "corio: cannot schedule the handler of signal %d: %s\n", signo,
                   describe(std::current_exception()).c_str());
    }
  }

  event_loop& loop_;
  std::map<int, entry> handlers_;
  sigset_t mask_;
  int fd_ = -1;
};

namespace {

signal_set* find_signals(event_loop& loop) noexcept {
  loop_services* s = find_services(loop);
  return s != nullptr ? static_cast<signal_set*>(s->signals.get()) : nullptr;
}

} // namespace

// ---- corio::run()'s Ctrl-C ----------------------------------------------------------------------------
//
// Not a signalfd: that reads only what the signal mask leaves pending, so a SIGINT sent to the process
// goes to any thread that does not block it (one started before run(): the default action ends the
// process). A real handler (sigaction) works whichever thread the kernel picks, as asyncio's
// signal.signal + set_wakeup_fd do: it only writes to an eventfd the loop watches.

namespace {

std::atomic<int> sigint_wake_fd{-1};   // the installed guard's eventfd; -1: none
std::atomic<int> sigint_in_handler{0}; // handlers between their read of sigint_wake_fd and their write

/// Async-signal-safe: atomics and write(2). SA_RESETHAND has put SIGINT back to its default action
/// already, so that a second Ctrl-C ends a program whose loop is stuck.
void on_sigint(int) noexcept {
  const int saved = errno;
  sigint_in_handler.fetch_add(1);
  if (const int fd = sigint_wake_fd.load(); fd >= 0) {
    const std::uint64_t one = 1;
    (void)!::write(fd, &one, sizeof one);
  }
  sigint_in_handler.fetch_sub(1);
  errno = saved;
}

} // namespace

/// Shared by the guard and the callback ready() schedules (which may run after the guard is gone). Its
/// members other than the atomics above are used on the loop's thread only.
struct sigint_guard::state final : io_waiter {
  state(event_loop& l, unique_function fn) : loop(&l), on_interrupt(std::move(fn)) {}
  state(const state&) = delete;
  state& operator=(const state&) = delete;
  ~state() = default;

  /// The eventfd is readable: SIGINT arrived (on the loop's thread, from the backend's poll).
  void ready() noexcept override {
    armed = false; // one SIGINT is all it takes (the handler reset itself)
    std::uint64_t n = 0;
    (void)!::read(fd, &n, sizeof n);
    restore_mask(); // a second Ctrl-C is left to the program's mask and the default action
    try {
      // A callback, as asyncio does: on_interrupt runs between tasks, never inside the backend's poll.
      loop->call_soon([self = self.lock()] {
        if (self == nullptr || !self->active)
          return; // the guard is gone (main finished meanwhile)
        self->active = false;
        self->on_interrupt();
      });
    } catch (...) {
      std::fprintf(stderr, "corio: cannot schedule the Ctrl-C handler: %s\n",
                   describe(std::current_exception()).c_str());
    }
  }

  void restore_mask() noexcept {
    if (unblocked) {
      const sigset_t one = just(SIGINT);
      ::pthread_sigmask(SIG_BLOCK, &one, nullptr);
      unblocked = false;
    }
  }

  event_loop* loop;
  unique_function on_interrupt;
  std::weak_ptr<state> self;
  int fd = -1;
  bool armed = false;
  bool active = true;     // false once on_interrupt ran, or the guard is gone
  bool unblocked = false; // SIGINT was blocked in this thread before: the guard unblocked it
};

sigint_guard::sigint_guard(event_loop& loop, unique_function on_interrupt) : loop_(loop) {
  if (loop.config().clock != nullptr || ::getpid() != ::gettid())
    return;
  // Only the handler tells: SA_RESETHAND leaves the flags of the handler it removed (with TSan, whose own
  // handler is installed with SA_SIGINFO, the default disposition then comes with SA_SIGINFO set). A
  // handler, SA_SIGINFO or not, is a function: never SIG_DFL (null) or SIG_IGN.
  struct sigaction current {};
  if (::sigaction(SIGINT, nullptr, &current) != 0 || current.sa_handler != SIG_DFL)
    return; // the program handles (or ignores) SIGINT itself
  if (signal_set* s = find_signals(loop); s != nullptr && s->handles(SIGINT))
    return; // never replace a handler the loop has (a task of an earlier runner::run() may have added one)
  auto st = std::make_shared<state>(loop, std::move(on_interrupt));
  st->self = st;
  st->fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (st->fd < 0)
    throw std::system_error(errno, std::generic_category(), "corio: run(): Ctrl-C handler: eventfd");
  try {
    loop.arm(st->fd, io_dir::read, st.get());
  } catch (...) {
    ::close(st->fd);
    throw;
  }
  st->armed = true;
  sigint_wake_fd.store(st->fd);
  struct sigaction mine {};
  mine.sa_handler = on_sigint;
  ::sigemptyset(&mine.sa_mask);
  mine.sa_flags = SA_RESTART | SA_RESETHAND;
  ::sigaction(SIGINT, &mine, nullptr); // valid arguments: cannot fail
  // This thread takes SIGINT while main runs, even if the program blocks it (then no thread may
  // take it); one sent before and left pending arrives now, as it would at the first poll.
  const sigset_t one = just(SIGINT);
  sigset_t old;
  ::pthread_sigmask(SIG_UNBLOCK, &one, &old);
  st->unblocked = ::sigismember(&old, SIGINT) == 1;
  state_ = std::move(st);
}

sigint_guard::~sigint_guard() {
  if (state_ == nullptr)
    return;
  state& st = *state_;
  st.active = false;
  st.restore_mask(); // first: from now on a SIGINT the program blocks stays pending
  // Back to the default (what it was: the guard is installed only then), unless the program installed a
  // handler of its own meanwhile. After SA_RESETHAND did it, this clears the flags it left.
  struct sigaction current {};
  if (::sigaction(SIGINT, nullptr, &current) == 0 &&
      (current.sa_handler == on_sigint || current.sa_handler == SIG_DFL)) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGINT, &dfl, nullptr);
  }
  // A handler on another thread may have read the fd just before: the fd is closed once it is done.
  sigint_wake_fd.store(-1);
  while (sigint_in_handler.load() != 0)
    std::this_thread::yield();
  if (st.armed)
    loop_.disarm(st.fd, io_dir::read);
  loop_.forget_fd(st.fd);
  ::close(st.fd);
  st.fd = -1;
}

} // namespace detail

void add_signal_handler(event_loop& loop, int signo, detail::unique_function fn) {
  detail::check_signal(signo);
  if (!fn)
    throw std::invalid_argument("corio: add_signal_handler: empty handler");
  detail::check_loop_thread(loop, "add_signal_handler()", " (signal masks are per thread)");
  detail::loop_services& s = detail::services_of(loop); // loop_error if closed
  if (!s.signals)
    s.signals = std::make_shared<detail::signal_set>(loop);
  static_cast<detail::signal_set*>(s.signals.get())->add(signo, std::move(fn));
}

bool remove_signal_handler(event_loop& loop, int signo) {
  detail::check_loop_thread(loop, "remove_signal_handler()", " (signal masks are per thread)");
  detail::signal_set* s = detail::find_signals(loop);
  return s != nullptr && s->remove(signo);
}

} // namespace corio
