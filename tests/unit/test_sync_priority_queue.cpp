// corio::priority_queue<T, Compare> and corio::lifo_queue<T>: their order (sorted, stable among equals,
// custom comparators; last in, first out), and the waiting, wake-up, cancellation, join/task_done and
// shutdown rules they share with corio::queue (basic_queue).
#include <corio/debug.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync.hpp>
#include <corio/testing/mock_clock.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "leak_check.hpp"
#include "loop_fixture.hpp"
#include "queue_model.hpp"

// Allocations are counted (with a replaced global operator new) to show that steady-state traffic
// allocates nothing: the heap and the stack only allocate to grow.
namespace {
std::size_t allocations = 0;
} // namespace

void* operator new(std::size_t n) {
  ++allocations;
  if (void* p = std::malloc(n != 0 ? n : 1))
    return p;
  throw std::bad_alloc();
}
namespace {
// Out of line, as in test_sync_alloc.cpp (-Wmismatched-new-delete once both are inlined).
[[gnu::noinline]] void release(void* p) noexcept { std::free(p); }
} // namespace
void operator delete(void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }

using namespace std::chrono_literals;
using corio::task;
using corio::testing::expect_no_other_task;
using corio::testing::run_then_abandon;
using corio::testing::was_cancelled;

namespace {

using log_t = std::vector<int>;
using int_pq = corio::priority_queue<int>;
using int_lifo = corio::lifo_queue<int>;

/// A move-only item with a priority: ordered by `priority` only, like Python's (priority, data) tuples.
struct job {
  int priority = 0;
  int id = 0;
  std::unique_ptr<int> payload;
};
struct by_priority {
  bool operator()(const job& a, const job& b) const { return a.priority < b.priority; }
};
using job_queue = corio::priority_queue<job, by_priority>;
job make_job(int priority, int id) { return job{priority, id, std::make_unique<int>(id)}; }

class SyncPriorityQueue : public corio::testing::ordered_and_shuffled {};
class SyncLifoQueue : public corio::testing::ordered_and_shuffled {};

/// Which woken task runs first decides which item it takes (in asyncio too): asyncio's order is
/// expected with the ready queue in order (GetParam() 0), and the same items in any order otherwise.
void expect_in_order_or_sorted(bool in_order, log_t got, log_t asyncio_order) {
  if (!in_order) {
    std::sort(got.begin(), got.end());
    std::sort(asyncio_order.begin(), asyncio_order.end());
  }
  EXPECT_EQ(got, asyncio_order);
}

// Getters woken with an item, one of them cancelled before it runs: what the others get depends on the
// order in which they run (in asyncio too), so these compare with asyncio with the ready queue in order.
class SyncPriorityQueueWokenGetters : public corio::testing::ordered_and_shuffled {};
class SyncLifoQueueWokenGetters : public corio::testing::ordered_and_shuffled {};

INSTANTIATE_TEST_SUITE_P(Order, SyncPriorityQueue, corio::testing::ready_orders());
INSTANTIATE_TEST_SUITE_P(Order, SyncLifoQueue, corio::testing::ready_orders());
INSTANTIATE_TEST_SUITE_P(InOrder, SyncPriorityQueueWokenGetters, ::testing::Values(0u));
INSTANTIATE_TEST_SUITE_P(InOrder, SyncLifoQueueWokenGetters, ::testing::Values(0u));

corio::time_point now() { return corio::event_loop::current()->time(); }

/// Arrives after `arrive`, gets one item and logs it.
template <class Q> task<> getter(Q& q, log_t& log, corio::duration arrive) {
  if (arrive > 0ms)
    co_await corio::sleep(arrive);
  log.push_back(co_await q.get());
}

/// Arrives after `arrive`, puts `v`, logs it once put() returned, then awaits once more.
template <class Q> task<> putter(Q& q, log_t& done, int v, corio::duration arrive) {
  if (arrive > 0ms)
    co_await corio::sleep(arrive);
  co_await q.put(v);
  done.push_back(v);
  co_await corio::sleep(0ms);
}

template <class Q> task<int> get_one(Q& q, corio::duration arrive) {
  co_await corio::sleep(arrive);
  co_return co_await q.get();
}

/// Gets until the queue is shut down, marking each item done after `work`; returns how many it got.
template <class Q> task<int> worker(Q& q, log_t& log, corio::duration work) {
  int n = 0;
  while (true) {
    std::optional<int> v;
    try {
      v = co_await q.get();
    } catch (const corio::queue_shut_down&) {
    }
    if (!v)
      co_return n;
    ++n;
    co_await corio::sleep(work);
    log.push_back(*v);
    q.task_done();
  }
}

template <class Q> task<std::string> get_outcome(Q& q) {
  try {
    co_return std::to_string(co_await q.get());
  } catch (const corio::queue_shut_down&) {
  }
  co_return "shut down";
}
template <class Q> task<std::string> put_outcome(Q& q, int v) {
  try {
    co_await q.put(v);
    co_return "put";
  } catch (const corio::queue_shut_down&) {
  }
  co_return "shut down";
}

template <class Q> task<log_t> drain(Q& q) {
  log_t out;
  while (!q.empty())
    out.push_back(co_await q.get());
  co_return out;
}

// ---- priority_queue: order ----

TEST_P(SyncPriorityQueue, RandomInsertsComeOutSorted) {
  run([]() -> task<> {
    int_pq q;
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> dist(-50, 50);
    log_t put;
    for (int i = 0; i < 300; ++i) {
      put.push_back(dist(rng));
      co_await q.put(put.back());
    }
    EXPECT_EQ(q.size(), 300u);
    std::sort(put.begin(), put.end());
    const log_t got = co_await drain(q);
    EXPECT_EQ(got, put);
  });
}

TEST_P(SyncPriorityQueue, InterleavedPutsAndGetsAlwaysReturnTheSmallest) {
  run([]() -> task<> {
    int_pq q;
    std::multiset<int> model;
    std::mt19937 rng(7);
    std::size_t puts = 0;
    for (int round = 0; round < 2000; ++round) {
      if (model.empty() || rng() % 3 != 0) {
        const int v = static_cast<int>(rng() % 1000);
        ++puts;
        model.insert(v);
        EXPECT_TRUE(q.try_put(v));
      } else {
        EXPECT_EQ(co_await q.get(), *model.begin());
        model.erase(model.begin());
      }
      EXPECT_EQ(q.size(), model.size());
    }
    EXPECT_EQ(q.unfinished(), puts);
  });
}

TEST_P(SyncPriorityQueue, EqualItemsLeaveInTheOrderTheyWerePut) {
  run([]() -> task<> {
    job_queue q;
    for (int id = 0; id < 60; ++id)
      co_await q.put(make_job(id % 3, id)); // priorities 0, 1, 2, 0, 1, 2, ...
    for (int priority = 0; priority < 3; ++priority)
      for (int id = priority; id < 60; id += 3) {
        job j = co_await q.get();
        EXPECT_EQ(j.priority, priority);
        EXPECT_EQ(j.id, id);
        EXPECT_EQ(*j.payload, id);
      }
    EXPECT_TRUE(q.empty());
  });
}

TEST_P(SyncPriorityQueue, CustomComparator) {
  run([]() -> task<> {
    corio::priority_queue<int, std::greater<int>> q(0, std::greater<int>{});
    for (int v : {3, 9, 1, 7, 5})
      co_await q.put(v);
    log_t got;
    while (auto v = q.try_get())
      got.push_back(*v);
    EXPECT_EQ(got, (log_t{9, 7, 5, 3, 1}));
    // A comparator with state.
    auto by_distance = [](int to) { return [to](int a, int b) { return std::abs(a - to) < std::abs(b - to); }; };
    corio::priority_queue<int, decltype(by_distance(0))> near(0, by_distance(10));
    for (int v : {0, 12, 30, 9, 10})
      EXPECT_TRUE(near.try_put(v));
    const log_t by_nearness = co_await drain(near); // await into a named local (g++ 12, HAZARDS.md 2)
    EXPECT_EQ(by_nearness, (log_t{10, 9, 12, 0, 30}));
  });
}

TEST_P(SyncPriorityQueue, TryPutAndTryGet) {
  run([]() -> task<> {
    int_pq q(2);
    EXPECT_FALSE(q.try_get().has_value());
    EXPECT_TRUE(q.try_put(5));
    const int two = 2;
    EXPECT_TRUE(q.try_put(two));
    EXPECT_TRUE(q.full());
    EXPECT_FALSE(q.try_put(1)); // full
    EXPECT_EQ(q.size(), 2u);
    EXPECT_EQ(q.try_get(), 2);
    EXPECT_EQ(q.try_get(), 5);
    EXPECT_EQ(q.try_get(), std::nullopt);
    co_return;
  });
}

TEST_P(SyncPriorityQueue, MoveOnlyItemsWithACustomComparator) {
  run([]() -> task<> {
    job_queue q(1);
    auto producer = [](job_queue& out) -> task<> {
      for (int i = 0; i < 5; ++i)
        co_await out.put(make_job(10 - i, i));
    };
    auto h = corio::spawn(producer(q));
    co_await corio::sleep(1ms);
    EXPECT_TRUE(q.full());
    job extra = make_job(0, 99);
    EXPECT_FALSE(q.try_put(std::move(extra)));
    EXPECT_NE(extra.payload, nullptr) << "a refused item is left untouched";
    for (int i = 0; i < 5; ++i) {
      job j = co_await q.get(); // one at a time: the order they are put
      EXPECT_EQ(j.id, i);
      EXPECT_EQ(*j.payload, i);
    }
    co_await h;
    EXPECT_TRUE(q.try_put(std::move(extra)));
    EXPECT_EQ(*q.try_get()->payload, 99);
  });
}

// ---- priority_queue: waiting, wake-up, cancellation ----

TEST_P(SyncPriorityQueue, BoundedPutWaitsAndPuttersAreLetInInArrivalOrder) {
  run([in_order = GetParam() == 0]() -> task<> {
    int_pq q(2);
    log_t put_done;
    co_await q.put(10);
    co_await q.put(20);
    std::vector<corio::join_handle<>> hs;
    hs.push_back(corio::spawn(putter(q, put_done, 1, 3ms))); // waits third
    hs.push_back(corio::spawn(putter(q, put_done, 2, 1ms))); // first
    hs.push_back(corio::spawn(putter(q, put_done, 3, 2ms))); // second
    co_await corio::sleep(10ms);
    EXPECT_TRUE(put_done.empty()); // all three wait for room
    log_t got, sizes;
    for (int i = 0; i < 5; ++i) {
      got.push_back(co_await q.get());
      sizes.push_back(static_cast<int>(q.size()));
    }
    // Putters are let in by arrival (2, 3, 1), not by their item, and each adds it when it runs (as in
    // asyncio 3.11: 10, 20, 2, 3, 1 and qsize() 1, 0, 1, 0, 0): get() takes 20 before 2 is in.
    expect_in_order_or_sorted(in_order, got, {10, 20, 2, 3, 1});
    EXPECT_EQ(sizes, (log_t{1, 0, 1, 0, 0}));
    for (auto& h : hs)
      co_await h;
    std::sort(put_done.begin(), put_done.end());
    EXPECT_EQ(put_done, (log_t{1, 2, 3}));
    expect_no_other_task();
  });
}

TEST_P(SyncPriorityQueue, PutWakesTheLongestWaitingGetterWhichTakesTheSmallestWhenItRuns) {
  run([in_order = GetParam() == 0]() -> task<> {
    int_pq q;
    auto c = corio::spawn(get_one(q, 3ms));
    auto a = corio::spawn(get_one(q, 1ms));
    auto b = corio::spawn(get_one(q, 2ms));
    co_await corio::sleep(10ms);
    co_await q.put(30);
    EXPECT_EQ(q.try_get(), std::nullopt) << "30 is kept for the woken getter (asyncio's get_nowait() takes it)";
    co_await q.put(10);
    co_await q.put(20);
    EXPECT_EQ(q.size(), 3u) << "each woken getter's item counts until it runs";
    // As asyncio 3.11: a, b, c run in the order they were woken, each taking the smallest left.
    const int ga = co_await a; // named: g++ 12 and co_await in braced lists
    const int gb = co_await b;
    const int gc = co_await c;
    expect_in_order_or_sorted(in_order, {ga, gb, gc}, {10, 20, 30});
    EXPECT_EQ(q.unfinished(), 3u);
    expect_no_other_task();
  });
}

TEST_P(SyncPriorityQueue, CancelAQueuedGetter) {
  run([]() -> task<> {
    int_pq q;
    log_t log;
    auto a = corio::spawn(getter(q, log, 1ms));
    auto b = corio::spawn(getter(q, log, 2ms));
    co_await corio::sleep(5ms);
    a.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    co_await q.put(7);
    co_await b;
    EXPECT_EQ(log, (log_t{7}));
  });
}

TEST_P(SyncPriorityQueue, WokenGetterCancelledBeforeItRunsWakesTheNextGetter) {
  run([]() -> task<> {
    int_pq q;
    log_t log;
    auto a = corio::spawn(getter(q, log, 1ms));
    auto b = corio::spawn(getter(q, log, 2ms));
    co_await corio::sleep(5ms);
    co_await q.put(7); // wakes a...
    a.cancel();        // ...which is cancelled before it runs
    EXPECT_TRUE(co_await was_cancelled(a));
    co_await b;
    EXPECT_EQ(log, (log_t{7}));
    EXPECT_EQ(q.unfinished(), 1u);
    expect_no_other_task();
  });
}

task<> get_job(job_queue& q, int& got_id) {
  job j = co_await q.get();
  got_id = j.id;
}

TEST_P(SyncPriorityQueue, WokenGetterCancelledBeforeItRunsLeavesTheItemsInPlace) {
  run([]() -> task<> {
    job_queue q;
    int got_id = -1;
    auto a = corio::spawn(get_job(q, got_id));
    co_await corio::sleep(1ms);
    co_await q.put(make_job(5, 0)); // wakes a
    co_await q.put(make_job(5, 1)); // an equal item put later
    co_await q.put(make_job(7, 2));
    co_await q.put(make_job(3, 3));
    a.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    EXPECT_EQ(got_id, -1);
    EXPECT_EQ(q.size(), 4u);
    log_t ids;
    while (auto j = q.try_get())
      ids.push_back(j->id);
    EXPECT_EQ(ids, (log_t{3, 0, 1, 2})) << "by priority, ahead of the equal item put after it";
    EXPECT_EQ(q.unfinished(), 4u);
    expect_no_other_task();
  });
}

TEST_P(SyncPriorityQueue, WokenGetterCancelledBeforeItRunsInABoundedQueue) {
  run([]() -> task<> {
    int_pq q(2);
    log_t log, put_done;
    auto a = corio::spawn(getter(q, log, 1ms));
    co_await corio::sleep(5ms);
    EXPECT_TRUE(q.try_put(7)); // wakes a
    EXPECT_TRUE(q.try_put(8)); // the queue is full now
    EXPECT_FALSE(q.try_put(9));
    auto p = corio::spawn(putter(q, put_done, 1, 0ms)); // waits for room
    a.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    EXPECT_EQ(q.size(), 2u); // nothing lost, never over maxsize
    EXPECT_TRUE(put_done.empty()) << "still full: the putter waits on";
    // As asyncio 3.11: the first get() lets the putter in, but 1 is added only when it runs, after
    // this task's next get() (which does not wait) took 8.
    EXPECT_EQ(co_await q.get(), 7);
    EXPECT_EQ(co_await q.get(), 8);
    EXPECT_EQ(co_await q.get(), 1);
    co_await p;
    EXPECT_TRUE(log.empty());
    EXPECT_EQ(put_done, (log_t{1}));
    expect_no_other_task();
  });
}

// The expected outcomes are what the asyncio twin prints (woken_getters in queue_model.hpp).
TEST_P(SyncPriorityQueueWokenGetters, FirstOneCancelledLetsTheNextTakeTheSmallest) {
  run([]() -> task<> {
    using corio::testing::woken_getters;
    auto two = woken_getters<int_pq>(2, {1, 9}, "A", {}); // named: g++ 12 and temporaries
    EXPECT_EQ(co_await two, "A:c B=1 left=[9]");
    auto three = woken_getters<int_pq>(3, {5, 3, 7}, "A", {});
    EXPECT_EQ(co_await three, "A:c B=3 C=5 left=[7]");
    auto one = woken_getters<int_pq>(1, {5, 1}, "A", {});
    EXPECT_EQ(co_await one, "A:c left=[1, 5]");
  });
}

// asyncio's woken getter takes the smallest item there is when it runs, put before or after it was
// woken (the outcomes are asyncio 3.11's).
TEST_P(SyncPriorityQueueWokenGetters, EachTakesTheSmallestWhenItRuns) {
  run([]() -> task<> {
    using corio::testing::woken_getters;
    auto one = woken_getters<int_pq>(1, {5, 1}, "", {}); // named: g++ 12 and temporaries
    EXPECT_EQ(co_await one, "A=1 left=[5]");
    auto three = woken_getters<int_pq>(3, {5, 3, 7}, "B", {1});
    EXPECT_EQ(co_await three, "A=1 B:c C=3 left=[5, 7]");
    auto after = woken_getters<int_pq>(2, {4}, "A", {2, 9});
    EXPECT_EQ(co_await after, "A:c B=2 left=[4, 9]");
  });
}

TEST_P(SyncPriorityQueue, RandomCancellationsOfWokenGettersGoAsInAsyncio) {
  const bool in_order = GetParam() == 0; // else only: nothing lost, nothing duplicated
  for (int seed = 1; seed <= corio::testing::kSeeds && !HasFailure(); ++seed)
    run([seed, in_order] {
      return corio::testing::play_queue_scenario<int_pq>(corio::testing::queue_kind::priority,
                                                         static_cast<std::uint64_t>(seed), in_order);
    });
}

// Bounded, with putters: random arrivals, try_put/try_get and cancels of waiting or woken getters and
// putters against asyncio_queue_sim, CPython's queues.py step by step (queue_model.hpp).
TEST_P(SyncPriorityQueue, RandomPutsGetsAndCancelsOnABoundedQueueGoAsInAsyncio) {
  const bool in_order = GetParam() == 0; // else only: nothing lost, nothing duplicated, never over maxsize
  for (int seed = 1; seed <= corio::testing::kSeeds && !HasFailure(); ++seed)
    run([seed, in_order] {
      return corio::testing::play_bounded_scenario<int_pq>(corio::testing::queue_kind::priority,
                                                           static_cast<std::uint64_t>(seed), in_order);
    });
}

TEST_P(SyncPriorityQueue, CancelAQueuedPutterWithdrawsItsItem) {
  run([]() -> task<> {
    int_pq q(1);
    log_t put_done;
    co_await q.put(5);
    auto p1 = corio::spawn(putter(q, put_done, 1, 1ms));
    auto p2 = corio::spawn(putter(q, put_done, 2, 2ms));
    co_await corio::sleep(5ms);
    p1.cancel();
    EXPECT_TRUE(co_await was_cancelled(p1));
    EXPECT_EQ(co_await q.get(), 5);
    EXPECT_EQ(co_await q.get(), 2);
    co_await p2;
    EXPECT_EQ(put_done, (log_t{2}));
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.unfinished(), 2u);
  });
}

