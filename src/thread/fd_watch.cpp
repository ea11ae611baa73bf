// corio::add_reader / add_writer / remove_reader / remove_writer: asyncio's callback-style fd watching,
// on the loop's readiness waits (the same arm/disarm readable() and writable() use).
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/io.hpp"
#include "loop_services.hpp"

namespace corio::detail {

namespace {

/// One fd and direction being watched. Armed (one-shot) while it waits; ready() queues fire() as a
/// loop callback, which calls the user's function and arms again unless the watch was removed. The
/// queued callback holds a shared_ptr: a watch removed meanwhile is kept alive and does nothing.
class fd_watch final : public io_waiter, public std::enable_shared_from_this<fd_watch> {
public:
  fd_watch(event_loop& loop, int fd, io_dir dir, unique_function fn) noexcept
      : loop_(&loop), fd_(fd), dir_(dir), fn_(std::move(fn)) {}
  fd_watch(const fd_watch&) = delete;
  fd_watch& operator=(const fd_watch&) = delete;
  ~fd_watch() { stop(); }

  void arm() {
    loop_->arm(fd_, dir_, this); // not kept: the fd is the caller's, who may close it after removing us
    armed_ = true;
  }
  /// add_reader / add_writer again: the new function from the next call on. Inside the callback that is
  /// all; otherwise the fd is registered anew, since the number may now be another file (the caller
  /// closed the old one without removing it), and a watch whose arm failed is armed again. Raises what
  /// arm() raises (the watch then stays unarmed).
  void replace(unique_function fn) {
    fn_ = std::move(fn);
    if (busy_)
      return; // queued or running: fire() arms it again when it is done
    active_ = true;
    disarm();
    arm();
  }
  /// Removed: disarmed now; a fire() already queued does nothing.
  void stop() noexcept {
    active_ = false;
    disarm();
  }

  void ready() noexcept override {
    armed_ = false;
    try {
      loop_->call_soon([self = shared_from_this()] { self->fire(); });
      busy_ = true;
    } catch (...) { // out of memory queueing the callback: say so; the watch stays, unarmed
      loop_->call_exception_handler({std::string("add_") + (dir_ == io_dir::read ? "reader" : "writer") +
                                         ": the callback could not be queued; fd " + std::to_string(fd_) +
                                         " is no longer watched",
                                     std::current_exception(),
                                     {}});
    }
  }

private:
  void disarm() noexcept {
    if (armed_) {
      armed_ = false;
      loop_->disarm(fd_, dir_);
    }
  }

  void fire() {
    if (!active_) {
      busy_ = false;
      return;
    }
    // The function runs from a local: add_reader() for this fd inside it replaces fn_, not the running
    // function. Afterwards the watch is armed again (also when fn raised: the loop reports it, and
    // asyncio keeps the reader too), unless fn removed it.
    unique_function f = std::move(fn_);
    struct after {
      fd_watch* w;
      unique_function* f;
      ~after() {
        w->busy_ = false;
        if (!w->fn_)
          w->fn_ = std::move(*f); // not replaced meanwhile
        if (w->active_ && !w->armed_) {
          try {
            w->arm();
          } catch (...) {
            w->active_ = false;
            w->loop_->call_exception_handler(
                {"fd " + std::to_string(w->fd_) +
                     " can no longer be watched (closed before remove_reader / remove_writer?)",
                 std::current_exception(),
                 {}});
          }
        }
      }
    } again{this, &f};
    f();
  }

  event_loop* loop_;
  int fd_;
  io_dir dir_;
  unique_function fn_;
  bool armed_ = false;
  bool active_ = true;
  bool busy_ = false; // fire() is queued or running
};

/// A loop's watches, by fd and direction.
struct fd_watches {
  std::map<std::pair<int, int>, std::shared_ptr<fd_watch>> by_fd;
  ~fd_watches() {
    for (auto& [key, w] : by_fd)
      w->stop();
  }
};

void add_watch(event_loop& loop, int fd, io_dir dir, unique_function fn, const char* what) {
  if (!fn)
    throw std::invalid_argument(std::string("corio: ") + what + ": empty callback");
  if (fd < 0)
    throw std::invalid_argument(std::string("corio: ") + what + ": negative fd " + std::to_string(fd));
  check_loop_thread(loop, what);
  loop_services& s = services_of(loop); // loop_error if closed
  if (!s.fd_watches)
    s.fd_watches = std::make_shared<fd_watches>();
  auto& all = static_cast<fd_watches*>(s.fd_watches.get())->by_fd;
  const std::pair<int, int> key{fd, static_cast<int>(dir)};
  if (auto it = all.find(key); it != all.end()) {
    it->second->replace(std::move(fn)); // asyncio replaces the callback
    return;
  }
  auto w = std::make_shared<fd_watch>(loop, fd, dir, std::move(fn));
  w->arm(); // raises for a bad fd, one epoll cannot watch, or one a task awaits in that direction
  all.emplace(key, std::move(w));
}

bool remove_watch(event_loop& loop, int fd, io_dir dir, const char* what) {
  check_loop_thread(loop, what);
  loop_services* s = find_services(loop);
  if (s == nullptr || !s->fd_watches)
    return false;
  auto& all = static_cast<fd_watches*>(s->fd_watches.get())->by_fd;
  auto it = all.find({fd, static_cast<int>(dir)});
  if (it == all.end())
    return false;
  std::shared_ptr<fd_watch> w = std::move(it->second);
  all.erase(it);
  w->stop();
  return true;
}

} // namespace

} // namespace corio::detail

namespace corio {

void add_reader(event_loop& loop, int fd, detail::unique_function fn) {
  detail::add_watch(loop, fd, detail::io_dir::read, std::move(fn), "add_reader()");
}
void add_writer(event_loop& loop, int fd, detail::unique_function fn) {
  detail::add_watch(loop, fd, detail::io_dir::write, std::move(fn), "add_writer()");
}
bool remove_reader(event_loop& loop, int fd) {
  return detail::remove_watch(loop, fd, detail::io_dir::read, "remove_reader()");
}
bool remove_writer(event_loop& loop, int fd) {
  return detail::remove_watch(loop, fd, detail::io_dir::write, "remove_writer()");
}

} // namespace corio
