// The waiter every synchronisation primitive queues, the acquire awaiter of lock and semaphore, and
// lock_guard (internal building blocks of corio/sync/*.hpp).
#pragma once

#include <coroutine>
#include <mutex>
#include <utility>

#include "corio/detail/task_state.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/event_loop.hpp"
#include "corio/this_task.hpp"

namespace corio {

/// Owns one acquisition of a lock or a semaphore and releases it when destroyed (`async with`).
/// Obtained from `co_await x.scoped()`. Move-only. The destructor releases through the primitive's
/// guard_release(): a lock that is not locked any more is left alone (a frame destroyed at loop
/// teardown in the middle of a condition wait, which had released it), and so is one released by
/// hand and handed to a waiter that has not run yet (a second release); a bounded_semaphore
/// over-released by an extra manual release() terminates, as any exception leaving a destructor does
/// — call unlock() to get it as an exception instead.
template <class Lockable> class [[nodiscard]] lock_guard {
public:
  lock_guard() noexcept = default;
  lock_guard(Lockable& l, std::adopt_lock_t) noexcept : l_(&l) {}
  lock_guard(lock_guard&& o) noexcept : l_(std::exchange(o.l_, nullptr)) {}
  lock_guard& operator=(lock_guard o) noexcept {
    std::swap(l_, o.l_);
    return *this;
  }
  ~lock_guard() {
    if (l_ != nullptr)
      l_->guard_release();
  }
  /// Releases now (once); the destructor then does nothing.
  void unlock() {
    if (l_ != nullptr)
      std::exchange(l_, nullptr)->release();
  }
  [[nodiscard]] bool owns_lock() const noexcept { return l_ != nullptr; }
  explicit operator bool() const noexcept { return owns_lock(); }

private:
  Lockable* l_ = nullptr;
};

namespace detail {

/// A task waiting on a lock, semaphore, event, condition, barrier or queue: a wait_node that lives in
/// the awaiting coroutine's frame (no allocation per wait), linked into its primitive's FIFO wait_list.
/// The protocol (docs/design.md, "The event loop"), shared by every primitive:
/// - await_ready(): start() makes the await point's cancellation check; then a fast path.
/// - await_suspend(): suspend_on(list) links the node and registers it as the task's wait.
/// - The primitive completes the wait with grant(): the node leaves its list, is marked granted (it now
///   owns what it waited for: the lock, a permit, an item) and its task is woken.
/// - A cancel while still linked withdraws the node (on_cancel → detach) and resumes the task.
/// - A cancel after grant() (woken, not yet run) finds `granted()` in await_resume, which must pass what
///   it was given on to the next waiter (or put it back) before raising: no wake-up is ever lost.
/// - The destructor unlinks a node still linked (a frame destroyed at loop teardown). The primitive
///   should outlive its waiters; if it dies first, its wait_list unlinks them, and a waiter it left
///   behind can still be cancelled (it raises without touching the primitive). A node destroyed after
///   grant() but before it ran (teardown only) does not pass on what it was given: it only leaves the
///   list a lock, semaphore or queue keeps its woken waiters in (enqueue() after grant()), if that is
///   still there. That list is also how a woken waiter knows its primitive is alive when it runs: still
///   linked there, the primitive is; unlinked, it died meanwhile (its lists unlinked everyone).
class sync_waiter : public listed_wait_node {
public:
  sync_waiter() = default;
  sync_waiter(const sync_waiter&) = delete;
  sync_waiter& operator=(const sync_waiter&) = delete;

  void detach() noexcept override {
    if (linked)
      list_->remove(this);
  }
  /// Completes the wait: unlinks the node and wakes its task (it runs in a later loop iteration).
  void grant() {
    detach();
    granted_ = true;
    loop_->wake(this);
  }
  /// Links the node at the back of `l` (also used to move a waiter from one list to another).
  void enqueue(wait_list& l) noexcept {
    list_ = &l;
    l.push_back(this);
  }
  [[nodiscard]] bool granted() const noexcept { return granted_; }

protected:
  ~sync_waiter() { detach(); }
  void start(const char* what) { loop_ = &await_point(what); }
  void suspend_on(wait_list& l, std::coroutine_handle<> h) noexcept {
    handle = h;
    task = loop_->current_task();
    enqueue(l);
    event_loop::begin_wait(this);
  }
  [[nodiscard]] bool cancelling() const noexcept { return task != nullptr && task->cancelling(); }

  event_loop* loop_ = nullptr;
  wait_list* list_ = nullptr;
  bool granted_ = false;
};

/// Acquires a lock or one permit of a semaphore. Owner provides (as friends): try_take() — the fast path,
/// which succeeds only when nobody waits (so no newcomer overtakes a waiter); waiters_; pass_on() — hand
/// the unit to the first waiter (grant(), then enqueue() it in the owner's list of woken waiters, which
/// it leaves when it runs), or make it available again; and the names acquire_name / wait_name.
/// With Guard, the result is a lock_guard that releases it.
template <class Owner, bool Guard> class [[nodiscard]] acquire_awaiter final : public sync_waiter {
public:
  explicit acquire_awaiter(Owner& o) noexcept : owner_(&o) {}

  bool await_ready() {
    start(Owner::acquire_name);
    return owner_->try_take();
  }
  void await_suspend(std::coroutine_handle<> h) noexcept { suspend_on(owner_->waiters_, h); }
  auto await_resume() {
    const bool handed = linked; // in the owner's list of woken waiters: granted, and the owner is alive
    detach();                   // the unit is this task's now (the lock is no longer being handed over)
    if (cancelling()) {
      if (handed) // handed the unit, then cancelled before running: the next waiter gets it
        owner_->pass_on();
      task->raise_cancel(); // (granted by an owner that died since: there is nothing to pass on)
    }
    if constexpr (Guard)
      return lock_guard<Owner>(*owner_, std::adopt_lock);
  }
  [[nodiscard]] const char* what() const noexcept override { return Owner::wait_name; }

private:
  Owner* owner_;
};

} // namespace detail
} // namespace corio