TEST_P(SyncPriorityQueue, LetInPutterCancelledBeforeItRunsPutsNothingAndPassesItsSlotOn) {
  run([]() -> task<> {
    int_pq q(1);
    log_t put_done;
    co_await q.put(0);
    auto p = corio::spawn(putter(q, put_done, 1, 1ms));
    auto p2 = corio::spawn(putter(q, put_done, 2, 2ms));
    co_await corio::sleep(5ms);
    EXPECT_EQ(co_await q.get(), 0); // lets p in: it adds 1 when it runs...
    EXPECT_EQ(q.size(), 0u) << "asyncio's qsize() does not count 1 before p runs";
    EXPECT_FALSE(q.full());
    EXPECT_FALSE(q.try_put(9)) << "the slot is p's: no newcomer overtakes it";
    p.cancel(); // ...but it is cancelled before it runs: as in asyncio, 1 is not put, and p2 is let in
    EXPECT_TRUE(co_await was_cancelled(p));
    co_await p2;
    EXPECT_EQ(put_done, (log_t{2}));
    EXPECT_EQ(q.try_get(), 2);
    EXPECT_EQ(q.unfinished(), 2u);
    expect_no_other_task();
  });
}

TEST_P(SyncPriorityQueue, JoinWaitsForTaskDone) {
  run([]() -> task<> {
    int_pq q;
    co_await q.join();
    EXPECT_THROW(q.task_done(), corio::invalid_state_error);
    for (int v : {3, 1, 2})
      co_await q.put(v);
    log_t log;
    auto w = corio::spawn(worker(q, log, 1s));
    const auto t0 = now();
    co_await q.join();
    EXPECT_EQ(now() - t0, 3s);
    EXPECT_EQ(log, (log_t{1, 2, 3}));
    EXPECT_EQ(q.unfinished(), 0u);
    EXPECT_THROW(q.task_done(), corio::invalid_state_error);
    q.shutdown();
    EXPECT_EQ(co_await w, 3);
    expect_no_other_task();
  });
}

