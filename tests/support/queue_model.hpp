// Reference models of asyncio's Queue, LifoQueue and PriorityQueue, and random scenarios that play
// corio's queues against them: getters (and, on bounded queues, putters) arrive, items are put and
// taken, tasks are cancelled (waiting, or woken and not run yet), and each task's outcome, size(),
// full() and what is left must be asyncio's. tests/integration/queue_asyncio_model.py is the same
// models and generators in Python, replayed on asyncio itself.
#pragma once

#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace corio::testing {

enum class queue_kind { fifo, lifo, priority };

/// splitmix64: small, and the same numbers in Python.
class splitmix64 {
public:
  explicit splitmix64(std::uint64_t seed) noexcept : s_(seed) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  int below(std::size_t n) noexcept { return static_cast<int>(next() % n); }

private:
  std::uint64_t s_;
};

/// asyncio's queues as they behave: put() adds the item and wakes the first waiting getter, which
/// takes the next item (front, top, smallest) only when it runs; woken getters run in the order they
/// were woken; one cancelled after it was woken takes nothing and, if items are left, wakes the next.
class asyncio_queue_model {
public:
  static constexpr int waiting = -2;
  static constexpr int cancelled = -1;

  explicit asyncio_queue_model(queue_kind k) : kind_(k) {}

  /// A getter that starts now (no getter is woken): takes an item if there is one, else waits.
  void add_getter() {
    EXPECT_TRUE(woken_.empty());
    if (!items_.empty()) {
      results.push_back(take());
    } else {
      results.push_back(waiting);
      waiting_.push_back(static_cast<int>(results.size()) - 1);
    }
  }
  void put(int v) {
    items_.push_back(v);
    wakeup_next();
  }
  void cancel(int g) {
    if (auto it = std::find(waiting_.begin(), waiting_.end(), g); it != waiting_.end()) {
      waiting_.erase(it);
      results[g] = cancelled;
    } else if (std::find(woken_.begin(), woken_.end(), g) != woken_.end()) {
      cancel_requested_.insert(g);
    }
  }
  /// The woken getters run.
  void settle() {
    while (!woken_.empty()) {
      const int g = woken_.front();
      woken_.pop_front();
      if (cancel_requested_.count(g) != 0) {
        results[g] = cancelled;
        if (!items_.empty())
          wakeup_next();
      } else {
        EXPECT_FALSE(items_.empty()) << "a woken getter finds the queue empty";
        results[g] = take();
      }
    }
  }
  /// The getters still waiting, or woken and not cancelled, in arrival order.
  [[nodiscard]] std::vector<int> live() const {
    std::vector<int> out;
    for (std::size_t g = 0; g < results.size(); ++g)
      if (results[g] == waiting && cancel_requested_.count(static_cast<int>(g)) == 0)
        out.push_back(static_cast<int>(g));
    return out;
  }
  int take() {
    auto it = items_.begin();
    if (kind_ == queue_kind::lifo)
      it = items_.end() - 1;
    else if (kind_ == queue_kind::priority)
      it = std::min_element(items_.begin(), items_.end());
    const int v = *it;
    items_.erase(it);
    return v;
  }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }

  std::vector<int> results; // per getter: the item it got, cancelled or waiting

private:
  void wakeup_next() {
    if (!waiting_.empty()) {
      woken_.push_back(waiting_.front());
      waiting_.pop_front();
    }
  }

  queue_kind kind_;
  std::vector<int> items_; // fifo: front first; lifo: top last; priority: the smallest leaves
  std::deque<int> waiting_;
  std::deque<int> woken_;
  std::set<int> cancel_requested_;
};

inline constexpr int kSeeds = 300; // as SEEDS in queue_asyncio_model.py
inline constexpr int kRounds = 8;

template <class Q> task<> model_getter(Q* q, std::vector<int>* got, std::size_t id) {
  const int v = co_await q->get();
  (*got)[id] = v;
  q->task_done();
}

