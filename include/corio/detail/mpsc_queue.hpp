// A lock-free multi-producer single-consumer FIFO (Dmitry Vyukov's node-based MPSC queue) (internal).
#pragma once

#include <atomic>
#include <new>
#include <optional>
#include <utility>

namespace corio::detail {

/// Unbounded MPSC queue of T. push() from any thread, wait-free (one atomic exchange and one store);
/// try_pop() from one consumer thread at a time, lock-free. One heap node per item.
///
/// Layout: a singly linked list from head_ (consumer-owned) to tail_ (where producers append). head_
/// always points at a "stub": the node whose item was taken last (or the initial empty node); the items
/// are in the nodes after it. A push swaps itself into tail_ first and links the previous tail to itself
/// second; between the two steps the consumer sees the list end early, so try_pop() can report empty while
/// a push is in flight. Callers that sleep on "empty" must re-check after the producer's link (the
/// channel and the event loop do: the producer looks for a sleeping consumer only after linking).
///
/// Memory orders: the link store is seq_cst (not just release) and so is the consumer's load of it,
/// because callers pair them with a "consumer is asleep" flag in a Dekker-style handshake (producer:
/// link, then read the flag; consumer: set the flag, then read the link). Only a single total order over
/// both pairs guarantees that at least one side sees the other's write.
template <class T> class mpsc_queue {
  struct node {
    std::atomic<node*> next{nullptr};
    std::optional<T> value;
  };

public:
  mpsc_queue() : head_(new node), tail_(head_) {}
  mpsc_queue(const mpsc_queue&) = delete;
  mpsc_queue& operator=(const mpsc_queue&) = delete;
  /// Destroys the items still queued. No push may be running (the owner ensures producers are done).
  ~mpsc_queue() {
    node* n = head_;
    while (n != nullptr) {
      node* next = n->next.load(std::memory_order_acquire);
      delete n;
      n = next;
    }
  }

  /// Any thread. Strong exception guarantee: if T's move or the allocation throws, nothing is queued.
  void push(T value) { end_push(begin_push(std::move(value))); }

  /// push() in its two steps, so that tests can stop a producer between them: begin_push() appends
  /// the node at tail_, end_push() links it for the consumer. Every begin_push() needs its end_push().
  struct pending_push {
    node* prev;
    node* n;
  };
  [[nodiscard]] pending_push begin_push(T value) {
    node* n = new node;
    try {
      n->value.emplace(std::move(value));
    } catch (...) {
      delete n;
      throw;
    }
    // acq_rel: acquire so that our later store into prev->next happens after prev's own initialisation
    // (prev was published by its producer's exchange), release so that the next producer sees ours.
    return {tail_.exchange(n, std::memory_order_acq_rel), n};
  }
  static void end_push(pending_push p) noexcept {
    p.prev->next.store(p.n, std::memory_order_seq_cst); // publishes n->value to the consumer
  }

  /// Consumer thread. The oldest item, or nullopt when empty (or when the next push is half done).
  std::optional<T> try_pop() {
    node* next = head_->next.load(std::memory_order_seq_cst);
    if (next == nullptr)
      return std::nullopt;
    std::optional<T> out(std::in_place, std::move(*next->value));
    next->value.reset(); // next becomes the stub: it holds no item
    delete head_;
    head_ = next;
    return out;
  }

  /// Consumer thread: true when no linked item is waiting (a half-done push counts as empty).
  [[nodiscard]] bool empty() const noexcept { return head_->next.load(std::memory_order_seq_cst) == nullptr; }
  /// Consumer thread: true when no item is waiting and no push is half done — every push that swapped
  /// itself into tail_ has linked its node (tail_ is the stub). A half-done push hides the pushes
  /// linked behind it, finished ones included: a consumer told "no more pushes will start" (a closed
  /// channel) has taken everything only once drained() is true. seq_cst, as the link: a push that
  /// happened before what the caller read (seq_cst) is then seen, linked or in tail_.
  [[nodiscard]] bool drained() const noexcept { return empty() && tail_.load(std::memory_order_seq_cst) == head_; }

private:
  node* head_; // consumer only
  // Keeps the producers' cache line apart from the consumer's (padding rather than alignas(64): a queue
  // may live in a coroutine frame, whose over-alignment is not honoured, HAZARDS.md §5).
  char pad_[64 - sizeof(node*)] = {};
  std::atomic<node*> tail_; // producers
};

} // namespace corio::detail
