// corio::as_completed: take tasks' handles in the order the tasks finish (asyncio.as_completed).
#pragma once

#include <coroutine>
#include <cstddef>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "corio/clock.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/spawn.hpp"
#include "corio/this_task.hpp"
#include "corio/wait.hpp"

namespace corio {

/// The handles of some tasks, handed out in the order the tasks finish: `co_await next()` gives the
/// join_handle of the next task to finish (its result() is then available at once), until remaining()
/// is 0. Made by corio::as_completed().
///
///     auto finished = corio::as_completed(std::move(handles));
///     while (finished) {
///       corio::join_handle<int> h = co_await finished.next();
///       use(h.result());  // raises the task's exception, if it raised one
///     }
///
/// - Completion order is recorded from the start (with done callbacks, see wait.hpp), whether or not a
///   next() is pending; tasks already done when it is made come first, in their original order. Tasks
///   finishing in the same loop iteration come in the order they finished (in random order with the
///   loop's `shuffle` option).
/// - next() never raises a task's exception. Cancelling the awaiting task raises cancelled_error from
///   next() and cancels nothing; the handle it would have given stays queued for the next call.
/// - With a timeout (asyncio's as_completed(aws, timeout)), once it passes next() gives the handles of the
///   tasks that finished before it, then raises timeout_error for each one left (each counts as handed
///   out: remaining() goes down, so a `while (q)` loop that catches it ends after as many next() as there
///   were handles, as asyncio's gives len(aws) awaitables); tasks finishing later are not handed out. It
///   cancels nothing.
/// - One next() at a time: a second concurrent one raises invalid_state_error, as does next() once
///   every handle was handed out.
/// - Its tasks not done must run on one loop, which the queue then belongs to: the running loop if it is
///   made in one (a timeout needs one), else theirs. A handle of another loop's task that is not done
///   makes as_completed() raise loop_error before any callback is registered (a done one is accepted, as
///   by `co_await handle`), and next() awaited on another loop than the queue's raises loop_error.
/// - Neither copyable nor movable (callbacks point at it); it must outlive its pending next().
///   Destroying it early is fine: the tasks run on.
template <class T> class [[nodiscard]] as_completed_queue final : detail::completion_listener {
public:
  explicit as_completed_queue(std::vector<join_handle<T>> handles, std::optional<duration> timeout = std::nullopt)
      : handles_(std::move(handles)) {
    // The tasks not done must all run on one loop, the queue's: the running one (the timeout's), else the
    // first such task's. Checked for every handle before a callback is put on any.
    event_loop* here = timeout ? &detail::running_loop("as_completed()") : event_loop::current();
    for (const auto& h : handles_) {
      if (here == nullptr)
        here = h.loop_if_pending();
      detail::check_loop(h, here, "as_completed()");
      if (h.loop_if_pending() != nullptr)
        owner_ = here;
    }
    order_.reserve(handles_.size()); // on_completion then never allocates
    try {
      for (std::size_t i = 0; i < handles_.size(); ++i) {
        if (handles_[i].done()) {
          order_.push_back(i);
        } else {
          if (!hub_) {
            hub_ = std::make_shared<detail::completion_hub>();
            hub_->listener = this;
          }
          detail::watch_completion(handles_[i], hub_, i);
        }
      }
      if (timeout && ready() < remaining())
        timer_ = here->call_later(*timeout, [this] { expire(); });
    } catch (...) {
      if (hub_) // no destructor will run: the callbacks already registered must not find us
        hub_->listener = nullptr;
      throw;
    }
  }
  as_completed_queue(const as_completed_queue&) = delete;
  as_completed_queue& operator=(const as_completed_queue&) = delete;
  ~as_completed_queue() {
    timer_.cancel();
    if (hub_)
      hub_->listener = nullptr;
  }

  /// Handles not handed out yet.
  [[nodiscard]] std::size_t remaining() const noexcept { return handles_.size() - taken_ - timed_out_; }
  /// Handles whose task finished and that next() will give without waiting.
  [[nodiscard]] std::size_t ready() const noexcept { return order_.size() - taken_; }
  /// True while remaining() > 0.
  explicit operator bool() const noexcept { return remaining() > 0; }

  class [[nodiscard]] next_awaiter final : public detail::wait_node {
  public:
    explicit next_awaiter(as_completed_queue& q) noexcept : q_(&q) {}
    next_awaiter(const next_awaiter&) = delete;
    next_awaiter& operator=(const next_awaiter&) = delete;
    ~next_awaiter() {
      // Destroyed while suspended (its frame destroyed at loop teardown): no longer the task's wait.
      if (q_->waiter_ == this && task != nullptr && task->waiting == this)
        task->waiting = nullptr;
      detach();
    }

    bool await_ready() {
      loop_ = &detail::await_point("as_completed next()");
      if (q_->owner_ != nullptr && q_->owner_ != loop_) // its callbacks run there: nothing would wake us here
        throw loop_error("corio: as_completed next(): the queue's tasks belong to another event loop");
      if (q_->remaining() == 0)
        throw invalid_state_error("corio: as_completed next(): every handle was already handed out");
      if (q_->waiter_ != nullptr)
        throw invalid_state_error("corio: as_completed next(): another next() is already pending");
      if (q_->ready() == 0 && q_->expired_) {
        ++q_->timed_out_;
        throw timeout_error();
      }
      return q_->ready() > 0;
    }
    void await_suspend(std::coroutine_handle<> h) noexcept {
      handle = h;
      task = loop_->current_task();
      q_->waiter_ = this;
      event_loop::begin_wait(this);
    }
    join_handle<T> await_resume() {
      if (task != nullptr)
        task->check_cancel(); // before taking: the handle stays queued
      if (q_->ready() == 0) { // woken by the timeout
        ++q_->timed_out_;
        throw timeout_error();
      }
      if (q_->remaining() == 1)
        q_->timer_.cancel();
      return std::move(q_->handles_[q_->order_[q_->taken_++]]);
    }
    void detach() noexcept override {
      if (q_->waiter_ == this)
        q_->waiter_ = nullptr;
    }
    [[nodiscard]] const char* what() const noexcept override { return "as_completed next()"; }

  private:
    friend as_completed_queue;
    as_completed_queue* q_;
    event_loop* loop_ = nullptr;
  };

  /// Awaits the next task to finish and gives its handle.
  next_awaiter next() noexcept { return next_awaiter(*this); }

private:
  void expire() noexcept {
    expired_ = true;
    if (hub_)
      hub_->listener = nullptr; // later completions are not handed out
    if (next_awaiter* w = std::exchange(waiter_, nullptr))
      w->loop_->wake(w);
  }
  void on_completion(std::size_t index) override {
    order_.push_back(index);
    if (next_awaiter* w = std::exchange(waiter_, nullptr))
      w->loop_->wake(w);
  }

  std::vector<join_handle<T>> handles_;
  std::vector<std::size_t> order_; // indices of finished tasks, in completion order; [taken_, end) not handed out
  std::size_t taken_ = 0;
  std::size_t timed_out_ = 0; // timeout_errors raised by next(): each stands for one handle
  std::shared_ptr<detail::completion_hub> hub_;
  next_awaiter* waiter_ = nullptr; // the pending next(), if any
  timer_handle timer_;             // the timeout, if one was given
  bool expired_ = false;           // the timeout passed
  event_loop* owner_ = nullptr;    // the loop of the tasks not done when it was made (none: all were)
};

/// Hands out `handles` in the order their tasks finish (asyncio.as_completed); see as_completed_queue.
/// An empty vector gives a queue with remaining() == 0.
template <class T> [[nodiscard]] as_completed_queue<T> as_completed(std::vector<join_handle<T>> handles) {
  return as_completed_queue<T>(std::move(handles));
}
/// as_completed() with a timeout from now (asyncio.as_completed(aws, timeout)): next() raises
/// timeout_error once it passed and the tasks finished before it were handed out.
template <class T>
[[nodiscard]] as_completed_queue<T> as_completed(std::vector<join_handle<T>> handles, duration timeout) {
  return as_completed_queue<T>(std::move(handles), timeout);
}

} // namespace corio