/// Plays scenario `seed` on an unbounded queue of `kind` (Q) and, with `compare` (the ready queue in
/// order, as asyncio's), checks every getter's outcome and the queue's size and unfinished count after
/// each round, and what is left at the end, against the model. Without it (shuffled ready queue: the
/// getters wait in another order than the model's), checks that no item is lost or duplicated.
template <class Q> task<> play_queue_scenario(queue_kind kind, std::uint64_t seed, bool compare) {
  using namespace std::chrono_literals;
  splitmix64 rng(seed);
  asyncio_queue_model m(kind);
  Q q;
  std::vector<int> got, put;
  std::vector<join_handle<void>> hs;
  int next_value = 0;
  auto outcome = [&](std::size_t g) {
    return got[g] != asyncio_queue_model::waiting ? got[g]
           : hs[g].done()                         ? asyncio_queue_model::cancelled
                                                  : asyncio_queue_model::waiting;
  };
  auto check = [&](const char* when) {
    if (!compare)
      return;
    for (std::size_t g = 0; g < hs.size(); ++g)
      EXPECT_EQ(outcome(g), m.results[g]) << "seed " << seed << ", getter " << g << ", " << when;
    EXPECT_EQ(q.size(), m.size()) << "seed " << seed << ", " << when;
    EXPECT_EQ(q.unfinished(), m.size()) << "seed " << seed << ", " << when;
  };
  for (int round = 0; round < kRounds; ++round) {
    for (int k = rng.below(5); k > 0; --k) {
      m.add_getter();
      got.push_back(asyncio_queue_model::waiting);
      hs.push_back(spawn(model_getter(&q, &got, got.size() - 1)));
    }
    co_await sleep(1ms); // they start (in order when the ready queue is): take an item, or wait
    for (int n = 2 + rng.below(7); n > 0; --n) {
      const std::vector<int> live = m.live();
      if (live.empty() || rng.below(100) < 55) {
        const int v = kind == queue_kind::priority ? rng.below(10) : next_value++;
        m.put(v);
        put.push_back(v);
        EXPECT_TRUE(q.try_put(v));
      } else {
        const int g = live[static_cast<std::size_t>(rng.below(live.size()))];
        m.cancel(g);
        hs[static_cast<std::size_t>(g)].cancel();
      }
    }
    if (compare) { // an item handed to a woken getter counts until it runs, as in asyncio
      EXPECT_EQ(q.size(), m.size()) << "seed " << seed << ", before the woken getters run";
    }
    m.settle();
    co_await sleep(1ms); // the woken getters run
    check("after a round");
  }
  for (std::size_t g = 0; g < hs.size(); ++g) {
    m.cancel(static_cast<int>(g));
    hs[g].cancel();
  }
  m.settle();
  co_await sleep(1ms);
  check("at the end");
  std::vector<int> left, model_left;
  while (auto v = q.try_get())
    left.push_back(*v);
  while (m.size() > 0)
    model_left.push_back(m.take());
  if (compare) {
    EXPECT_EQ(left, model_left) << "seed " << seed << ": left in the queue";
  }
  // Every item put was got once or is left: none lost, none duplicated.
  std::vector<int> all = left;
  for (std::size_t g = 0; g < hs.size(); ++g) {
    EXPECT_TRUE(hs[g].done());
    if (got[g] != asyncio_queue_model::waiting)
      all.push_back(got[g]);
  }
  std::sort(all.begin(), all.end());
  std::sort(put.begin(), put.end());
  EXPECT_EQ(all, put) << "seed " << seed;
  EXPECT_EQ(q.unfinished(), left.size()) << "seed " << seed;
}

template <class Q> task<> named_getter(Q* q, std::string* log, char name) {
  const int v = co_await q->get();
  *log += std::string(1, name) + "=" + std::to_string(v) + " ";
}