TEST_P(SyncPriorityQueue, ShutdownRefusesPutsAndDrainsGetsInOrder) {
  run([]() -> task<> {
    int_pq q(5);
    for (int v : {3, 1, 2})
      co_await q.put(v);
    q.shutdown();
    EXPECT_TRUE(q.is_shut_down());
    EXPECT_THROW(co_await q.put(0), corio::queue_shut_down);
    EXPECT_THROW(q.try_put(0), corio::queue_shut_down);
    EXPECT_EQ(co_await q.get(), 1);
    EXPECT_EQ(q.try_get(), 2);
    EXPECT_EQ(co_await q.get(), 3);
    EXPECT_THROW(co_await q.get(), corio::queue_shut_down);
    EXPECT_THROW((void)q.try_get(), corio::queue_shut_down);
    q.shutdown();
  });
}

TEST_P(SyncPriorityQueue, ShutdownWakesWaitingGettersAndPutters) {
  run([]() -> task<> {
    int_pq empty_q, full_q(1);
    co_await full_q.put(5);
    auto g = corio::spawn(get_outcome(empty_q));
    auto p = corio::spawn(put_outcome(full_q, 1));
    co_await corio::sleep(1ms);
    empty_q.shutdown();
    full_q.shutdown();
    EXPECT_EQ(co_await g, "shut down");
    EXPECT_EQ(co_await p, "shut down");
    EXPECT_EQ(full_q.size(), 1u); // the waiting put did not happen
    EXPECT_EQ(co_await full_q.get(), 5);
  });
}

