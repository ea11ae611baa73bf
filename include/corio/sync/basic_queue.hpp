// corio::basic_queue<T, Storage>: what corio's queue, priority_queue and lifo_queue share (waiting, hand-off,
// cancellation, join/task_done, Python 3.13's shutdown); the storage policy decides which item leaves first.
#pragma once

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "corio/detail/wait_node.hpp"
#include "corio/errors.hpp"
#include "corio/sync/waiter.hpp"

namespace corio {

/// Raised by put() once the queue is shut down, and by get() once it is shut down and empty
/// (asyncio.QueueShutDown).
class queue_shut_down : public std::runtime_error {
public:
  queue_shut_down() : std::runtime_error("corio: the queue is shut down") {}
};

/// A queue of T between tasks of one loop; use its three forms: corio::queue (FIFO), corio::priority_queue
/// (smallest first) and corio::lifo_queue (last in, first out). T only needs to be movable.
///
/// Capacity: maxsize 0 is unbounded; otherwise put() waits while the queue is full. As in asyncio, an
/// item counts in size() until a getter takes it: one kept for a woken getter that has not run yet
/// still counts (try_get() does not take it: it is that getter's), so a bounded queue never holds
/// more than maxsize items.
/// Fairness: getters and putters are each served in arrival order, and no newcomer overtakes a waiter
/// (asyncio's get_nowait()/put_nowait() can): a put() wakes the longest-waiting getter and keeps an
/// item for it; a get() (or a woken getter that runs) that frees a slot lets the longest-waiting
/// putter in. Which item a woken getter gets, and when a let-in putter's item enters, depends on the
/// storage (Storage::hand_off):
/// - Hand-off (corio::queue): put() hands its item straight to the getter, and a freed slot takes the
///   putter's item at once. In a FIFO this is the order asyncio gives, with no copy through the buffer.
/// - Otherwise (lifo_queue, priority_queue), as asyncio's: the item stays in the queue, and the woken
///   getter takes the next one (the top, the smallest) when it runs — with a waiting getter, put(1),
///   put(2) gives it 2 in a lifo_queue. A let-in putter adds its item when it runs; until then its slot
///   is kept for it (try_put() refuses it, though size() and full() do not count it yet, as asyncio's
///   qsize() does not).
/// Invariants: a getter waits ⇒ every stored item is kept for a woken getter (with hand-off, none is
/// stored); a putter waits ⇒ no slot is free.
/// Cancellation:
/// - get(): a getter cancelled while waiting leaves the queue. One cancelled after it was woken, before
///   it ran, raises cancelled_error, and the queue goes on as asyncio's does, where a woken getter
///   takes its item only when it runs: the item stays, and the next waiting getter is woken for it.
///   With hand-off, the items handed since then to getters that have not run yet go back to the front
///   as well, and those getters, then the next waiting ones, take again in turn. So with getters A, B,
///   C waiting, put(1), put(2) and A cancelled, B gets 1 and C gets 2 (and 2, then 1 in a lifo_queue).
///   No item is ever lost or duplicated, and size() does not change. After shutdown(immediate = true)
///   a woken getter that had not run raises queue_shut_down (with hand-off it keeps its item, and the
///   item of a cancelled one is dropped, counted as done).
/// - put(): a putter cancelled while waiting leaves with its item and raises cancelled_error. With
///   hand-off, once its item is in the queue the put has happened: it returns normally, and the
///   cancellation is raised at the task's next await point (level-triggered) — so a cancelled put never
///   lies about its item. Otherwise a putter let in and cancelled before it ran raises cancelled_error
///   without putting its item, and its slot goes to the next waiting putter, as in asyncio.
/// join()/task_done(): every item put counts as unfinished until a task_done() call for it; join()
/// waits until none is. task_done() more times than items were put raises invalid_state_error.
/// shutdown(immediate = false) (Python 3.13): put() raises queue_shut_down from then on, and so does
/// get() once the queue is empty; waiting putters and getters raise it at once. immediate also drops
/// the queued items, counting each as done, so join() returns once the items already taken are done.
/// No allocation per wait. Single-threaded.
///
/// Storage (a policy): `get_name`, `put_name`, `join_name` (the waits as dump_tasks shows them, e.g.
/// "lifo_queue.get"); `hand_off` (see Fairness; only where the item a put hands over is the one a
/// woken getter would take when it runs, whatever is put in between: FIFO); `entry` (what it stores: T,
/// or T with a sequence number); `make(T&&)` → an entry of a new item; static `unwrap(entry&&)` → T&&;
/// `push(entry&&)` a new item; with hand_off, `restore(entry&&)` an item handed to a getter and given
/// back (several come newest first: each is then older than every item stored); `reserve(n)` room for
/// n entries; `pop()` → the entry to leave next (not empty); `size()`, `empty()`, `clear()`.
template <class T, class Storage> class basic_queue {
  class get_awaiter;
  class put_awaiter;
  class join_awaiter;
  using entry = typename Storage::entry;
  static constexpr bool hand_off = Storage::hand_off;

public:
  using value_type = T;

  explicit basic_queue(std::size_t maxsize = 0,
                       Storage storage = Storage()) noexcept(std::is_nothrow_move_constructible_v<Storage>)
      : items_(std::move(storage)), maxsize_(maxsize) {}
  basic_queue(const basic_queue&) = delete;
  basic_queue& operator=(const basic_queue&) = delete;
  ~basic_queue() = default;

  /// `co_await q.put(item)`: waits for room, then adds the item. queue_shut_down after shutdown().
  [[nodiscard]] put_awaiter put(T item) { return put_awaiter(*this, std::move(item)); }
  /// `T x = co_await q.get()`: waits for an item. queue_shut_down if shut down and empty.
  [[nodiscard]] get_awaiter get() noexcept { return get_awaiter(*this); }
  /// Adds the item if there is room and returns true; false if the queue is full or its free slot is
  /// kept for a putter let in and not run yet (the item is then left untouched). queue_shut_down after
  /// shutdown().
  bool try_put(T&& item) {
    if (shut_down_)
      throw queue_shut_down();
    if (has_room()) {
      add(std::move(item));
      return true;
    }
    return false;
  }
  bool try_put(const T& item) requires std::copy_constructible<T> {
    T copy(item);
    return try_put(std::move(copy));
  }
  /// The next item, or nullopt if none is free (the queue is empty, or holds only items kept for woken
  /// getters); queue_shut_down instead of nullopt after shutdown().
  [[nodiscard]] std::optional<T> try_get() {
    if (available())
      return std::optional<T>(Storage::unwrap(take()));
    if (shut_down_)
      throw queue_shut_down();
    return std::nullopt;
  }
  /// `co_await q.join()`: waits until every item put so far has been marked task_done().
  [[nodiscard]] join_awaiter join() noexcept { return join_awaiter(*this); }
  /// Marks one item taken with get() as processed. invalid_state_error if no item is unfinished.
  void task_done() {
    if (unfinished_ == 0)
      throw invalid_state_error("corio: queue.task_done() called more times than there were items");
    finish(1);
  }
  /// See the class comment. Idempotent; immediate may follow a plain shutdown.
  void shutdown(bool immediate = false) {
    shut_down_ = true;
    if (immediate) {
      drained_ = true;
      const std::size_t dropped = items_.size();
      items_.clear();
      finish(dropped);
      if constexpr (!hand_off) // the items kept for them are gone: they raise queue_shut_down, as in asyncio
        while (detail::listed_wait_node* w = handed_.front())
          shut_woken(static_cast<get_awaiter*>(w));
    }
    if constexpr (!hand_off) // asyncio's woken putter raises QueueShutDown when it runs
      while (detail::listed_wait_node* w = let_in_.front())
        shut_woken(static_cast<put_awaiter*>(w));
    while (detail::wait_node* w = getters_.front()) // no free item is stored when getters wait
      shut(static_cast<get_awaiter*>(w));
    while (detail::wait_node* w = putters_.front())
      shut(static_cast<put_awaiter*>(w));
  }

  /// Items in the queue, counting those kept for woken getters that have not run yet (asyncio's qsize()
  /// counts an item until its getter takes it); not the items of putters let in and not run yet.
  [[nodiscard]] std::size_t size() const noexcept {
    if constexpr (hand_off)
      return items_.size() + handed_.size();
    else
      return items_.size();
  }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  [[nodiscard]] bool full() const noexcept { return maxsize_ > 0 && size() >= maxsize_; }
  [[nodiscard]] std::size_t maxsize() const noexcept { return maxsize_; }
  [[nodiscard]] bool is_shut_down() const noexcept { return shut_down_; }
  /// Items put and not yet marked task_done().
  [[nodiscard]] std::size_t unfinished() const noexcept { return unfinished_; }

private:
  /// An item a newcomer may take: stored and not kept for a woken getter.
  [[nodiscard]] bool available() const noexcept {
    if constexpr (hand_off)
      return !items_.empty();
    else
      return items_.size() > handed_.size();
  }
  /// A slot a newcomer's item may take: not full, counting the slots kept for let-in putters.
  [[nodiscard]] bool has_room() const noexcept {
    if constexpr (hand_off)
      return !full();
    else
      return maxsize_ == 0 || items_.size() + let_in_.size() < maxsize_;
  }
  /// Adds an item (room is known to be there). With hand-off, straight to the first getter, if any (the
  /// queue is empty then, so that item is the next); otherwise it is stored and the first waiting getter
  /// is woken to take the next item when it runs (asyncio's put_nowait()).
  void add(T&& item) {
    if constexpr (hand_off) {
      if (detail::wait_node* w = getters_.front())
        hand(static_cast<get_awaiter*>(w), items_.make(std::move(item)));
      else
        items_.push(items_.make(std::move(item)));
      ++unfinished_;
    } else {
      if (!let_in_.empty()) // so that the let-in putters' items go in without allocating (admit_putter)
        items_.reserve(items_.size() + let_in_.size() + 1);
      items_.push(items_.make(std::move(item)));
      ++unfinished_;
      wake_getter();
    }
  }
  /// Without hand-off: an item is free, so the first waiting getter is woken and it is kept for it (the
  /// getter stays listed in handed_ until it runs; asyncio's _wakeup_next(getters)).
  void wake_getter() {
    if (detail::wait_node* w = available() ? getters_.front() : nullptr) {
      auto* g = static_cast<get_awaiter*>(w);
      g->grant();
      g->enqueue(handed_);
    }
  }
  /// Takes the next item; the first waiting putter's item takes the freed slot.
  entry take() {
    entry out = items_.pop();
    admit_putter();
    return out;
  }
  /// A slot was freed (an item taken, a woken getter ran and took the item handed to it, or a let-in
  /// putter was cancelled): the first waiting putter is let in. With hand-off its item takes the slot at
  /// once, straight to a waiting getter if one is there; otherwise the slot is kept for it (listed in
  /// let_in_) and it adds its item when it runs (asyncio's _wakeup_next(putters)). Room is made first:
  /// without memory for it, the putter keeps its item and waits on (let in by a later get), and the
  /// item being taken is not lost to the bad_alloc.
  void admit_putter() {
    detail::wait_node* w = has_room() ? putters_.front() : nullptr;
    if (w == nullptr)
      return;
    try {
      if (!hand_off || getters_.empty())
        items_.reserve(items_.size() + let_in_.size() + 1);
    } catch (...) {
      return;
    }
    auto* p = static_cast<put_awaiter*>(w);
    if constexpr (hand_off) {
      add(std::move(p->item_)); // room made: nothing allocates
      p->grant();
    } else {
      p->grant();
      p->enqueue(let_in_);
    }
  }
  /// x was handed an item and cancelled before it ran: the queue goes on as if that item had stayed in
  /// it, as in asyncio, where a woken getter takes its item only when it runs. The getters handed an
  /// item after x and not run yet took theirs from a queue that still held x's, so their items go back
  /// too, each to its logical place, and they (then the next waiting getters) take again in hand-off
  /// order. size() is the same as before, so no putter is due.
  void give_back(get_awaiter* x) {
    if (drained_) { // shut down with immediate: x's item is dropped like the rest; the others keep theirs
      x->detach();
      x->slot_.reset();
      finish(1);
      return;
    }
    std::size_t n = 1;
    for (detail::listed_wait_node* g = x->linked ? x->next : nullptr; g != nullptr; g = g->next)
      ++n;
    items_.reserve(items_.size() + n); // so that nothing below throws for want of room
    // Newest first, so that a FIFO can put each one in front.
    for (detail::listed_wait_node* g = x->linked ? handed_.back() : x;; g = g->prev) {
      items_.restore(std::move(*static_cast<get_awaiter*>(g)->slot_));
      if (g == x)
        break;
    }
    for (detail::listed_wait_node* g = x->linked ? x->next : nullptr; g != nullptr; g = g->next)
      static_cast<get_awaiter*>(g)->slot_.emplace(items_.pop());
    x->detach();
    x->slot_.reset();
    while (detail::wait_node* w = items_.empty() ? nullptr : getters_.front())
      hand(static_cast<get_awaiter*>(w), items_.pop());
  }
  /// Gives g its item; g stays listed in handed_ until it runs (see give_back).
  void hand(get_awaiter* g, entry&& e) {
    g->slot_.emplace(std::move(e));
    g->grant();
    g->enqueue(handed_);
  }
  template <class W> void shut(W* w) {
    w->shut_ = true;
    w->grant();
  }
  /// A getter or putter already woken (listed in handed_ or let_in_) raises queue_shut_down when it runs.
  template <class W> void shut_woken(W* w) noexcept {
    w->shut_ = true;
    w->detach();
  }
  void finish(std::size_t n) {
    unfinished_ -= n;
    if (unfinished_ == 0)
      while (detail::wait_node* w = joiners_.front())
        static_cast<detail::sync_waiter*>(w)->grant();
  }

  Storage items_;
  std::size_t maxsize_;
  std::size_t unfinished_ = 0;
  bool shut_down_ = false;
  bool drained_ = false; // shutdown(immediate = true) happened
  detail::wait_list getters_;
  // Getters woken and not run yet, in the order they were woken: with hand-off each holds its item in
  // slot_; otherwise one stored item is kept for each.
  detail::wait_list handed_;
  detail::wait_list putters_;
  detail::wait_list let_in_; // without hand-off: putters let in and not run yet, a slot kept for each
  detail::wait_list joiners_;
};

template <class T, class Storage> class [[nodiscard]] basic_queue<T, Storage>::get_awaiter final
    : public detail::sync_waiter {
public:
  explicit get_awaiter(basic_queue& q) noexcept : q_(&q) {}
  bool await_ready() {
    start(Storage::get_name);
    if (q_->available()) {
      slot_.emplace(q_->take());
      return true;
    }
    if (q_->shut_down_)
      throw queue_shut_down();
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) noexcept { suspend_on(q_->getters_, h); }
  T await_resume() {
    if constexpr (hand_off) {
      if (cancelling()) {
        if (slot_) // handed an item, cancelled before running: see give_back
          q_->give_back(this);
        task->raise_cancel();
      }
      const bool was_handed = linked;
      detach(); // out of handed_
      if (shut_)
        throw queue_shut_down();
      if (was_handed) // its item leaves the queue now, freeing a slot
        q_->admit_putter();
    } else {
      const bool woken = linked; // an item is kept for it (in handed_)
      detach();
      if (cancelling()) {
        if (woken) // as asyncio's woken getter that is cancelled: the item stays, the next getter is woken
          q_->wake_getter();
        task->raise_cancel();
      }
      if (shut_)
        throw queue_shut_down();
      if (woken) // takes the next item now, as asyncio's does when it runs
        slot_.emplace(q_->take());
    }
    return Storage::unwrap(std::move(*slot_));
  }
  [[nodiscard]] const char* what() const noexcept override { return Storage::get_name; }

private:
  friend basic_queue;
  basic_queue* q_;
  std::optional<entry> slot_;
  bool shut_ = false;
};

template <class T, class Storage> class [[nodiscard]] basic_queue<T, Storage>::put_awaiter final
    : public detail::sync_waiter {
public:
  put_awaiter(basic_queue& q, T&& item) noexcept(std::is_nothrow_move_constructible_v<T>)
      : q_(&q), item_(std::move(item)) {}
  bool await_ready() {
    start(Storage::put_name);
    return q_->try_put(std::move(item_)); // queue_shut_down after shutdown()
  }
  void await_suspend(std::coroutine_handle<> h) noexcept { suspend_on(q_->putters_, h); }
  void await_resume() {
    const bool let_in = !hand_off && linked; // a slot is kept for it (in let_in_)
    if (let_in)
      detach();
    if (shut_) {
      if (cancelling())
        task->raise_cancel();
      throw queue_shut_down();
    }
    if constexpr (hand_off) {
      if (!granted() && cancelling()) // withdrawn by the cancel, item and all
        task->raise_cancel();
      // Put (at once, or granted): a cancel that came later is raised at the next await point.
    } else {
      if (cancelling()) { // withdrawn, or let in and cancelled before it ran: not put, as in asyncio
        if (let_in)
          q_->admit_putter(); // its slot goes to the next putter
        task->raise_cancel();
      }
      if (let_in)
        q_->add(std::move(item_)); // room was made when it was let in
    }
  }
  [[nodiscard]] const char* what() const noexcept override { return Storage::put_name; }

private:
  friend basic_queue;
  basic_queue* q_;
  T item_;
  bool shut_ = false;
};

template <class T, class Storage> class [[nodiscard]] basic_queue<T, Storage>::join_awaiter final
    : public detail::sync_waiter {
public:
  explicit join_awaiter(basic_queue& q) noexcept : q_(&q) {}
  bool await_ready() {
    start(Storage::join_name);
    return q_->unfinished_ == 0;
  }
  void await_suspend(std::coroutine_handle<> h) noexcept { suspend_on(q_->joiners_, h); }
  void await_resume() const {
    if (cancelling())
      task->raise_cancel();
  }
  [[nodiscard]] const char* what() const noexcept override { return Storage::join_name; }

private:
  basic_queue* q_;
};

} // namespace corio
