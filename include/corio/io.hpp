// corio::readable / corio::writable: suspend until a file descriptor is ready (the article's "only
// resume when the I/O is ready").
#pragma once

#include <coroutine>

#include "corio/detail/io_waiter.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/event_loop.hpp"
#include "corio/this_task.hpp"

namespace corio {

namespace detail {
class io_awaiter final : public wait_node, public io_waiter {
public:
  io_awaiter(int fd, io_dir d) noexcept : fd_(fd), dir_(d) {}
  io_awaiter(const io_awaiter&) = delete;
  ~io_awaiter() { detach(); }

  bool await_ready() {
    loop_ = &await_point(dir_ == io_dir::read ? "readable()" : "writable()");
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) {
    handle = h;
    task = loop_->current_task();
    loop_->arm(fd_, dir_, this); // throws for a bad fd, or when another waiter has it: raised at the await
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
  bool armed_ = false;
  event_loop* loop_ = nullptr;
};
} // namespace detail

/// Suspends the running task until `fd` is readable (data, end of file, hang-up or error: a read will
/// not block). One reader per fd at a time: a second one gets loop_error. A bad fd, or one epoll cannot
/// watch (a regular file), raises std::system_error naming it. Cancellable. The loop keeps an fd's
/// registration between waits: before closing an fd you waited on, call event_loop::forget_fd(fd)
/// (corio::socket does it for you), or a new fd reusing the number may never become ready.
[[nodiscard]] inline detail::io_awaiter readable(int fd) noexcept { return {fd, detail::io_dir::read}; }
/// Suspends the running task until `fd` is writable (or has failed). As readable().
[[nodiscard]] inline detail::io_awaiter writable(int fd) noexcept { return {fd, detail::io_dir::write}; }

} // namespace corio
