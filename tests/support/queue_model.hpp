// A reference model of asyncio's Queue, LifoQueue and PriorityQueue, and random scenarios that play
// corio's queues against it: getters arrive, items are put, getters are cancelled (waiting, or woken
// with an item and not run yet), and each getter's outcome and what is left must be asyncio's.
// tests/integration/queue_asyncio_model.py is the same model and generator in Python, replayed on
// asyncio itself.
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
  /// The first getter woken and not run yet, if it was not cancelled; else -1.
  [[nodiscard]] int first_woken_uncancelled() const {
    return !woken_.empty() && cancel_requested_.count(woken_.front()) == 0 ? woken_.front() : -1;
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
    // corio hands a put item to its getter at once; asyncio's takes the top (lifo) or the smallest
    // (priority) only when it runs. They agree when the first getter woken is cancelled.
    if (const int g = m.first_woken_uncancelled(); kind != queue_kind::fifo && g >= 0) {
      m.cancel(g);
      hs[static_cast<std::size_t>(g)].cancel();
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

} // namespace corio::testing
