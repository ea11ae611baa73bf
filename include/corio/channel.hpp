// corio::channel<T>: a thread-safe multi-producer, single-consumer channel between loops and threads.
#pragma once

#include <atomic>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>

#include "corio/detail/mpsc_queue.hpp"
#include "corio/detail/task_state.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/this_task.hpp"

namespace corio {

namespace detail {
struct channel_test_access;
}

/// Raised by send() once the channel is closed, and by recv() once it is closed and drained.
class channel_closed : public std::runtime_error {
public:
  /// "corio: the channel is closed".
  channel_closed() : std::runtime_error("corio: the channel is closed") {}
};

/// A FIFO channel of T from any number of producers — tasks on any loop, plain threads — to one consumer
/// task at a time (on any loop). T only needs to be movable.
///
/// Capacity: 0 (the default) is unbounded: send() never waits. Otherwise try_send() fails and
/// `co_await send()` waits while `capacity` items are queued; waiting senders are admitted in arrival
/// order as the consumer takes items (each sender's own items stay in order).
/// The hot path takes no lock: an item is a wait-free push on a lock-free MPSC list, and the consumer's
/// loop is woken only when the consumer sleeps — one call_soon_threadsafe per sleep, not per item.
/// Only a bounded channel that is full takes a mutex (for its list of waiting senders).
/// close() (any thread): send() raises channel_closed from then on, recv() once the items already queued
/// are taken, and waiting senders raise it at once. Every item whose send() returned before close()
/// is delivered first; recv() also waits for a send() that began before close() and is still linking
/// its item, as that can hide items sent after it (see try_recv()). An item whose send() raced with
/// close() may be delivered or not; either way it is destroyed exactly once.
/// Cancellation: a recv() cancelled while waiting takes nothing (the next item stays queued); a send()
/// cancelled while waiting for room leaves with its item. A send whose item went in returns normally,
/// and the cancellation is raised at the task's next await point (as corio::queue does).
/// Lifetime: the consumer's loop must outlive the sends that may wake it, and the channel must outlive
/// every send() and recv() (join producers before destroying it). Items still queued are destroyed with it.
template <class T> class channel {
  class recv_awaiter;
  class send_awaiter;
  friend struct detail::channel_test_access; // tests only: a producer paused inside its push

public:
  using value_type = T;

  /// An empty channel; capacity 0 is unbounded.
  explicit channel(std::size_t capacity = 0) noexcept : capacity_(capacity) {}
  /// Destroys the items still queued.
  ~channel() = default;

  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;

  /// Any thread. Queues the item and returns true, or returns false when a bounded channel is full
  /// (the item is then left untouched). channel_closed after close().
  bool try_send(T&& item) {
    if (closed_.load(std::memory_order_acquire))
      throw channel_closed();
    if (capacity_ != 0 && !reserve())
      return false;
    push(std::move(item));
    return true;
  }
  /// try_send() of a copy.
  bool try_send(const T& item) requires std::copy_constructible<T> {
    T copy(item);
    return try_send(std::move(copy));
  }
  /// `co_await ch.send(item)` in a task on any loop: waits for room (bounded), then queues the item.
  [[nodiscard]] send_awaiter send(T item) { return send_awaiter(*this, std::move(item)); }
  /// `T x = co_await ch.recv()`: the next item, waiting for one. channel_closed once closed and drained
  /// (see close());
  /// invalid_state_error if another recv() is waiting (one consumer at a time).
  [[nodiscard]] recv_awaiter recv() noexcept { return recv_awaiter(*this); }
  /// Consumer: the next item, or nullopt. channel_closed once closed and drained. After close(), still
  /// nullopt for a moment while a send() that passed its check before close() is linking its item (a
  /// producer thread preempted between the two steps of a push): try again.
  [[nodiscard]] std::optional<T> try_recv() {
    if (waiter_ != nullptr)
      throw invalid_state_error("corio: channel::try_recv() while a recv() waits (one consumer at a time)");
    if (std::optional<T> v = take())
      return v;
    if (closed_.load(std::memory_order_seq_cst)) {
      if (std::optional<T> v = take())
        return v;
      if (queue_.drained())
        throw channel_closed();
    }
    return std::nullopt;
  }
  /// Any thread, idempotent: no more sends; the consumer drains what is queued, then gets channel_closed.
  void close() {
    closed_.store(true, std::memory_order_seq_cst);
    notify_consumer();
    if (capacity_ != 0) {
      std::lock_guard lock(senders_mutex_);
      while (send_awaiter* s = pop_sender()) {
        s->closed_ = true;
        s->post_wake();
      }
    }
  }
  /// True once close() was called.
  [[nodiscard]] bool is_closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  /// 0 for an unbounded channel.
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  /// Items queued (bounded channels only; a snapshot, exact only when nobody sends or receives).
  [[nodiscard]] std::size_t size() const noexcept { return count_.load(std::memory_order_relaxed); }

private:
  /// Takes one of the capacity_ slots (bounded channels).
  bool reserve() noexcept {
    std::size_t n = count_.load(std::memory_order_seq_cst);
    do {
      if (n >= capacity_)
        return false;
    } while (!count_.compare_exchange_weak(n, n + 1, std::memory_order_seq_cst, std::memory_order_seq_cst));
    return true;
  }
  void push(T&& item) {
    try {
      queue_.push(std::move(item));
    } catch (...) {
      if (capacity_ != 0)
        count_.fetch_sub(1, std::memory_order_relaxed);
      throw;
    }
    notify_consumer();
  }
  /// After a push or close(): wake the consumer if it sleeps. Dekker handshake with recv_awaiter's
  /// await_suspend: we wrote the item's link (seq_cst) and now read parked_ (seq_cst); it wrote parked_
  /// and then reads the link. In the single order of seq_cst operations one of the two reads comes
  /// last and sees the other's write, so either the consumer finds the item or we find it parked. The
  /// exchange makes exactly one producer (or close) the waker per sleep.
  void notify_consumer() {
    if (!parked_.load(std::memory_order_seq_cst) || !parked_.exchange(false, std::memory_order_acq_rel))
      return;
    event_loop* loop = consumer_loop_; // written before parked_ was set: the exchange acquired it
    if (event_loop::current() == loop)
      wake_consumer();
    else
      loop->call_soon_threadsafe([this] { wake_consumer(); });
  }
  /// Consumer thread: nothing more will come. A push still half done after close() began before it,
  /// and may hide items sent (completely) before close(): not drained until it has linked its item.
  [[nodiscard]] bool closed_and_drained() const noexcept {
    return closed_.load(std::memory_order_seq_cst) && queue_.drained();
  }
  /// Consumer loop thread. Finds no waiter if its frame was destroyed meanwhile (loop teardown).
  /// The item of the producer that woke us can be invisible still: an earlier push may be half done (see
  /// mpsc_queue), hiding everything behind it — after close() too. Then the consumer parks again, with
  /// the same handshake as await_suspend: the earlier producer links, then looks at parked_, so one of
  /// us sees the other.
  void wake_consumer() {
    recv_awaiter* w = waiter_;
    if (w == nullptr)
      return;
    while (queue_.empty() && !closed_and_drained()) {
      parked_.store(true, std::memory_order_seq_cst);
      if (queue_.empty() && !closed_and_drained())
        return; // asleep again; the next link (or close()) wakes us
      if (!parked_.exchange(false, std::memory_order_acq_rel))
        return; // a producer claimed this wake-up and posts it
    }
    waiter_ = nullptr;
    w->loop_->wake(w);
  }
  /// Consumer thread: one item, and for a bounded channel its slot passed to a waiting sender.
  std::optional<T> take() {
    std::optional<T> v = queue_.try_pop();
    if (v && capacity_ != 0) {
      // Dekker with send_awaiter::await_suspend: it counts itself in waiting_senders_, then tries to
      // reserve; we free the slot, then look for waiters. One of us sees the other.
      count_.fetch_sub(1, std::memory_order_seq_cst);
      if (waiting_senders_.load(std::memory_order_seq_cst) > 0)
        admit_senders();
    }
    return v;
  }
  void admit_senders() {
    std::lock_guard lock(senders_mutex_);
    while (senders_head_ != nullptr && reserve()) {
      send_awaiter* s = pop_sender();
      queue_.push(std::move(s->item_)); // the consumer is awake: no notification needed
      s->granted_ = true;
      s->post_wake();
    }
  }
  send_awaiter* pop_sender() noexcept { // senders_mutex_ held
    send_awaiter* s = senders_head_;
    if (s != nullptr)
      unlink_sender(s);
    return s;
  }
  void unlink_sender(send_awaiter* s) noexcept { // senders_mutex_ held
    (s->prev_ != nullptr ? s->prev_->next_ : senders_head_) = s->next_;
    (s->next_ != nullptr ? s->next_->prev_ : senders_tail_) = s->prev_;
    s->prev_ = s->next_ = nullptr;
    s->linked_ = false;
    waiting_senders_.fetch_sub(1, std::memory_order_relaxed);
  }

  class [[nodiscard]] recv_awaiter final : public detail::wait_node {
  public:
    explicit recv_awaiter(channel& ch) noexcept : ch_(ch) {}
    ~recv_awaiter() {
      if (ch_.waiter_ == this) { // destroyed while waiting (loop teardown): a wake in flight finds nobody
        ch_.waiter_ = nullptr;
        ch_.parked_.store(false, std::memory_order_relaxed);
      }
    }
    bool await_ready() {
      loop_ = &detail::await_point("channel::recv()");
      if (ch_.waiter_ != nullptr)
        throw invalid_state_error("corio: channel::recv() while another recv() waits (one consumer at a time)");
      if (std::optional<T> v = ch_.take())
        item_.emplace(std::move(*v)); // not item_ = ...: T need not be move-assignable
      return item_.has_value() || ch_.closed_and_drained();
    }
    bool await_suspend(std::coroutine_handle<> h) {
      handle = h;
      task = loop_->current_task();
      ch_.waiter_ = this;
      ch_.consumer_loop_ = loop_;
      ch_.parked_.store(true, std::memory_order_seq_cst);
      // Re-check after parking (see notify_consumer): a producer that linked its item before our store
      // may not have seen us parked.
      if (!ch_.queue_.empty() || ch_.closed_and_drained()) {
        if (ch_.parked_.exchange(false, std::memory_order_acq_rel)) {
          ch_.waiter_ = nullptr;
          return false; // resume now
        }
        // else a producer already claimed the wake-up and posts it: wait for it.
      }
      event_loop::begin_wait(this);
      return true;
    }
    T await_resume() {
      if (item_)
        return std::move(*item_);
      if (task != nullptr && task->cancelling())
        task->raise_cancel(); // took nothing: the item that woke us (if any) stays queued
      if (std::optional<T> v = ch_.take())
        return std::move(*v);
      throw channel_closed(); // woken only with an item queued or once closed and drained
    }
    bool on_cancel() noexcept override {
      if (!ch_.parked_.exchange(false, std::memory_order_acq_rel))
        return false; // a wake-up is on its way; it resumes us, and await_resume raises
      ch_.waiter_ = nullptr;
      return true;
    }
    void detach() noexcept override {}
    [[nodiscard]] const char* what() const noexcept override { return "channel recv"; }

  private:
    friend channel;
    channel& ch_;
    event_loop* loop_ = nullptr;
    std::optional<T> item_;
  };

  class [[nodiscard]] send_awaiter final : public detail::wait_node {
  public:
    send_awaiter(channel& ch, T item) : ch_(ch), item_(std::move(item)) {}
    ~send_awaiter() {
      if (waited_) { // it was linked once; whether it still is, only the lock can tell
        std::lock_guard lock(ch_.senders_mutex_);
        if (linked_)
          ch_.unlink_sender(this);
      }
    }
    bool await_ready() {
      loop_ = &detail::await_point("channel::send()");
      return ch_.try_send(std::move(item_)); // moves only when it succeeds
    }
    bool await_suspend(std::coroutine_handle<> h) {
      handle = h;
      task = loop_->current_task();
      std::unique_lock lock(ch_.senders_mutex_);
      if (ch_.closed_.load(std::memory_order_seq_cst)) {
        closed_ = true;
        return false;
      }
      ch_.waiting_senders_.fetch_add(1, std::memory_order_seq_cst);
      if (ch_.reserve()) { // a slot was freed since await_ready
        ch_.waiting_senders_.fetch_sub(1, std::memory_order_relaxed);
        lock.unlock();
        ch_.push(std::move(item_));
        granted_ = true;
        return false;
      }
      prev_ = ch_.senders_tail_;
      (prev_ != nullptr ? prev_->next_ : ch_.senders_head_) = this;
      ch_.senders_tail_ = this;
      linked_ = true;
      waited_ = true;
      event_loop::begin_wait(this);
      return true;
    }
    void await_resume() {
      if (granted_)
        return; // sent; a cancellation now is raised at the next await point
      if (closed_)
        throw channel_closed();
      if (task != nullptr && task->cancelling())
        task->raise_cancel();
    }
    bool on_cancel() noexcept override {
      std::lock_guard lock(ch_.senders_mutex_);
      if (!linked_)
        return false; // admitted or closed: the wake-up is on its way
      ch_.unlink_sender(this);
      return true;
    }
    void detach() noexcept override {}
    [[nodiscard]] const char* what() const noexcept override { return "channel send"; }

  private:
    friend channel;
    /// Called with senders_mutex_ held, by whoever admitted or refused us (maybe another thread).
    void post_wake() {
      if (event_loop::current() == loop_)
        loop_->wake(this);
      else
        loop_->call_soon_threadsafe([this] { loop_->wake(this); });
    }
    channel& ch_;
    T item_;
    event_loop* loop_ = nullptr;
    send_awaiter* prev_ = nullptr; // the waiting list, guarded by senders_mutex_
    send_awaiter* next_ = nullptr;
    bool linked_ = false;  // guarded by senders_mutex_
    bool waited_ = false;  // this thread's own note that it linked itself
    bool granted_ = false; // the item went into the channel
    bool closed_ = false;  // refused by close()
  };

  const std::size_t capacity_;
  detail::mpsc_queue<T> queue_;
  std::atomic<bool> closed_{false};
  // The consumer side: parked_ is the handshake flag; waiter_ and consumer_loop_ belong to the consumer's
  // loop thread (producers read consumer_loop_ only after winning parked_).
  std::atomic<bool> parked_{false};
  recv_awaiter* waiter_ = nullptr;
  event_loop* consumer_loop_ = nullptr;
  // Bounded channels only.
  std::atomic<std::size_t> count_{0};
  std::atomic<std::size_t> waiting_senders_{0};
  std::mutex senders_mutex_;
  send_awaiter* senders_head_ = nullptr;
  send_awaiter* senders_tail_ = nullptr;
};

} // namespace corio