TEST_P(SyncPriorityQueue, ImmediateShutdownDropsItemsAndReleasesJoin) {
  run([]() -> task<> {
    int_pq q;
    log_t log;
    for (int v : {4, 2, 1, 3})
      co_await q.put(v);
    auto w = corio::spawn(worker(q, log, 1h)); // takes item 1 and holds it for an hour
    co_await corio::sleep(1ms);
    EXPECT_EQ(q.size(), 3u);
    const auto t0 = now();
    q.shutdown(true);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.unfinished(), 1u);
    EXPECT_THROW(co_await q.get(), corio::queue_shut_down);
    co_await q.join();
    EXPECT_EQ(now() - t0, 1h - 1ms);
    EXPECT_EQ(co_await w, 1);
    EXPECT_EQ(log, (log_t{1}));
    expect_no_other_task();
  });
}

TEST_P(SyncPriorityQueue, ItemOfAGetterCancelledAfterAnImmediateShutdownIsDropped) {
  run([]() -> task<> {
    int_pq q;
    log_t log;
    auto a = corio::spawn(getter(q, log, 0ms));
    co_await corio::sleep(1ms);
    co_await q.put(7); // wakes a
    q.shutdown(true);
    a.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.unfinished(), 0u); // dropped like the rest, counted as done
    co_await q.join();
    EXPECT_TRUE(log.empty());
  });
}

