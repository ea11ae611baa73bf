// Reaping children: a pidfd per child polled by the loop, or SIGCHLD; a background reaper at loop close.
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>

#include "../net/stream_transport.hpp"
#include "../thread/loop_services.hpp"
#include "child_process.hpp"
#include "corio/signals.hpp"

namespace corio::detail {

namespace {

/// The return code of a reaped child: its exit status, or -N when signal N ended it.
int returncode_of(const siginfo_t& info) noexcept {
  return info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
}

/// waitid(WEXITED | WNOHANG) on one child: 1 reaped (code set), 0 still running, -1 gone (ECHILD: some
/// other code reaped it, or SIGCHLD is ignored and the kernel did).
int wait_nohang(int pid, int pidfd, int& code) noexcept {
  for (;;) {
    siginfo_t info{};
    const int r = pidfd >= 0 ? ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG)
                             : ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG);
    if (r == 0) {
      if (info.si_pid == 0)
        return 0;
      code = returncode_of(info);
      return 1;
    }
    if (errno != EINTR)
      return -1;
  }
}

/// SIGCHLD set to SIG_IGN: the kernel then reaps children itself and sends no SIGCHLD at all
/// (kernel/signal.c, do_notify_parent), so the fallback watcher would never hear of an exit. (With
/// SA_NOCLDWAIT and a handler the signal still comes; the status is lost: returncode 255.)
bool sigchld_ignored() noexcept {
  struct sigaction current {};
  return ::sigaction(SIGCHLD, nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) == 0 &&
         current.sa_handler == SIG_IGN;
}

// ---- the loops that handle SIGCHLD, process-wide --------------------------------------------------

/// A loop whose watcher handles SIGCHLD for children without a pidfd.
struct sigchld_listener {
  event_loop* loop;
  std::weak_ptr<child_watcher> watcher; // locked on the loop's thread only
  bool check_posted = false;            // a check() is queued on the loop: one at a time is enough
};

// Guards the map and its entries. An entry is added and erased by its watcher, on its loop's thread;
// the watcher erases it at the latest in its destructor (the loop's on_close), so a listed loop is
// alive and call_soon_threadsafe on it is safe while this mutex is held.
std::mutex listeners_mutex;

std::map<const child_watcher*, sigchld_listener>& listeners() {
  static auto* map = new std::map<const child_watcher*, sigchld_listener>();
  return *map; // never destroyed: a loop may close during static destruction
}

/// Queues a check() on l's loop unless one is queued already. Call with listeners_mutex held.
void post_check(sigchld_listener& l) noexcept {
  if (l.check_posted)
    return;
  try {
    l.loop->call_soon_threadsafe([w = l.watcher] {
      if (auto watcher = w.lock())
        watcher->check();
    });
    l.check_posted = true;
  } catch (...) {
    std::fprintf(stderr, "corio: cannot ask a loop to poll its child processes: %s\n",
                 describe(std::current_exception()).c_str());
  }
}

/// Erases w's entry; the one loop left, if any, may retire its SIGCHLD handler now.
void unlist(const child_watcher* w) noexcept {
  std::lock_guard lock(listeners_mutex);
  auto& all = listeners();
  all.erase(w);
  if (all.size() == 1)
    post_check(all.begin()->second);
}

} // namespace

void sigchld_taken(const event_loop* by) noexcept {
  std::lock_guard lock(listeners_mutex);
  for (auto& [w, l] : listeners())
    if (l.loop != by) // `by` polls its own children: its SIGCHLD handler runs
      post_check(l);
}

// ---- child_process ----------------------------------------------------------------------------------

child_process::~child_process() { close_pidfd(); }

void child_process::close_pidfd() noexcept {
  if (pidfd < 0)
    return;
  if (loop != nullptr) {
    if (armed)
      loop->disarm(pidfd, io_dir::read);
    loop->forget_fd(pidfd);
  }
  armed = false;
  ::close(pidfd);
  pidfd = -1;
}

