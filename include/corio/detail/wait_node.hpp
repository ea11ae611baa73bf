// wait_node: a suspended coroutine waiting on a loop object, that cancellation can withdraw (internal).
#pragma once

#include <coroutine>
#include <cstddef>
#include <type_traits>

namespace corio::detail {

struct task_state;

/// A coroutine suspended on something of the loop's (a timer, an fd, a future, a lock...). Whoever
/// completes the wait calls wake(); cancelling the waiting task calls cancel(), which withdraws the node
/// from its source (detach()) and resumes the coroutine, whose await_resume() then raises.
struct wait_node {
  std::coroutine_handle<> handle;
  task_state* task = nullptr; // the task to resume as (null: not inside a task)

  /// Withdraws the node from its source; called before a cancelled coroutine is resumed.
  virtual void detach() noexcept = 0;
  /// The waiting task was cancelled. Return true to be resumed now (after detach(); await_resume then
  /// raises), or false to keep waiting (a join forwards the cancel to the task it awaits instead).
  /// Returning false may also mean "I completed the wait myself with loop.wake(this)" (a condition
  /// variable re-acquiring its lock does): the loop touches nothing after a false return, and wake()
  /// clears the task's current wait.
  virtual bool on_cancel() noexcept {
    detach();
    return true;
  }
  /// Human-readable description for dump_tasks(): "sleep", "readable(fd)", "lock"...
  [[nodiscard]] virtual const char* what() const noexcept = 0;
  /// The task this wait is for, when it awaits one (dump_tasks() draws the tree from it).
  [[nodiscard]] virtual const task_state* awaited_task() const noexcept { return nullptr; }

protected:
  wait_node() = default;
  wait_node(const wait_node&) = delete;
  wait_node& operator=(const wait_node&) = delete;
  /// A frame destroyed while suspended here (loop teardown, a destroyed generator) must not leave its
  /// task pointing at freed memory.
  ~wait_node() { forget_wait(this); }

private:
  static void forget_wait(wait_node* w) noexcept;
};

/// A wait_node that queues in a wait_list (futures, joins, locks, queues...): at most one list at a time.
/// Timers and fds keep their own bookkeeping, so a sleep or an fd wait does not carry these links.
struct listed_wait_node : wait_node {
  listed_wait_node* prev = nullptr;
  listed_wait_node* next = nullptr;
  bool linked = false;

protected:
  listed_wait_node() = default;
  ~listed_wait_node() = default;
};

/// An intrusive FIFO of wait_nodes: O(1) push, pop and removal of any node (a cancelled waiter).
/// `Counted` keeps a length for size(); lists nobody asks the length of leave it out (16 bytes, not 24).
template <bool Counted> class basic_wait_list {
public:
  basic_wait_list() = default;
  basic_wait_list(const basic_wait_list&) = delete;
  basic_wait_list& operator=(const basic_wait_list&) = delete;
  /// Nodes still linked are unlinked (their owner was destroyed first, e.g. at loop teardown).
  ~basic_wait_list() {
    while (pop_front() != nullptr) {
    }
  }

  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  [[nodiscard]] std::size_t size() const noexcept requires Counted { return size_; }
  [[nodiscard]] listed_wait_node* front() const noexcept { return head_; }
  [[nodiscard]] listed_wait_node* back() const noexcept { return tail_; }

  void push_back(listed_wait_node* n) noexcept {
    n->prev = tail_;
    n->next = nullptr;
    n->linked = true;
    (tail_ != nullptr ? tail_->next : head_) = n;
    tail_ = n;
    if constexpr (Counted)
      ++size_;
  }
  listed_wait_node* pop_front() noexcept {
    listed_wait_node* n = head_;
    if (n != nullptr)
      remove(n);
    return n;
  }
  void remove(listed_wait_node* n) noexcept {
    if (!n->linked)
      return;
    (n->prev != nullptr ? n->prev->next : head_) = n->next;
    (n->next != nullptr ? n->next->prev : tail_) = n->prev;
    n->prev = n->next = nullptr;
    n->linked = false;
    if constexpr (Counted)
      --size_;
  }

private:
  struct no_count {};
  listed_wait_node* head_ = nullptr;
  listed_wait_node* tail_ = nullptr;
  [[no_unique_address]] std::conditional_t<Counted, std::size_t, no_count> size_{};
};

using wait_list = basic_wait_list<true>;
using uncounted_wait_list = basic_wait_list<false>;

} // namespace corio::detail