TEST_P(SyncPriorityQueue, ManyProducersAndConsumersLoseAndDuplicateNothing) {
  run([]() -> task<> {
    int_pq q(3);
    log_t done;
    auto producer = [](int_pq& out, int id) -> task<> {
      for (int i = 0; i < 25; ++i) {
        co_await out.put(id * 1000 + (i * 7) % 25);
        if (i % 3 == id % 3)
          co_await corio::sleep(1ms);
      }
    };
    std::vector<corio::join_handle<>> ps;
    std::vector<corio::join_handle<int>> cs;
    for (int id = 1; id <= 4; ++id)
      ps.push_back(corio::spawn(producer(q, id)));
    for (int c = 0; c < 3; ++c)
      cs.push_back(corio::spawn(worker(q, done, std::chrono::milliseconds(c))));
    for (auto& h : ps)
      co_await h;
    co_await q.join();
    q.shutdown();
    int total = 0;
    for (auto& h : cs)
      total += co_await h;
    EXPECT_EQ(total, 100);
    std::sort(done.begin(), done.end());
    log_t expected;
    for (int id = 1; id <= 4; ++id)
      for (int i = 0; i < 25; ++i)
        expected.push_back(id * 1000 + i);
    EXPECT_EQ(done, expected);
    expect_no_other_task();
  });
}

TEST_P(SyncPriorityQueue, AbandonedWaitersUnlinkThemselves) {
  int_pq empty_q, full_q(1);
  log_t log, put_done;
  run_then_abandon([&]() -> task<> {
    co_await full_q.put(5);
    corio::spawn(getter(empty_q, log, 0ms));
    corio::spawn(putter(full_q, put_done, 1, 0ms));
    co_await corio::sleep(1ms);
  });
  EXPECT_EQ(full_q.try_get(), 5); // no putter left to move in
  EXPECT_TRUE(full_q.empty());
  EXPECT_TRUE(empty_q.try_put(1));
  EXPECT_EQ(empty_q.size(), 1u); // no getter left to wake
  EXPECT_TRUE(log.empty());
  EXPECT_TRUE(put_done.empty());
}

// ---- lifo_queue ----

TEST_P(SyncLifoQueue, LastInFirstOut) {
  run([]() -> task<> {
    int_lifo q;
    for (int i = 1; i <= 100; ++i)
      co_await q.put(i);
    EXPECT_EQ(q.size(), 100u);
    for (int i = 100; i > 50; --i)
      EXPECT_EQ(co_await q.get(), i);
    co_await q.put(1000);
    EXPECT_EQ(co_await q.get(), 1000);
    for (int i = 50; i >= 1; --i)
      EXPECT_EQ(q.try_get(), i);
    EXPECT_TRUE(q.empty());
  });
}

TEST_P(SyncLifoQueue, TryPutAndTryGet) {
  run([]() -> task<> {
    int_lifo q(2);
    EXPECT_FALSE(q.try_get().has_value());
    EXPECT_TRUE(q.try_put(1));
    const int two = 2;
    EXPECT_TRUE(q.try_put(two));
    EXPECT_TRUE(q.full());
    EXPECT_FALSE(q.try_put(3));
    EXPECT_EQ(q.try_get(), 2);
    EXPECT_EQ(q.try_get(), 1);
    EXPECT_EQ(q.try_get(), std::nullopt);
    co_return;
  });
}