bool child_process::try_reap() noexcept {
  if (returncode)
    return true;
  int code = 0;
  const int r = wait_nohang(pid, pidfd, code);
  if (r == 0)
    return false;
  if (r < 0) {
    std::fprintf(stderr, "corio: child process %d (%s) was reaped elsewhere (SIGCHLD ignored?); returncode 255\n", pid,
                 program.c_str());
    code = 255; // asyncio's answer for a child whose status is lost
  }
  finish(code);
  return true;
}

void child_process::arm() {
  loop->arm(pidfd, io_dir::read, this);
  armed = true;
}

void child_process::ready() noexcept {
  armed = false;
  if (try_reap())
    return; // `this` may be gone now
  try {
    arm(); // readable without an exit: cannot happen for a pidfd, but re-arming is the safe answer
  } catch (...) {
    std::fprintf(stderr, "corio: cannot watch child process %d again\n", pid);
  }
}

void child_process::finish(int code) noexcept {
  returncode = code;
  const bool by_pidfd = pidfd >= 0;
  close_pidfd();
  while (listed_wait_node* w = waiters.pop_front())
    static_cast<transport_wait*>(w)->loop->wake(w);
  if (child_watcher* w = watcher) {
    watcher = nullptr;
    w->remove(pid, !by_pidfd); // last: it may drop the last reference to `this`
  }
}

int child_process::hand_off() noexcept {
  if (pidfd >= 0 && loop != nullptr) {
    if (armed)
      loop->disarm(pidfd, io_dir::read);
    loop->forget_fd(pidfd);
  }
  armed = false;
  loop = nullptr;
  watcher = nullptr;
  return std::exchange(pidfd, -1);
}

// ---- child_watcher ----------------------------------------------------------------------------------

child_watcher& child_watcher::of(event_loop& loop) {
  loop_services& s = services_of(loop); // loop_error if closed
  if (!s.children) {
    auto w = std::make_shared<child_watcher>(loop);
    w->self_ = w;
    s.children = std::move(w);
  }
  return *static_cast<child_watcher*>(s.children.get());
}

void child_watcher::add(const std::shared_ptr<child_process>& c) {
  if (c->pidfd < 0 && sigchld_ignored())
    throw std::system_error(ECHILD, std::generic_category(),
                            "corio: cannot watch " + c->program +
                                ": SIGCHLD is set to SIG_IGN and there is no pidfd, so its exit would go unseen");
  if (c->pidfd < 0 && !sigchld_) {
    {
      // Listed first: from here on, a SIGCHLD another loop takes makes this one poll (the try_reap
      // below covers the child's exit if it came earlier).
      std::lock_guard lock(listeners_mutex);
      listeners().emplace(this, sigchld_listener{&loop_, self_});
    }
    try {
      // Blocks SIGCHLD in this thread from now on; it then waits in the loop's signalfd.
      add_signal_handler(loop_, SIGCHLD, [self = self_] {
        if (auto w = self.lock())
          w->on_sigchld();
      });
    } catch (...) {
      unlist(this);
      throw;
    }
    sigchld_ = true;
  }
  children_.emplace(c->pid, c);
  c->watcher = this;
  if (c->pidfd < 0)
    ++sigchld_children_;
  if (c->pidfd >= 0) {
    try {
      c->arm();
    } catch (...) {
      children_.erase(c->pid);
      c->watcher = nullptr;
      throw;
    }
  } else {
    (void)c->try_reap(); // it may have exited before SIGCHLD was blocked: that signal is lost
  }
}

void child_watcher::remove(int pid, bool by_sigchld) noexcept {
  children_.erase(pid);
  if (by_sigchld && --sigchld_children_ == 0)
    retire();
}

