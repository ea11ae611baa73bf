// accept_awaiter and connect_awaiter: one completion-based accept or connect on the io_uring backend
// (internal; see src/backend/uring.cpp).
#pragma once

#include <sys/socket.h>

#include <coroutine>

#include "corio/detail/io_waiter.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/event_loop.hpp"
#include "corio/net/address.hpp"
#include "corio/this_task.hpp"

namespace corio::detail {

/// `int r = co_await accept_awaiter(fd, peer, keep)`: the new connection's fd (the caller owns it; the
/// peer's address is in `peer`), or -errno (-ECANCELED: nothing happened, try again; -EBADF: the listener
/// was forgotten, i.e. closed). A connection an earlier accept took for nobody comes first, without
/// waiting (event_loop::take_accepted). `keep`: see backend::accept.
///
/// Cancellation: the task is woken at once and the accept abandoned; a connection the kernel accepted
/// for it anyway is kept by the backend for the next accept of the listener (event_loop::take_accepted).
/// Once a connection has been handed over, a cancellation is not raised here (the connection would be
/// lost with the exception) but at the task's next await.
class accept_awaiter final : public wait_node, public net_completion {
public:
  accept_awaiter(int fd, address& peer, bool keep) noexcept : fd_(fd), peer_(peer), keep_(keep) {}
  accept_awaiter(const accept_awaiter&) = delete;
  ~accept_awaiter() { detach(); }

  bool await_ready() {
    loop_ = &await_point("accept");
    sockaddr_storage raw;
    unsigned len = sizeof raw;
    res_ = loop_->take_accepted(fd_, &raw, len);
    if (res_ < 0) {
      res_ = -125; // -ECANCELED until finished
      return false;
    }
    peer_ = address::from_raw(&raw, len);
    return true;
  }
  void await_suspend(std::coroutine_handle<> h) {
    handle = h;
    task = loop_->current_task();
    loop_->start_accept(fd_, this, keep_);
    pending_ = true;
    event_loop::begin_wait(this);
  }
  int await_resume() const {
    if (res_ < 0 && task != nullptr)
      task->check_cancel();
    return res_;
  }
  void finished(int res, const void* addr, unsigned len) noexcept override {
    pending_ = false;
    if (res >= 0)
      peer_ = address::from_raw(addr, len);
    res_ = res;
    loop_->wake(this);
  }
  void detach() noexcept override {
    if (pending_) {
      pending_ = false;
      loop_->abandon_accept(fd_);
    }
  }
  [[nodiscard]] const char* what() const noexcept override { return "accept"; }

private:
  int fd_;
  address& peer_;
  bool keep_;
  bool pending_ = false;
  int res_ = -125; // -ECANCELED until finished
  event_loop* loop_ = nullptr;
};

/// `int r = co_await connect_awaiter(fd, remote)`: 0 once connected, or -errno (-EBADF: the socket was
/// closed meanwhile). Cancellation abandons the connect (the backend cancels it); the socket is then in
/// no defined state and should be closed, as after a cancelled asyncio sock_connect.
class connect_awaiter final : public wait_node, public net_completion {
public:
  connect_awaiter(int fd, const address& remote) noexcept : fd_(fd), remote_(remote) {}
  connect_awaiter(const connect_awaiter&) = delete;
  ~connect_awaiter() { detach(); }

  bool await_ready() {
    loop_ = &await_point("connect");
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) {
    handle = h;
    task = loop_->current_task();
    loop_->start_connect(fd_, remote_.data(), static_cast<unsigned>(remote_.size()), this);
    pending_ = true;
    event_loop::begin_wait(this);
  }
  int await_resume() const {
    if (task != nullptr)
      task->check_cancel();
    return res_;
  }
  void finished(int res, const void*, unsigned) noexcept override {
    pending_ = false;
    res_ = res;
    loop_->wake(this);
  }
  void detach() noexcept override {
    if (pending_) {
      pending_ = false;
      loop_->abandon_connect(fd_);
    }
  }
  [[nodiscard]] const char* what() const noexcept override { return "connect"; }

private:
  int fd_;
  const address& remote_;
  bool pending_ = false;
  int res_ = -125;
  event_loop* loop_ = nullptr;
};

} // namespace corio::detail
