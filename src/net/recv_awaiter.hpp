// recv_awaiter: one completion-based recv on the io_uring backend (internal; see src/backend/uring.cpp).
#pragma once

#include <coroutine>
#include <cstring>
#include <span>

#include "corio/detail/io_waiter.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/event_loop.hpp"
#include "corio/this_task.hpp"

namespace corio::detail {

/// `long r = co_await recv_awaiter(fd, buf)`: bytes copied into buf, 0 at end of file, or -errno
/// (-ECANCELED, -ENOBUFS: nothing happened, try again; -EBADF: the fd was forgotten, i.e. closed).
///
/// Cancellation: the recv is cancelled in the kernel (event_loop::cancel_recv) and the task keeps waiting
/// for its completion, one loop iteration in practice: -ECANCELED, and the cancellation is raised here
/// with nothing transferred; or the bytes the kernel took first, which are returned, and the cancellation
/// is raised at the task's next await (cancellation is level-triggered). So a cancelled sock_recv never
/// hides bytes. Should the cancel not be queued (a full submission ring), or the frame be destroyed
/// mid-wait, the recv is abandoned instead: bytes it took are stashed by the backend and handed to the
/// next read of the fd (event_loop::take_stashed).
class recv_awaiter final : public wait_node, public io_completion {
public:
  recv_awaiter(int fd, std::span<char> buf) noexcept : fd_(fd), buf_(buf) {}
  recv_awaiter(const recv_awaiter&) = delete;
  ~recv_awaiter() { detach(); }

  bool await_ready() {
    loop_ = &await_point("recv");
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) {
    handle = h;
    task = loop_->current_task();
    loop_->start_recv(fd_, buf_.size(), this);
    pending_ = true;
    event_loop::begin_wait(this);
  }
  long await_resume() const {
    if (res_ <= 0 && task != nullptr)
      task->check_cancel();
    return res_;
  }
  void completed(long res, const char* data) noexcept override {
    pending_ = false;
    if (res > 0)
      std::memcpy(buf_.data(), data, static_cast<std::size_t>(res));
    res_ = res;
    loop_->wake(this);
  }
  bool on_cancel() noexcept override {
    if (pending_ && loop_->cancel_recv(fd_))
      return false; // completed() follows soon, with the bytes or -ECANCELED
    detach();
    return true;
  }
  void detach() noexcept override {
    if (pending_) {
      pending_ = false;
      loop_->abandon_recv(fd_);
    }
  }
  [[nodiscard]] const char* what() const noexcept override { return "recv"; }

private:
  int fd_;
  std::span<char> buf_;
  long res_ = -125; // -ECANCELED until completed
  bool pending_ = false;
  event_loop* loop_ = nullptr;
};

} // namespace corio::detail