TEST_P(SyncLifoQueue, BoundedPutWaitsAndPuttersAreLetInInArrivalOrder) {
  run([in_order = GetParam() == 0]() -> task<> {
    int_lifo q(2);
    log_t put_done;
    co_await q.put(1);
    co_await q.put(2);
    std::vector<corio::join_handle<>> hs;
    for (int v : {5, 3, 4}) // arriving at 5, 3, 4 ms
      hs.push_back(corio::spawn(putter(q, put_done, v, std::chrono::milliseconds(v))));
    co_await corio::sleep(10ms);
    EXPECT_TRUE(put_done.empty());
    log_t got, sizes;
    for (int i = 0; i < 5; ++i) {
      got.push_back(co_await q.get());
      sizes.push_back(static_cast<int>(q.size()));
    }
    // Let in by arrival (3, 4, 5), each putter adds its item when it runs, as in asyncio 3.11.
    expect_in_order_or_sorted(in_order, got, {2, 1, 4, 3, 5});
    EXPECT_EQ(sizes, (log_t{1, 0, 1, 0, 0}));
    for (auto& h : hs)
      co_await h;
    std::sort(put_done.begin(), put_done.end());
    EXPECT_EQ(put_done, (log_t{3, 4, 5}));
    expect_no_other_task();
  });
}

TEST_P(SyncLifoQueue, PutWakesTheLongestWaitingGetterWhichTakesTheTopWhenItRuns) {
  run([in_order = GetParam() == 0]() -> task<> {
    int_lifo q;
    auto c = corio::spawn(get_one(q, 3ms));
    auto a = corio::spawn(get_one(q, 1ms));
    auto b = corio::spawn(get_one(q, 2ms));
    co_await corio::sleep(10ms);
    for (int v : {10, 20, 30})
      co_await q.put(v);
    EXPECT_EQ(q.size(), 3u) << "each woken getter's item counts until it runs";
    // As asyncio 3.11: a, b, c run in the order they were woken, each taking the top.
    const int ga = co_await a; // named: g++ 12 and co_await in braced lists
    const int gb = co_await b;
    const int gc = co_await c;
    expect_in_order_or_sorted(in_order, {ga, gb, gc}, {30, 20, 10});
  });
}

TEST_P(SyncLifoQueue, WokenGetterCancelledBeforeItRunsLeavesTheStackAsItWas) {
  run([]() -> task<> {
    int_lifo q(3);
    log_t log, put_done;
    auto a = corio::spawn(getter(q, log, 1ms));
    co_await corio::sleep(5ms);
    EXPECT_TRUE(q.try_put(7)); // wakes a
    EXPECT_TRUE(q.try_put(8));
    EXPECT_TRUE(q.try_put(9));                           // the queue is full now
    auto p = corio::spawn(putter(q, put_done, 10, 0ms)); // waits for room
    a.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    EXPECT_EQ(q.size(), 3u); // nothing lost, never over maxsize
    EXPECT_TRUE(put_done.empty()) << "still full: the putter waits on";
    // As asyncio 3.11: the first get() lets the putter in; it adds 10 when it runs, after this task's
    // get()s that do not wait.
    EXPECT_EQ(co_await q.get(), 9);
    EXPECT_EQ(co_await q.get(), 8);
    EXPECT_EQ(co_await q.get(), 7);
    EXPECT_EQ(co_await q.get(), 10);
    co_await p;
    EXPECT_TRUE(log.empty());
    EXPECT_EQ(put_done, (log_t{10}));
    expect_no_other_task();
  });
}

// The expected outcomes are what the asyncio twin prints (woken_getters in queue_model.hpp).
TEST_P(SyncLifoQueueWokenGetters, CancelledOnesLeaveTheStackAsInAsyncio) {
  run([]() -> task<> {
    using corio::testing::woken_getters;
    auto first = woken_getters<int_lifo>(2, {1, 2}, "A", {}); // named: g++ 12 and temporaries
    EXPECT_EQ(co_await first, "A:c B=2 left=[1]");
    auto below = woken_getters<int_lifo>(1, {1, 2}, "A", {});
    EXPECT_EQ(co_await below, "A:c left=[2, 1]");
    auto both = woken_getters<int_lifo>(2, {1, 2, 3}, "BA", {});
    EXPECT_EQ(co_await both, "A:c B:c left=[3, 2, 1]");
    auto put_after = woken_getters<int_lifo>(3, {1, 2}, "A", {3});
    EXPECT_EQ(co_await put_after, "A:c B=3 C=2 left=[1]");
  });
}

// asyncio's woken getter takes the top when it runs: the item put last, put before or after it was
// woken (the outcomes are asyncio 3.11's).
TEST_P(SyncLifoQueueWokenGetters, EachTakesTheTopWhenItRuns) {
  run([]() -> task<> {
    using corio::testing::woken_getters;
    auto one = woken_getters<int_lifo>(1, {1, 2}, "", {}); // named: g++ 12 and temporaries
    EXPECT_EQ(co_await one, "A=2 left=[1]");
    auto two = woken_getters<int_lifo>(2, {1, 2}, "", {3});
    EXPECT_EQ(co_await two, "A=3 B=2 left=[1]");
    auto three = woken_getters<int_lifo>(3, {1, 2}, "", {});
    EXPECT_EQ(co_await three, "A=2 B=1 C:c left=[]");
  });
}

// Between the puts and the woken getter's run, the queue holds both items, as asyncio's does
// (qsize() 2, full() with maxsize 2); the getter then takes the top, 2, and 1 is left (asyncio 3.11).
// A try_get() in between may take the item not kept for the getter (the top, as get_nowait() does),
// and the getter then gets the other.
TEST_P(SyncLifoQueueWokenGetters, BothItemsCountUntilTheWokenGetterRunsAndItTakesTheTop) {
  run([]() -> task<> {
    int_lifo q(2);
    log_t log;
    auto a = corio::spawn(getter(q, log, 0ms));
    co_await corio::sleep(1ms);
    EXPECT_TRUE(q.try_put(1)); // wakes a
    EXPECT_TRUE(q.try_put(2));
    EXPECT_EQ(q.size(), 2u);
    EXPECT_FALSE(q.empty());
    EXPECT_TRUE(q.full());
    EXPECT_FALSE(q.try_put(3));
    co_await a;
    EXPECT_EQ(log, (log_t{2}));
    EXPECT_EQ(q.try_get(), 1);

    auto b = corio::spawn(getter(q, log, 0ms));
    co_await corio::sleep(1ms);
    EXPECT_TRUE(q.try_put(4)); // wakes b
    EXPECT_TRUE(q.try_put(5));
    EXPECT_EQ(q.try_get(), 5) << "asyncio's get_nowait() takes the top too";
    EXPECT_EQ(q.try_get(), std::nullopt) << "4 is kept for b (asyncio's get_nowait() would take it)";
    EXPECT_EQ(q.size(), 1u);
    co_await b;
    EXPECT_EQ(log, (log_t{2, 4}));
    EXPECT_TRUE(q.empty());
    expect_no_other_task();
  });
}

