// corio::task_group: structured concurrency (asyncio.TaskGroup).
#pragma once

#include <coroutine>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "corio/detail/wait_node.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/spawn.hpp"
#include "corio/this_task.hpp"

namespace corio {

/// Runs child tasks and waits for all of them (asyncio.TaskGroup, without `async with`):
///
///     corio::task_group group;
///     group.spawn(fetch(a));
///     group.spawn(fetch(b));
///     co_await group.wait();   // every child has finished here
///
/// - When a child fails (an exception other than cancelled_error), the other children are cancelled;
///   wait() then rethrows the failure — or, when several children failed, an exception_group holding
///   every failure in the order they happened.
/// - If the task awaiting wait() is cancelled, the children are cancelled, waited for, and wait() raises
///   cancelled_error — unless a child failed meanwhile (say in its cleanup): then its failure is raised,
///   as asyncio's TaskGroup does, and the task's cancellation stays pending for its next await.
/// - Unlike asyncio, a failing child does not cancel the parent's own code between spawn() and wait()
///   (C++ has no `async with` to turn that cancellation back into the group's error): code there that
///   waits for a child's work should also watch for the group's failure, or run in a child itself.
/// - spawn() throws invalid_state_error after wait() finished, and once the group is shutting down:
///   after a child failed, or once the parent's cancellation reached wait() and the children are being
///   cancelled (a child catching its cancellation cannot add a sibling then; asyncio refuses too).
/// - Destroying a group that was not waited for cancels the children still running (they finish on
///   their own later): always `co_await group.wait()`.
class task_group {
  struct state;

public:
  task_group() : s_(std::make_shared<state>()) {}
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;
  ~task_group() { s_->cancel_children(); }

  /// Spawns `t` as a child of the group.
  template <class T> join_handle<T> spawn(task<T> t, std::string_view name = {}) {
    check_open("spawn");
    return adopt(corio::spawn(std::move(t), name));
  }
  /// Spawns `t` as a child of the group with corio::spawn_eager: it runs at once, up to its first
  /// suspension (asyncio 3.14's TaskGroup.create_task(eager_start=True)). A child that fails before it
  /// suspends fails the group as any child does.
  template <class T> join_handle<T> spawn_eager(task<T> t, std::string_view name = {}) {
    check_open("spawn_eager");
    return adopt(corio::spawn_eager(std::move(t), name));
  }

  /// Number of children still running.
  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(s_->pending); }

  class awaiter final : public detail::wait_node {
  public:
    explicit awaiter(std::shared_ptr<state> s) noexcept : s_(std::move(s)) {}
    ~awaiter() {
      if (s_->waiter == this)
        s_->waiter = nullptr;
    }
    bool await_ready() {
      loop_ = &detail::running_loop("task_group::wait()");
      if (detail::task_state* t = loop_->current_task(); t != nullptr && t->cancelling())
        s_->cancel_children(); // cancelled before waiting: still wait for the children to finish
      return s_->pending == 0;
    }
    void await_suspend(std::coroutine_handle<> h) {
      handle = h;
      task = loop_->current_task();
      s_->waiter = this;
      s_->loop = loop_;
      event_loop::begin_wait(this);
    }
    void await_resume() {
      s_->closed = true;
      s_->rethrow(); // a child's failure wins over the waiter's cancellation (asyncio's too)
      if (task != nullptr && task->cancelling())
        task->raise_cancel();
    }
    void detach() noexcept override { s_->waiter = nullptr; }
    bool on_cancel() noexcept override { // cancel the children, and keep waiting for them
      s_->cancel_children();
      return false;
    }
    [[nodiscard]] const char* what() const noexcept override { return "task_group::wait()"; }

  private:
    std::shared_ptr<state> s_;
    event_loop* loop_ = nullptr;
  };

  /// Waits for every child; see the class comment for errors and cancellation.
  [[nodiscard]] awaiter wait() { return awaiter(s_); }

private:
  // asyncio's create_task() refuses too once the group is shutting down: a child spawned then would
  // never be cancelled, and the parent's wait() would wait for it forever.
  void check_open(const char* what) const {
    const char* why = nullptr;
    if (s_->closed)
      why = "() after the group finished";
    else if (!s_->errors.empty())
      why = "() after a child failed: the group is shutting down";
    else if (s_->cancelled_children)
      why = "() while the group is shutting down: its children are being cancelled";
    if (why != nullptr)
      throw invalid_state_error(std::string("corio: task_group::") + what + why);
  }
  template <class T> join_handle<T> adopt(join_handle<T> h) {
    ++s_->pending;
    s_->cancellers.push_back([h]() mutable { h.cancel(); });
    h.add_done_callback([st = s_, h]() mutable { st->child_done(h.exception()); });
    return h;
  }
  struct state {
    int pending = 0;
    bool closed = false;
    bool cancelled_children = false;
    std::vector<std::exception_ptr> errors;
    std::vector<detail::unique_function> cancellers;
    awaiter* waiter = nullptr;
    event_loop* loop = nullptr;

    void cancel_children() noexcept {
      if (std::exchange(cancelled_children, true))
        return;
      for (auto& c : cancellers)
        c();
    }
    void child_done(std::exception_ptr e) {
      --pending;
      if (e && !is_cancellation(e)) {
        errors.push_back(std::move(e));
        cancel_children();
      }
      if (pending == 0 && waiter != nullptr) {
        awaiter* w = std::exchange(waiter, nullptr);
        loop->wake(w);
      }
      if (pending == 0)
        cancellers.clear(); // they hold join_handles on the children
    }
    void rethrow() const {
      if (errors.size() == 1)
        std::rethrow_exception(errors.front());
      if (errors.size() > 1) {
        std::string message = std::string("task_group: ") + std::to_string(errors.size()) + " children failed:";
        for (const auto& e : errors)
          message.append(" ").append(describe(e)).append(";"); // not " " + ...: g++ 12 -O3 -Wrestrict
        message.pop_back();
        throw exception_group(std::move(message), errors);
      }
    }
  };

  std::shared_ptr<state> s_;
};

} // namespace corio