void child_watcher::retire() noexcept {
  if (!sigchld_ || sigchld_children_ != 0)
    return;
  {
    std::lock_guard lock(listeners_mutex);
    auto& all = listeners();
    if (all.size() > 1)
      return; // another loop handles SIGCHLD: keep ours (it asks us again when it is the only one left)
    all.erase(this);
  }
  // The last child watched through SIGCHLD is gone: the loop stops handling it (the next such child
  // installs the handler again, then polls once for an exit it may have missed). A SIGCHLD that the
  // removal discards is passed on to the loops listed meanwhile (sigchld_taken).
  sigchld_ = false;
  try {
    remove_signal_handler(loop_, SIGCHLD);
  } catch (...) { // loop_error: not on the loop's thread; cannot happen (children are reaped there)
    std::fprintf(stderr, "corio: cannot remove the SIGCHLD handler: %s\n", describe(std::current_exception()).c_str());
  }
}

void child_watcher::check() noexcept {
  {
    std::lock_guard lock(listeners_mutex);
    if (auto it = listeners().find(this); it != listeners().end())
      it->second.check_posted = false; // first: a SIGCHLD taken during the poll queues another check
  }
  on_sigchld();
  retire();
}

void child_watcher::on_sigchld() noexcept {
  // Signals merge: one SIGCHLD may stand for several exits, so every child without a pidfd is polled.
  std::vector<std::shared_ptr<child_process>> polled;
  for (auto& [pid, c] : children_)
    if (c->pidfd < 0)
      polled.push_back(c);
  for (auto& c : polled)
    (void)c->try_reap();
}

child_watcher::~child_watcher() {
  if (sigchld_)
    unlist(this); // the signal handlers go next (loop_services), passing on a SIGCHLD they discard
  std::map<int, std::shared_ptr<child_process>> left = std::move(children_);
  children_.clear();
  std::vector<std::pair<int, int>> orphans;
  for (auto& [pid, c] : left) {
    c->watcher = nullptr;
    if (!c->try_reap())
      orphans.emplace_back(pid, c->hand_off());
  }
  // The SIGCHLD handler (if any) goes with the loop's other signal handlers, right after this.
  if (!orphans.empty())
    reap_in_background(std::move(orphans));
}

// ---- the background reaper --------------------------------------------------------------------------

namespace {

void reap_all(std::vector<std::pair<int, int>> orphans) noexcept {
  std::vector<pollfd> fds;
  while (!orphans.empty()) {
    fds.clear();
    bool any_pid_only = false;
    for (auto& [pid, fd] : orphans) {
      if (fd >= 0)
        fds.push_back(pollfd{fd, POLLIN, 0});
      else
        any_pid_only = true;
    }
    // Children without a pidfd are polled every 50 ms (this thread cannot take SIGCHLD from the loop).
    (void)::poll(fds.data(), fds.size(), any_pid_only ? 50 : -1);
    std::size_t k = 0;
    for (auto& [pid, fd] : orphans) {
      if (fd < 0)
        continue;
      // Readable: the child exited. The pidfd is closed before the child is reaped, so whoever sees
      // the child gone also sees the fd gone; P_PID is safe because an unreaped pid cannot be reused.
      if (fds[k++].revents != 0) {
        ::close(fd);
        fd = -1;
      }
    }
    for (std::size_t i = 0; i < orphans.size();) {
      int code = 0;
      if (orphans[i].second >= 0 || wait_nohang(orphans[i].first, -1, code) == 0) {
        ++i;
        continue;
      }
      orphans[i] = orphans.back();
      orphans.pop_back();
    }
  }
}

} // namespace

void reap_in_background(std::vector<std::pair<int, int>> orphans) noexcept {
  sigset_t all, old;
  ::sigfillset(&all);
  for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS})
    ::sigdelset(&all, s);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  std::vector<int> fds;
  for (auto& [pid, fd] : orphans)
    fds.push_back(fd);
  try {
    std::thread([orphans = std::move(orphans)]() mutable {
      ::pthread_setname_np(::pthread_self(), "corio-reaper");
      reap_all(std::move(orphans));
    }).detach();
  } catch (...) {
    std::fprintf(stderr, "corio: cannot start the thread that reaps the children left at loop close\n");
    for (int fd : fds)
      if (fd >= 0)
        ::close(fd);
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

} // namespace corio::detail