// Python 3.13: after shutdown(immediate=True) a woken getter that had not run raises QueueShutDown (its
// item was dropped with the rest), and a putter woken by a get() and not run raises it after any
// shutdown() (it had not put its item yet).
TEST_P(SyncLifoQueueWokenGetters, WokenGettersAndPuttersThatHaveNotRunRaiseQueueShutDown) {
  run([]() -> task<> {
    int_lifo q, bounded(1);
    auto g = corio::spawn(get_outcome(q));
    co_await bounded.put(0);
    auto p = corio::spawn(put_outcome(bounded, 1));
    co_await corio::sleep(1ms);
    EXPECT_TRUE(q.try_put(7)); // wakes g
    q.shutdown(true);
    EXPECT_EQ(co_await g, "shut down");
    EXPECT_EQ(q.unfinished(), 0u);
    EXPECT_EQ(bounded.try_get(), 0); // lets p in
    bounded.shutdown();
    EXPECT_EQ(co_await p, "shut down");
    EXPECT_TRUE(bounded.empty());
    EXPECT_EQ(bounded.unfinished(), 1u); // 0, not marked done
    expect_no_other_task();
  });
}

TEST_P(SyncLifoQueue, RandomCancellationsOfWokenGettersGoAsInAsyncio) {
  const bool in_order = GetParam() == 0; // else only: nothing lost, nothing duplicated
  for (int seed = 1; seed <= corio::testing::kSeeds && !HasFailure(); ++seed)
    run([seed, in_order] {
      return corio::testing::play_queue_scenario<int_lifo>(corio::testing::queue_kind::lifo,
                                                           static_cast<std::uint64_t>(seed), in_order);
    });
}

// Bounded, with putters: random arrivals, try_put/try_get and cancels of waiting or woken getters and
// putters against asyncio_queue_sim, CPython's queues.py step by step (queue_model.hpp).
TEST_P(SyncLifoQueue, RandomPutsGetsAndCancelsOnABoundedQueueGoAsInAsyncio) {
  const bool in_order = GetParam() == 0; // else only: nothing lost, nothing duplicated, never over maxsize
  for (int seed = 1; seed <= corio::testing::kSeeds && !HasFailure(); ++seed)
    run([seed, in_order] {
      return corio::testing::play_bounded_scenario<int_lifo>(corio::testing::queue_kind::lifo,
                                                             static_cast<std::uint64_t>(seed), in_order);
    });
}

TEST_P(SyncLifoQueue, WokenGetterCancelledBeforeItRunsWakesTheNextGetter) {
  run([]() -> task<> {
    int_lifo q;
    log_t log;
    auto a = corio::spawn(getter(q, log, 1ms));
    auto b = corio::spawn(getter(q, log, 2ms));
    co_await corio::sleep(5ms);
    co_await q.put(7);
    a.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    co_await b;
    EXPECT_EQ(log, (log_t{7}));
    expect_no_other_task();
  });
}

TEST_P(SyncLifoQueue, CancelAQueuedPutterWithdrawsItsItem) {
  run([]() -> task<> {
    int_lifo q(1);
    log_t put_done;
    co_await q.put(0);
    auto p1 = corio::spawn(putter(q, put_done, 1, 1ms));
    auto p2 = corio::spawn(putter(q, put_done, 2, 2ms));
    co_await corio::sleep(5ms);
    p1.cancel();
    EXPECT_TRUE(co_await was_cancelled(p1));
    EXPECT_EQ(co_await q.get(), 0);
    EXPECT_EQ(co_await q.get(), 2);
    co_await p2;
    EXPECT_EQ(put_done, (log_t{2}));
    EXPECT_EQ(q.unfinished(), 2u);
  });
}

TEST_P(SyncLifoQueue, JoinAndShutdown) {
  run([]() -> task<> {
    int_lifo q;
    for (int v : {1, 2, 3})
      co_await q.put(v);
    log_t log;
    auto w = corio::spawn(worker(q, log, 1s));
    co_await q.join();
    EXPECT_EQ(log, (log_t{3, 2, 1}));
    co_await q.put(4); // wakes the worker, which waits again
    EXPECT_EQ(q.size(), 1u) << "4 counts until the worker runs";
    co_await q.put(5);
    co_await q.put(6);
    q.shutdown();
    EXPECT_THROW(co_await q.put(7), corio::queue_shut_down);
    co_await q.join(); // the worker drains what was queued
    EXPECT_EQ(log, (log_t{3, 2, 1, 6, 5, 4})) << "as asyncio 3.13: the woken worker takes the top when it runs";
    EXPECT_EQ(co_await w, 6);
    expect_no_other_task();
  });
}