/// Getters A, B, C... (`getters` of them) wait in that order; then, before any of them runs, `puts`
/// are put, the getters named in `cancels` are cancelled and `puts_after` are put. Returns the outcome
/// as the Python twin prints it: "A:c B=1 C=2 left=[3, 4]" (A cancelled, B got 1, C got 2, and 3 then
/// 4 are left, in the order get() returns them).
template <class Q> task<std::string> woken_getters(std::size_t getters, std::vector<int> puts, std::string cancels,
                                                   std::vector<int> puts_after) {
  using namespace std::chrono_literals;
  Q q;
  std::string log;
  std::vector<join_handle<void>> hs;
  for (std::size_t i = 0; i < getters; ++i)
    hs.push_back(spawn(named_getter(&q, &log, static_cast<char>('A' + i))));
  co_await sleep(1ms);
  for (int v : puts)
    EXPECT_TRUE(q.try_put(v));
  for (char c : cancels)
    hs[static_cast<std::size_t>(c - 'A')].cancel();
  for (int v : puts_after)
    EXPECT_TRUE(q.try_put(v));
  co_await sleep(1ms);
  for (auto& h : hs)
    h.cancel(); // those still waiting, as the twin does
  co_await sleep(1ms);
  for (std::size_t i = 0; i < getters; ++i)
    if (hs[i].cancelled())
      log += std::string(1, static_cast<char>('A' + i)) + ":c ";
  std::vector<std::string> parts;
  for (std::size_t at = 0, end; (end = log.find(' ', at)) != std::string::npos; at = end + 1)
    parts.push_back(log.substr(at, end - at));
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const auto& part : parts)
    out += part + " ";
  out += "left=[";
  while (auto v = q.try_get())
    out += std::to_string(*v) + (q.empty() ? "" : ", ");
  co_return out + "]";
}

/// asyncio's queues step by step (CPython Lib/asyncio/queues.py, 3.11; the same code in 3.12), with
/// tasks on a FIFO ready queue as asyncio's loop runs them:
/// - put(): `while full(): await a future appended to _putters`; then put_nowait(): store the item,
///   unfinished += 1, _wakeup_next(_getters).
/// - get(): `while empty(): await a future appended to _getters`; then get_nowait(): take the next item
///   (front, top, smallest), _wakeup_next(_putters).
/// - _wakeup_next(waiters): sets the result of the first waiter not done; its task becomes ready and
///   runs after the tasks already ready. So a woken getter re-reads the container when it runs.
/// - A task cancelled while it waits: its future is cancelled (skipped by _wakeup_next) and it raises.
///   One cancelled after it was woken, before it ran: CancelledError at the await, and the except
///   clause passes the wake-up on: `if not empty()` (putter: `not full()`) `: _wakeup_next(...)`.
/// corio differs where asyncio lets a newcomer overtake a woken waiter (get_nowait() taking the item
/// a woken getter was woken for, put_nowait() the slot a woken putter was woken for): the scenarios
/// below never do that (see play_bounded_scenario).
class asyncio_queue_sim {
public:
  static constexpr int waiting = -2;
  static constexpr int cancelled = -1;
  static constexpr int put_done = -3;

  asyncio_queue_sim(queue_kind k, std::size_t maxsize) : kind_(k), maxsize_(maxsize) {}

  /// A task that will call get() (put(v)) when it first runs; returns its id (its index in results).
  int spawn_getter() { return spawn(true, 0); }
  int spawn_putter(int v) { return spawn(false, v); }
  /// put_nowait(): false for QueueFull.
  bool put_nowait(int v) {
    if (full())
      return false;
    items_.push_back(v);
    wakeup_next(getters_);
    return true;
  }
  /// get_nowait(): nullopt for QueueEmpty.
  std::optional<int> get_nowait() {
    if (items_.empty())
      return std::nullopt;
    const int v = take();
    wakeup_next(putters_);
    return v;
  }
  /// task.cancel() of a task that has started and is not done.
  void cancel(int t) {
    for (std::deque<int>* waiters : {&getters_, &putters_})
      if (auto it = std::find(waiters->begin(), waiters->end(), t); it != waiters->end()) {
        waiters->erase(it);
        results[static_cast<std::size_t>(t)] = cancelled;
        return;
      }
    if (tasks_[static_cast<std::size_t>(t)].woken)
      tasks_[static_cast<std::size_t>(t)].cancel_requested = true;
  }
  /// Runs the ready tasks until none is left.
  void settle() {
    while (!ready_.empty()) {
      const int t = ready_.front();
      ready_.pop_front();
      step(t);
    }
  }
  /// Tasks waiting, or woken and not cancelled.
  [[nodiscard]] std::vector<int> live() const {
    std::vector<int> out;
    for (std::size_t t = 0; t < results.size(); ++t)
      if (results[t] == waiting && !tasks_[t].cancel_requested)
        out.push_back(static_cast<int>(t));
    return out;
  }
  /// A getter (putter) woken and not run yet, cancelled or not.
  [[nodiscard]] bool woken(bool getter) const {
    return std::any_of(ready_.begin(), ready_.end(), [&](int t) {
      return tasks_[static_cast<std::size_t>(t)].woken && tasks_[static_cast<std::size_t>(t)].getter == getter;
    });
  }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] bool full() const noexcept { return maxsize_ > 0 && items_.size() >= maxsize_; }
  int take() {
    auto it = items_.begin();
    if (kind_ == queue_kind::lifo)
      it = items_.end() - 1;
    else if (kind_ == queue_kind::priority)
      it = std::min_element(items_.begin(), items_.end());
    const int v = *it;
    items_.erase(it);
    return v;
  }

  std::vector<int> results; // per task: getter: its item; putter: put_done; or cancelled, or waiting

