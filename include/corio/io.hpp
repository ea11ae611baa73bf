// corio::readable / corio::writable: suspend until a file descriptor is ready (the article's "only
// resume when the I/O is ready").
#pragma once

#include <coroutine>

#include "corio/detail/io_waiter.hpp"
#include "corio/detail/unique_function.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/event_loop.hpp"
#include "corio/this_task.hpp"

namespace corio {

namespace detail {
class io_awaiter final : public wait_node, public io_waiter {
public:
  io_awaiter(int fd, io_dir d, bool kept = false) noexcept : fd_(fd), dir_(d), kept_(kept) {}
  io_awaiter(const io_awaiter&) = delete;
  ~io_awaiter() { detach(); }

  bool await_ready() {
    loop_ = &await_point(dir_ == io_dir::read ? "readable()" : "writable()");
    // On io_uring, bytes a recv took from the kernel for nobody wait in the loop, and every read of the
    // fd through the loop takes them first: the fd reads at once, though the kernel's buffer is empty.
    return dir_ == io_dir::read && loop_->has_stashed(fd_);
  }
  void await_suspend(std::coroutine_handle<> h) {
    handle = h;
    task = loop_->current_task();
    loop_->arm(fd_, dir_, this, kept_); // throws for a bad fd, or when another waiter has it: raised at the await
    armed_ = true;
    event_loop::begin_wait(this);
  }
  void await_resume() const {
    if (task != nullptr)
      task->check_cancel();
  }
  void ready() noexcept override {
    armed_ = false;
    loop_->wake(this);
  }
  void detach() noexcept override {
    if (armed_) {
      loop_->disarm(fd_, dir_);
      armed_ = false;
    }
  }
  [[nodiscard]] const char* what() const noexcept override {
    return dir_ == io_dir::read ? "readable(fd)" : "writable(fd)";
  }

private:
  int fd_;
  io_dir dir_;
  bool kept_;
  bool armed_ = false;
  event_loop* loop_ = nullptr;
};

/// For an fd whose owner calls event_loop::forget_fd() before closing it (corio::socket): the loop keeps
/// its registration between waits, saving a system call per wait.
[[nodiscard]] inline io_awaiter readable_kept(int fd) noexcept { return {fd, io_dir::read, true}; }
[[nodiscard]] inline io_awaiter writable_kept(int fd) noexcept { return {fd, io_dir::write, true}; }
} // namespace detail

/// Suspends the running task until `fd` is readable (data, end of file, hang-up or error: a read will
/// not block; or, on io_uring, the loop holds bytes a recv took from the kernel for it, which sock_recv
/// returns first). One reader per fd at a time: a second one gets loop_error. A bad fd, or one epoll cannot
/// watch (a regular file), raises std::system_error naming it. Cancellable. Closing the fd afterwards
/// needs no ceremony: each wait registers it with the kernel anew (one epoll_ctl), so a new fd reusing
/// the number is watched correctly. (Closing it while a task still waits on it: call
/// event_loop::forget_fd(fd) first, which wakes that task.) corio::socket's own waits skip that system
/// call, because a socket tells the loop when it closes.
[[nodiscard]] inline detail::io_awaiter readable(int fd) noexcept { return {fd, detail::io_dir::read}; }
/// Suspends the running task until `fd` is writable (or has failed). As readable().
[[nodiscard]] inline detail::io_awaiter writable(int fd) noexcept { return {fd, detail::io_dir::write}; }

/// asyncio's loop.add_reader(fd, callback): calls fn() on the loop's thread, as a loop callback, each
/// time `fd` is readable, until remove_reader(loop, fd) (level-triggered: again and again while data is
/// there). A second add_reader for the same fd replaces fn (also from inside fn) and, outside fn,
/// registers the fd anew (its number may name another file by then). An exception from fn
/// goes to the loop's exception handler and the fd stays watched. The fd is not owned: call
/// remove_reader before closing it. Loop thread only (loop_error from another thread while the loop
/// runs, or on a closed loop); a bad fd, or one epoll cannot watch (a regular file), raises
/// std::system_error; an fd a task awaits with readable() meanwhile raises loop_error. Closing the loop
/// removes every reader and writer.
void add_reader(event_loop& loop, int fd, detail::unique_function fn);
/// Stops calling the reader of `fd`; false if there was none. A call already queued does not happen.
bool remove_reader(event_loop& loop, int fd);
/// asyncio's loop.add_writer(fd, callback): as add_reader, each time `fd` is writable.
void add_writer(event_loop& loop, int fd, detail::unique_function fn);
/// Stops calling the writer of `fd`; false if there was none.
bool remove_writer(event_loop& loop, int fd);

} // namespace corio