TEST_P(SyncLifoQueue, ImmediateShutdownDropsItemsAndWakesWaiters) {
  run([]() -> task<> {
    int_lifo q(2), empty_q;
    co_await q.put(1);
    co_await q.put(2);
    auto p = corio::spawn(put_outcome(q, 3));
    auto g = corio::spawn(get_outcome(empty_q));
    co_await corio::sleep(1ms);
    q.shutdown(true);
    empty_q.shutdown(true);
    EXPECT_EQ(co_await p, "shut down");
    EXPECT_EQ(co_await g, "shut down");
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.unfinished(), 0u);
    co_await q.join();
    EXPECT_THROW((void)q.try_get(), corio::queue_shut_down);
  });
}

TEST_P(SyncLifoQueue, MoveOnlyItems) {
  run([]() -> task<> {
    corio::lifo_queue<std::unique_ptr<int>> q(3);
    auto producer = [](corio::lifo_queue<std::unique_ptr<int>>& out) -> task<> {
      for (int i = 0; i < 3; ++i)
        co_await out.put(std::make_unique<int>(i));
    };
    co_await producer(q);
    auto extra = std::make_unique<int>(99);
    EXPECT_FALSE(q.try_put(std::move(extra)));
    EXPECT_NE(extra, nullptr) << "a refused item is left untouched";
    for (int i = 2; i >= 0; --i) {
      std::unique_ptr<int> p = co_await q.get();
      EXPECT_EQ(*p, i);
    }
    EXPECT_TRUE(q.try_put(std::move(extra)));
    EXPECT_EQ(**q.try_get(), 99);
  });
}

/// Movable, not assignable (a const member): lifo_queue takes it all the same.
struct labelled {
  const int label;
  std::unique_ptr<int> payload;
};

TEST_P(SyncLifoQueue, UnassignableItems) {
  run([]() -> task<> {
    using item_queue = corio::lifo_queue<labelled>;
    static_assert(!std::is_move_assignable_v<labelled>);
    item_queue q;
    int got = -1;
    auto get_label = [](item_queue& qq, int& out) -> task<> { out = (co_await qq.get()).label; };
    auto a = corio::spawn(get_label(q, got));
    co_await corio::sleep(1ms);
    for (int i = 1; i <= 3; ++i) // the first wakes a
      EXPECT_TRUE(q.try_put(labelled{i, std::make_unique<int>(i)}));
    a.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    EXPECT_EQ(got, -1);
    log_t labels;
    while (auto item = q.try_get()) {
      EXPECT_EQ(*item->payload, item->label);
      labels.push_back(item->label);
    }
    EXPECT_EQ(labels, (log_t{3, 2, 1}));
  });
}

// ---- allocation ----

template <class Q> task<> produce_into(Q& q, int n) {
  for (int i = 0; i < n; ++i) {
    co_await q.put((i * 7919) % 1000);
    if (i % 5 == 0)
      co_await corio::sleep(0ms);
  }
}
template <class Q> task<> consume_from(Q& q, int n) {
  for (int i = 0; i < n; ++i) {
    (void)co_await q.get();
    q.task_done();
    if (i % 7 == 0)
      co_await corio::sleep(0ms);
  }
}

/// Two producers and a consumer on each queue (bounded: puts and gets both wait, items pile up).
task<> traffic(int n) {
  corio::priority_queue<int> pq(8);
  corio::lifo_queue<int> lq(8);
  corio::join_handle<> hs[] = {
      corio::spawn(produce_into(pq, n)), corio::spawn(produce_into(pq, n)), corio::spawn(consume_from(pq, 2 * n)),
      corio::spawn(produce_into(lq, n)), corio::spawn(produce_into(lq, n)), corio::spawn(consume_from(lq, 2 * n)),
  };
  for (auto& h : hs)
    co_await h;
  co_await pq.join();
  co_await lq.join();
  pq.shutdown();
  lq.shutdown();
}

std::size_t allocations_for(int n) {
  corio::testing::mock_clock clock;
  const std::size_t before = allocations;
  corio::run(traffic(n), {.clock = &clock});
  return allocations - before;
}

TEST(SyncPriorityAndLifoQueueAlloc, SteadyStateAllocatesNothing) {
  corio::testing::leak_check leaks;
  (void)allocations_for(100); // warms up the frame pool
  const std::size_t few = allocations_for(100);
  const std::size_t many = allocations_for(2100);
  EXPECT_GT(few, 0u) << "the counter works";
  EXPECT_EQ(many, few) << "2000 more items through each queue allocated " << (many - few) << " times";
}

// dump_tasks names each queue's waits after its kind.
TEST(SyncQueueNames, WaitsAreNamedAfterTheKindOfQueue) {
  corio::testing::mock_clock clock;
  auto tree = corio::run(
      []() -> task<std::string> {
        corio::queue<int> fifo(1);
        int_lifo lifo;
        int_pq pq;
        fifo.try_put(0);
        auto a = corio::spawn([](corio::queue<int>& q) -> task<> { co_await q.put(1); }(fifo), "fifo-putter");
        auto b = corio::spawn([](int_lifo& q) -> task<> { (void)co_await q.get(); }(lifo), "lifo-getter");
        auto c = corio::spawn([](int_pq& q) -> task<> { (void)co_await q.get(); }(pq), "pq-getter");
        co_await corio::sleep(1s);
        std::string t = corio::format_tasks(*corio::event_loop::current());
        (void)fifo.try_get();
        lifo.try_put(1);
        pq.try_put(1);
        co_await a;
        co_await b;
        co_await c;
        co_return t;
      }(),
      {.clock = &clock});
  EXPECT_NE(tree.find("'fifo-putter' waiting: queue.put"), std::string::npos) << tree;
  EXPECT_NE(tree.find("'lifo-getter' waiting: lifo_queue.get"), std::string::npos) << tree;
  EXPECT_NE(tree.find("'pq-getter' waiting: priority_queue.get"), std::string::npos) << tree;
}

} // namespace