private:
  struct task_info {
    bool getter;
    int value;
    bool woken = false;
    bool cancel_requested = false;
  };
  int spawn(bool getter, int v) {
    tasks_.push_back(task_info{getter, v});
    results.push_back(waiting);
    ready_.push_back(static_cast<int>(tasks_.size()) - 1);
    return static_cast<int>(tasks_.size()) - 1;
  }
  void wakeup_next(std::deque<int>& waiters) {
    if (!waiters.empty()) {
      const int t = waiters.front();
      waiters.pop_front();
      tasks_[static_cast<std::size_t>(t)].woken = true;
      ready_.push_back(t);
    }
  }
  void step(int t) {
    task_info& x = tasks_[static_cast<std::size_t>(t)];
    int& result = results[static_cast<std::size_t>(t)];
    x.woken = false;
    if (x.cancel_requested) { // the except clause of get() / put()
      result = cancelled;
      if (x.getter ? !items_.empty() : !full())
        wakeup_next(x.getter ? getters_ : putters_);
    } else if (x.getter) {
      if (items_.empty()) {
        getters_.push_back(t);
      } else {
        result = take();
        wakeup_next(putters_);
      }
    } else {
      if (full()) {
        putters_.push_back(t);
      } else {
        items_.push_back(x.value);
        wakeup_next(getters_);
        result = put_done;
      }
    }
  }

  queue_kind kind_;
  std::size_t maxsize_;
  std::vector<task_info> tasks_;
  std::vector<int> items_; // fifo: front first; lifo: top last; priority: the smallest leaves
  std::deque<int> ready_;
  std::deque<int> getters_;
  std::deque<int> putters_;
};

template <class Q> task<> model_putter(Q* q, std::vector<int>* outcome, std::size_t id, int v) {
  co_await q->put(v);
  (*outcome)[id] = asyncio_queue_sim::put_done;
}

/// Plays bounded scenario `seed` (maxsize 1 to 3) on a queue of `kind` (Q: lifo or priority) against
/// asyncio_queue_sim. Each round: getters arrive and run (take an item or wait), then putters do (put
/// or wait); then puts (try_put), gets (try_get) and cancels of waiting or woken tasks, after which the
/// woken tasks run. try_put is only tried when no putter is woken and try_get when no getter is (else
/// asyncio's newcomer would overtake it, which corio does not do); getters and putters arrive in
/// separate batches for the same reason. With `compare` (the ready queue in order, as asyncio's), every
/// task's outcome, each try_put/try_get, size(), full() and unfinished(), before and after the woken
/// tasks run, and what is left must be asyncio's; without it, no item may be lost or duplicated.
template <class Q> task<> play_bounded_scenario(queue_kind kind, std::uint64_t seed, bool compare) {
  using namespace std::chrono_literals;
  splitmix64 rng(seed);
  const std::size_t maxsize = 1 + static_cast<std::size_t>(rng.below(3));
  asyncio_queue_sim m(kind, maxsize);
  Q q(maxsize);
  std::vector<int> outcome, put, got; // put, got: by try_put and try_get
  std::vector<join_handle<void>> hs;
  std::vector<std::optional<int>> putter_item; // per task: a putter's item
  int next_value = 0;
  auto value = [&] { return kind == queue_kind::priority ? rng.below(10) : next_value++; };
  auto result = [&](std::size_t t) {
    return outcome[t] != asyncio_queue_sim::waiting ? outcome[t]
           : hs[t].done()                           ? asyncio_queue_sim::cancelled
                                                    : asyncio_queue_sim::waiting;
  };
  auto check_size = [&](const char* when) {
    EXPECT_LE(q.size(), maxsize) << "seed " << seed << ", " << when;
    if (!compare)
      return;
    EXPECT_EQ(q.size(), m.size()) << "seed " << seed << ", " << when;
    EXPECT_EQ(q.full(), m.full()) << "seed " << seed << ", " << when;
    EXPECT_EQ(q.empty(), m.size() == 0) << "seed " << seed << ", " << when;
    EXPECT_EQ(q.unfinished(), m.size()) << "seed " << seed << ", " << when;
  };
  auto check = [&](const char* when) { // after the ready tasks ran (m.settle(), sleep(1ms))
    check_size(when);
    for (std::size_t t = 0; compare && t < hs.size(); ++t) {
      EXPECT_EQ(result(t), m.results[t]) << "seed " << seed << ", task " << t << ", " << when;
    }
  };
  for (int round = 0; round < kRounds; ++round) {
    for (int k = rng.below(4); k > 0; --k) {
      m.spawn_getter();
      outcome.push_back(asyncio_queue_sim::waiting);
      putter_item.emplace_back();
      hs.push_back(spawn(model_getter(&q, &outcome, outcome.size() - 1)));
    }
    m.settle();
    co_await sleep(1ms); // every ready task runs, in order when the ready queue is
    check("after getters arrived");
    for (int k = rng.below(4); k > 0; --k) {
      const int v = value();
      m.spawn_putter(v);
      outcome.push_back(asyncio_queue_sim::waiting);
      putter_item.emplace_back(v);
      hs.push_back(spawn(model_putter(&q, &outcome, outcome.size() - 1, v)));
    }
    m.settle();
    co_await sleep(1ms);
    check("after putters arrived");
    for (int n = 2 + rng.below(7); n > 0; --n) {
      const int r = rng.below(100);
      if (r < 30) {
        const int v = value();
        if (!m.woken(false)) {
          const bool model_put = m.put_nowait(v);
          const bool corio_put = q.try_put(v);
          if (compare) {
            EXPECT_EQ(corio_put, model_put) << "seed " << seed << ": try_put(" << v << ")";
          }
          if (corio_put)
            put.push_back(v);
        }
      } else if (r < 45) {
        if (!m.woken(true)) {
          const std::optional<int> model_got = m.get_nowait();
          const std::optional<int> corio_got = q.try_get();
          if (compare) {
            EXPECT_EQ(corio_got, model_got) << "seed " << seed << ": try_get()";
          }
          if (corio_got) {
            got.push_back(*corio_got);
            q.task_done();
          }
        }
      } else if (const std::vector<int> live = m.live(); !live.empty()) {
        const int t = live[static_cast<std::size_t>(rng.below(live.size()))];
        m.cancel(t);
        hs[static_cast<std::size_t>(t)].cancel();
      }
    }
    check_size("before the woken tasks run");
    m.settle();
    co_await sleep(1ms);
    check("after a round");
  }
  for (std::size_t t = 0; t < hs.size(); ++t) {
    m.cancel(static_cast<int>(t));
    hs[t].cancel();
  }
  m.settle();
  co_await sleep(1ms);
  check("at the end");
  std::vector<int> left, model_left;
  while (auto v = q.try_get())
    left.push_back(*v);
  while (m.size() > 0)
    model_left.push_back(m.take());
  if (compare) {
    EXPECT_EQ(left, model_left) << "seed " << seed << ": left in the queue";
  }
  // Every item put (by try_put or a putter that returned) was got once or is left: none lost, none
  // duplicated.
  std::vector<int> all = left;
  all.insert(all.end(), got.begin(), got.end());
  for (std::size_t t = 0; t < hs.size(); ++t) {
    EXPECT_TRUE(hs[t].done());
    if (putter_item[t] && outcome[t] == asyncio_queue_sim::put_done)
      put.push_back(*putter_item[t]);
    else if (!putter_item[t] && outcome[t] != asyncio_queue_sim::waiting)
      all.push_back(outcome[t]);
  }
  std::sort(all.begin(), all.end());
  std::sort(put.begin(), put.end());
  EXPECT_EQ(all, put) << "seed " << seed;
  EXPECT_EQ(q.unfinished(), left.size()) << "seed " << seed;
}

} // namespace corio::testing
