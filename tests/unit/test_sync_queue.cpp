// corio::queue<T>: FIFO hand-off, bounded puts, join/task_done, shutdown, move-only items, cancellation.
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/queue.hpp>
#include <corio/testing/mock_clock.hpp>
#include <corio/timeout.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loop_fixture.hpp"
#include "queue_model.hpp"

using namespace std::chrono_literals;
using corio::task;
using corio::testing::expect_no_other_task;
using corio::testing::run_then_abandon;
using corio::testing::was_cancelled;

namespace {

using log_t = std::vector<int>;
using int_queue = corio::queue<int>;

class SyncQueue : public corio::testing::ordered_and_shuffled {};
// Getters woken with an item, one of them cancelled before it runs: what the others get depends on the
// order in which they run (in asyncio too, where each takes the next item when it runs), so these
// compare with asyncio with the ready queue in order, as asyncio's is.
class SyncQueueWokenGetters : public corio::testing::ordered_and_shuffled {};

INSTANTIATE_TEST_SUITE_P(Order, SyncQueue, corio::testing::ready_orders());
INSTANTIATE_TEST_SUITE_P(InOrder, SyncQueueWokenGetters, ::testing::Values(0u));

corio::time_point now() { return corio::event_loop::current()->time(); }

/// Arrives after `arrive`, gets one item and logs it.
task<> getter(int_queue& q, log_t& log, corio::duration arrive) {
  if (arrive > 0ms)
    co_await corio::sleep(arrive);
  log.push_back(co_await q.get());
}

/// Arrives after `arrive`, puts `v`, logs it once put() returned, then awaits once more.
task<> putter(int_queue& q, log_t& done, int v, corio::duration arrive) {
  if (arrive > 0ms)
    co_await corio::sleep(arrive);
  co_await q.put(v);
  done.push_back(v);
  co_await corio::sleep(0ms);
}

/// Gets until the queue is shut down, marking each item done after `work`; returns how many it got.
/// Logs each item in `taken` as it gets it, and in `log` once done.
task<int> worker(int_queue& q, log_t& log, corio::duration work, log_t* taken = nullptr) {
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
    if (taken != nullptr)
      taken->push_back(*v);
    co_await corio::sleep(work);
    log.push_back(*v);
    q.task_done();
  }
}

TEST_P(SyncQueue, FifoUnbounded) {
  run([]() -> task<> {
    int_queue q;
    EXPECT_EQ(q.maxsize(), 0u);
    EXPECT_TRUE(q.empty());
    for (int i = 1; i <= 100; ++i)
      co_await q.put(i);
    EXPECT_EQ(q.size(), 100u);
    EXPECT_FALSE(q.full());
    for (int i = 1; i <= 100; ++i)
      EXPECT_EQ(co_await q.get(), i);
    EXPECT_TRUE(q.empty());
  });
}

TEST_P(SyncQueue, TryPutAndTryGet) {
  run([]() -> task<> {
    int_queue q(2);
    EXPECT_FALSE(q.try_get().has_value());
    EXPECT_TRUE(q.try_put(1));
    const int two = 2;
    EXPECT_TRUE(q.try_put(two));
    EXPECT_TRUE(q.full());
    EXPECT_FALSE(q.try_put(3)); // full
    EXPECT_EQ(q.size(), 2u);
    EXPECT_EQ(q.try_get(), 1);
    EXPECT_EQ(q.try_get(), 2);
    EXPECT_EQ(q.try_get(), std::nullopt);
    co_return;
  });
}

TEST_P(SyncQueue, BoundedPutWaitsForRoomAndPuttersKeepTheirOrder) {
  run([]() -> task<> {
    int_queue q(2);
    log_t put_done;
    co_await q.put(1);
    co_await q.put(2);
    std::vector<corio::join_handle<>> hs;
    for (int v : {5, 3, 4}) // arriving at 5, 3, 4 ms
      hs.push_back(corio::spawn(putter(q, put_done, v, std::chrono::milliseconds(v))));
    co_await corio::sleep(10ms);
    EXPECT_TRUE(put_done.empty()); // all three wait for room
    EXPECT_EQ(q.size(), 2u);
    log_t got;
    for (int i = 0; i < 5; ++i) {
      got.push_back(co_await q.get());
      EXPECT_EQ(q.size(), i < 3 ? 2u : 4u - i); // each get lets the first putter's item in at once
    }
    EXPECT_EQ(got, (log_t{1, 2, 3, 4, 5}));
    for (auto& h : hs)
      co_await h;
    std::sort(put_done.begin(), put_done.end());
    EXPECT_EQ(put_done, (log_t{3, 4, 5}));
    expect_no_other_task();
  });
}

TEST_P(SyncQueue, GettersAreServedInArrivalOrderAndCannotBeOvertaken) {
  run([]() -> task<> {
    int_queue q;
    log_t log;
    std::vector<corio::join_handle<>> hs;
    for (int ms : {3, 1, 2})
      hs.push_back(corio::spawn(getter(q, log, std::chrono::milliseconds(ms))));
    co_await corio::sleep(10ms);
    co_await q.put(10); // to the getter that arrived at 1 ms
    EXPECT_EQ(q.try_get(), std::nullopt) << "the item was handed to a waiting getter";
    co_await q.put(20);
    co_await q.put(30);
    EXPECT_EQ(q.size(), 3u) << "each handed to its getter, which has not run yet";
    co_await hs[1];
    co_await hs[2];
    co_await hs[0];
    EXPECT_TRUE(q.empty());
    // The getters ran in whatever order the loop chose; who got what is fixed by arrival.
    EXPECT_EQ(q.unfinished(), 3u);
    std::sort(log.begin(), log.end());
    EXPECT_EQ(log, (log_t{10, 20, 30}));
    expect_no_other_task();
  });
}

task<int> get_one(int_queue& q, corio::duration arrive) {
  co_await corio::sleep(arrive);
  co_return co_await q.get();
}

TEST_P(SyncQueue, EachGetterGetsTheItemOfItsTurn) {
  run([]() -> task<> {
    int_queue q;
    auto c = corio::spawn(get_one(q, 3ms));
    auto a = corio::spawn(get_one(q, 1ms));
    auto b = corio::spawn(get_one(q, 2ms));
    co_await corio::sleep(10ms);
    for (int v : {10, 20, 30})
      co_await q.put(v);
    EXPECT_EQ(co_await a, 10);
    EXPECT_EQ(co_await b, 20);
    EXPECT_EQ(co_await c, 30);
  });
}

TEST_P(SyncQueue, JoinWaitsForTaskDone) {
  run([]() -> task<> {
    int_queue q;
    co_await q.join(); // nothing unfinished
    EXPECT_THROW(q.task_done(), corio::invalid_state_error);
    log_t log;
    auto w = corio::spawn(worker(q, log, 1s));
    const auto t0 = now();
    for (int i = 1; i <= 3; ++i)
      co_await q.put(i);
    co_await q.join();
    EXPECT_EQ(now() - t0, 3s);
    EXPECT_EQ(log, (log_t{1, 2, 3}));
    EXPECT_EQ(q.unfinished(), 0u);
    EXPECT_THROW(q.task_done(), corio::invalid_state_error); // more calls than items
    q.shutdown();
    EXPECT_EQ(co_await w, 3);
    expect_no_other_task();
  });
}

TEST_P(SyncQueue, ShutdownRefusesPutsAndDrainsGets) {
  run([]() -> task<> {
    int_queue q(5);
    co_await q.put(1);
    co_await q.put(2);
    q.shutdown();
    EXPECT_TRUE(q.is_shut_down());
    EXPECT_THROW(co_await q.put(3), corio::queue_shut_down);
    EXPECT_THROW(q.try_put(3), corio::queue_shut_down);
    EXPECT_EQ(co_await q.get(), 1); // what was queued can still be taken
    EXPECT_EQ(q.try_get(), 2);
    EXPECT_THROW(co_await q.get(), corio::queue_shut_down);
    EXPECT_THROW((void)q.try_get(), corio::queue_shut_down);
    q.shutdown(); // idempotent
  });
}

task<std::string> get_outcome(int_queue& q) {
  try {
    co_return std::to_string(co_await q.get());
  } catch (const corio::queue_shut_down&) {
  }
  co_return "shut down";
}
task<std::string> put_outcome(int_queue& q, int v) {
  try {
    co_await q.put(v);
    co_return "put";
  } catch (const corio::queue_shut_down&) {
  }
  co_return "shut down";
}

TEST_P(SyncQueue, ShutdownWakesWaitingGettersAndPutters) {
  run([]() -> task<> {
    int_queue empty_q, full_q(1);
    co_await full_q.put(0);
    auto g = corio::spawn(get_outcome(empty_q));
    auto p = corio::spawn(put_outcome(full_q, 1));
    co_await corio::sleep(1ms);
    empty_q.shutdown();
    full_q.shutdown();
    EXPECT_EQ(co_await g, "shut down");
    EXPECT_EQ(co_await p, "shut down");
    EXPECT_EQ(full_q.size(), 1u); // the waiting put did not happen
    EXPECT_EQ(co_await full_q.get(), 0);
  });
}

TEST_P(SyncQueue, ImmediateShutdownDropsItemsAndReleasesJoin) {
  run([]() -> task<> {
    int_queue q;
    log_t log;
    for (int i = 1; i <= 4; ++i)
      co_await q.put(i);
    auto w = corio::spawn(worker(q, log, 1h)); // takes item 1 and holds it for an hour
    co_await corio::sleep(1ms);
    EXPECT_EQ(q.size(), 3u);
    const auto t0 = now();
    q.shutdown(true);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.unfinished(), 1u); // the item being processed
    EXPECT_THROW(co_await q.get(), corio::queue_shut_down);
    co_await q.join(); // returns once the item in hand is done
    EXPECT_EQ(now() - t0, 1h - 1ms);
    EXPECT_EQ(co_await w, 1);
    EXPECT_EQ(log, (log_t{1}));
    expect_no_other_task();
  });
}

TEST_P(SyncQueue, MoveOnlyItems) {
  run([]() -> task<> {
    corio::queue<std::unique_ptr<int>> q(1);
    auto producer = [](corio::queue<std::unique_ptr<int>>& out) -> task<> {
      for (int i = 0; i < 5; ++i)
        co_await out.put(std::make_unique<int>(i));
    };
    auto h = corio::spawn(producer(q));
    co_await corio::sleep(1ms);
    EXPECT_TRUE(q.full());
    auto extra = std::make_unique<int>(99);
    EXPECT_FALSE(q.try_put(std::move(extra)));
    EXPECT_NE(extra, nullptr) << "a refused item is left untouched";
    for (int i = 0; i < 5; ++i) {
      std::unique_ptr<int> p = co_await q.get();
      EXPECT_EQ(*p, i);
    }
    co_await h;
    EXPECT_TRUE(q.try_put(std::move(extra)));
    EXPECT_EQ(**q.try_get(), 99);
  });
}

TEST_P(SyncQueue, CancelAQueuedGetter) {
  run([]() -> task<> {
    int_queue q;
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

TEST_P(SyncQueue, GetterCancelledAfterTheHandOffPassesTheItemToTheNextGetter) {
  run([]() -> task<> {
    int_queue q;
    log_t log;
    auto a = corio::spawn(getter(q, log, 1ms));
    auto b = corio::spawn(getter(q, log, 2ms));
    co_await corio::sleep(5ms);
    co_await q.put(7); // handed to a...
    a.cancel();        // ...which is cancelled before it runs
    EXPECT_TRUE(co_await was_cancelled(a));
    co_await b;
    EXPECT_EQ(log, (log_t{7}));
    EXPECT_EQ(q.unfinished(), 1u);
    expect_no_other_task();
  });
}

TEST_P(SyncQueue, GetterCancelledAfterTheHandOffPutsTheItemBackFirst) {
  run([]() -> task<> {
    int_queue q(1);
    log_t log, put_done;
    auto a = corio::spawn(getter(q, log, 1ms));
    co_await corio::sleep(5ms);
    EXPECT_TRUE(q.try_put(7)); // handed to a: the queue is full now
    EXPECT_TRUE(q.full());
    auto p = corio::spawn(putter(q, put_done, 8, 0ms)); // waits for room
    a.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    EXPECT_EQ(q.size(), 1u); // 7 back in the queue: nothing lost, never over maxsize
    EXPECT_TRUE(q.full());
    EXPECT_TRUE(put_done.empty());
    EXPECT_EQ(co_await q.get(), 7); // frees the slot for 8
    EXPECT_EQ(co_await q.get(), 8);
    co_await p;
    EXPECT_TRUE(log.empty());
    EXPECT_EQ(put_done, (log_t{8}));
    expect_no_other_task();
  });
}

// The expected outcomes are what the asyncio twin prints (woken_getters in queue_model.hpp).
TEST_P(SyncQueueWokenGetters, FirstOneCancelledLetsTheOthersTakeTheItemsInOrder) {
  run([]() -> task<> {
    using corio::testing::woken_getters;
    auto first = woken_getters<int_queue>(3, {1, 2}, "A", {}); // named: g++ 12 and temporaries
    EXPECT_EQ(co_await first, "A:c B=1 C=2 left=[]");
    auto with_a_put_after = woken_getters<int_queue>(4, {1, 2, 3}, "A", {4});
    EXPECT_EQ(co_await with_a_put_after, "A:c B=1 C=2 D=3 left=[4]");
  });
}

TEST_P(SyncQueueWokenGetters, OneCancelledInTheMiddleOrSeveral) {
  run([]() -> task<> {
    using corio::testing::woken_getters;
    auto middle = woken_getters<int_queue>(3, {1, 2, 3}, "B", {}); // named: g++ 12 and temporaries
    EXPECT_EQ(co_await middle, "A=1 B:c C=2 left=[3]");
    auto two = woken_getters<int_queue>(4, {1, 2, 3}, "AC", {});
    EXPECT_EQ(co_await two, "A:c B=1 C:c D=2 left=[3]");
  });
}

TEST_P(SyncQueueWokenGetters, CancelledInABoundedQueueWithAPutterWaiting) {
  run([]() -> task<> {
    int_queue q(2);
    log_t log, put_done;
    auto a = corio::spawn(getter(q, log, 0ms));
    auto b = corio::spawn(getter(q, log, 0ms));
    co_await corio::sleep(1ms);
    EXPECT_TRUE(q.try_put(1)); // handed to a
    EXPECT_TRUE(q.try_put(2)); // handed to b: the queue is full now, as asyncio's
    EXPECT_EQ(q.size(), 2u);
    EXPECT_FALSE(q.try_put(3));
    auto p = corio::spawn(putter(q, put_done, 3, 0ms));
    a.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    co_await b;
    EXPECT_EQ(log, (log_t{1})) << "1 back in front of 2, and b took it again";
    co_await p;
    EXPECT_EQ(put_done, (log_t{3})) << "b's get freed the slot for 3";
    EXPECT_EQ(q.size(), 2u) << "never over maxsize, nothing lost";
    EXPECT_EQ(co_await q.get(), 2);
    EXPECT_EQ(co_await q.get(), 3);
    EXPECT_EQ(q.unfinished(), 3u);
    for (int i = 0; i < 3; ++i)
      q.task_done();
    co_await q.join();
    expect_no_other_task();
  });
}

TEST_P(SyncQueue, AnItemHandedToAWokenGetterCountsUntilItRuns) {
  run([]() -> task<> {
    int_queue q(1);
    log_t log, put_done;
    auto a = corio::spawn(getter(q, log, 0ms));
    auto b = corio::spawn(getter(q, log, 0ms));
    co_await corio::sleep(1ms);
    EXPECT_TRUE(q.empty());
    EXPECT_TRUE(q.try_put(1)); // handed to a, which has not run yet
    EXPECT_EQ(q.size(), 1u) << "asyncio's qsize() counts it until a takes it";
    EXPECT_FALSE(q.empty());
    EXPECT_TRUE(q.full());
    EXPECT_FALSE(q.try_put(2)) << "maxsize 1: no second item, though b waits (asyncio: QueueFull)";
    EXPECT_EQ(q.try_get(), std::nullopt) << "the item is a's";
    auto p = corio::spawn(putter(q, put_done, 2, 0ms)); // waits for room
    co_await a;
    co_await b; // a's get freed the slot: 2 went in, straight to b
    EXPECT_EQ(log, (log_t{1, 2}));
    co_await p;
    EXPECT_EQ(put_done, (log_t{2}));
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.size(), 0u);
    expect_no_other_task();
  });
}

TEST_P(SyncQueueWokenGetters, CancelledAfterAShutdown) {
  run([]() -> task<> {
    int_queue q;
    log_t log;
    auto a = corio::spawn(getter(q, log, 0ms));
    auto b = corio::spawn(getter(q, log, 0ms));
    auto c = corio::spawn(get_outcome(q));
    co_await corio::sleep(1ms);
    co_await q.put(1); // handed to a
    co_await q.put(2); // handed to b
    q.shutdown();      // c raises queue_shut_down; a and b still have their items
    a.cancel();
    EXPECT_TRUE(co_await was_cancelled(a));
    co_await b;
    EXPECT_EQ(co_await c, "shut down");
    EXPECT_EQ(log, (log_t{1})) << "b takes 1, as in asyncio";
    EXPECT_EQ(co_await q.get(), 2) << "back in the queue, which drains after shutdown()";
    EXPECT_THROW(co_await q.get(), corio::queue_shut_down);
    q.task_done();
    q.task_done();
    co_await q.join();

    // After shutdown(immediate) nothing is dealt again: the item given back is dropped, counted as done.
    int_queue r;
    log.clear();
    auto d = corio::spawn(getter(r, log, 0ms));
    auto e = corio::spawn(getter(r, log, 0ms));
    co_await corio::sleep(1ms);
    co_await r.put(1); // handed to d
    co_await r.put(2); // handed to e
    co_await r.put(3); // queued
    r.shutdown(true);  // drops 3
    EXPECT_EQ(r.unfinished(), 2u);
    d.cancel();
    EXPECT_TRUE(co_await was_cancelled(d));
    co_await e;
    EXPECT_EQ(log, (log_t{2}));
    EXPECT_EQ(r.unfinished(), 1u);
    r.task_done();
    co_await r.join();
    expect_no_other_task();
  });
}

TEST_P(SyncQueue, RandomCancellationsOfWokenGettersGoAsInAsyncio) {
  const bool in_order = GetParam() == 0; // else only: nothing lost, nothing duplicated
  for (int seed = 1; seed <= corio::testing::kSeeds && !HasFailure(); ++seed)
    run([seed, in_order] {
      return corio::testing::play_queue_scenario<int_queue>(corio::testing::queue_kind::fifo,
                                                            static_cast<std::uint64_t>(seed), in_order);
    });
}

TEST_P(SyncQueue, CancelAQueuedPutterWithdrawsItsItem) {
  run([]() -> task<> {
    int_queue q(1);
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
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.unfinished(), 2u);
  });
}

TEST_P(SyncQueue, PutterCancelledAfterItsItemWasTakenInStillPut) {
  run([]() -> task<> {
    int_queue q(1);
    log_t put_done;
    co_await q.put(0);
    auto p = corio::spawn(putter(q, put_done, 1, 1ms));
    co_await corio::sleep(5ms);
    EXPECT_EQ(co_await q.get(), 0); // p's item moves in now...
    p.cancel();                     // ...so its put() happened: it returns, the next await raises
    EXPECT_TRUE(co_await was_cancelled(p));
    EXPECT_EQ(put_done, (log_t{1}));
    EXPECT_EQ(q.try_get(), 1);
  });
}

TEST_P(SyncQueue, CancelAJoiner) {
  run([]() -> task<> {
    int_queue q;
    co_await q.put(1);
    auto join_task = [](int_queue& qq) -> task<> { co_await qq.join(); };
    auto j1 = corio::spawn(join_task(q));
    auto j2 = corio::spawn(join_task(q));
    co_await corio::sleep(1ms);
    j1.cancel();
    EXPECT_TRUE(co_await was_cancelled(j1));
    EXPECT_EQ(q.try_get(), 1);
    q.task_done();
    co_await j2;
  });
}

task<> producer(int_queue& q, int id, int n) {
  for (int i = 0; i < n; ++i) {
    co_await q.put(id * 1000 + i);
    if (i % 3 == id % 3)
      co_await corio::sleep(1ms);
  }
}

/// Runs `producers` producers of 25 items each and `consumers` workers on a queue of maxsize 3.
task<> produce_and_consume(int producers, int consumers, log_t& taken) {
  int_queue q(3);
  log_t done;
  std::vector<corio::join_handle<>> ps;
  std::vector<corio::join_handle<int>> cs;
  for (int id = 1; id <= producers; ++id)
    ps.push_back(corio::spawn(producer(q, id, 25)));
  for (int c = 0; c < consumers; ++c)
    cs.push_back(corio::spawn(worker(q, done, std::chrono::milliseconds(c), &taken)));
  for (auto& h : ps)
    co_await h;
  co_await q.join();
  EXPECT_EQ(q.unfinished(), 0u);
  q.shutdown();
  int total = 0;
  for (auto& h : cs)
    total += co_await h;
  EXPECT_EQ(total, 25 * producers);
  EXPECT_EQ(done.size(), taken.size());
  expect_no_other_task();
}

TEST_P(SyncQueue, ManyProducersAndConsumersLoseAndDuplicateNothing) {
  run([]() -> task<> {
    log_t taken;
    co_await produce_and_consume(4, 3, taken);
    std::sort(taken.begin(), taken.end());
    log_t expected;
    for (int id = 1; id <= 4; ++id)
      for (int i = 0; i < 25; ++i)
        expected.push_back(id * 1000 + i);
    EXPECT_EQ(taken, expected);
  });
}

TEST_P(SyncQueue, ItemsOfOneProducerLeaveInTheOrderItPutThem) {
  run([]() -> task<> {
    log_t taken; // one consumer: the order it takes them is the queue's order
    co_await produce_and_consume(4, 1, taken);
    EXPECT_EQ(taken.size(), 100u);
    for (int id = 1; id <= 4; ++id) {
      log_t mine, expected;
      for (int v : taken)
        if (v / 1000 == id)
          mine.push_back(v % 1000);
      for (int i = 0; i < 25; ++i)
        expected.push_back(i);
      EXPECT_EQ(mine, expected) << "producer " << id;
    }
  });
}

task<std::optional<int>> get_within(int_queue& q, corio::duration d) {
  std::optional<int> v;
  try {
    auto deadline = corio::timeout(d);
    v = co_await q.get();
  } catch (const corio::timeout_error&) {
  }
  co_return v;
}

TEST_P(SyncQueue, GetWithATimeout) {
  run([]() -> task<> {
    int_queue q;
    const auto t0 = now();
    EXPECT_EQ(co_await get_within(q, 3s), std::nullopt);
    EXPECT_EQ(now() - t0, 3s);
    auto h = corio::spawn(get_within(q, 3s));
    co_await corio::sleep(1s);
    co_await q.put(5);
    EXPECT_EQ(co_await h, 5);
    EXPECT_TRUE(q.empty());
  });
}

TEST_P(SyncQueue, AbandonedWaitersUnlinkThemselves) {
  int_queue empty_q, full_q(1), handed_q;
  log_t log, put_done, handed_log;
  run_then_abandon([&]() -> task<> {
    co_await full_q.put(0);
    corio::spawn(getter(empty_q, log, 0ms));
    corio::spawn(putter(full_q, put_done, 1, 0ms));
    auto join_task = [](int_queue& q) -> task<> { co_await q.join(); };
    corio::spawn(join_task(full_q));
    corio::spawn(getter(handed_q, handed_log, 0ms));
    co_await corio::sleep(1ms);
    // Handed to the getter just before the loop stops: it never runs.
    corio::event_loop::current()->call_soon([&] { EXPECT_TRUE(handed_q.try_put(5)); });
  });
  EXPECT_TRUE(handed_log.empty());
  EXPECT_TRUE(handed_q.try_put(6));
  EXPECT_EQ(handed_q.size(), 1u); // no getter left, handed or waiting
  EXPECT_EQ(full_q.size(), 1u);
  EXPECT_EQ(full_q.try_get(), 0); // no putter left to move in
  EXPECT_TRUE(full_q.empty());
  full_q.task_done(); // no joiner left to wake
  EXPECT_TRUE(empty_q.try_put(1));
  EXPECT_EQ(empty_q.size(), 1u); // no getter left to hand it to
  EXPECT_TRUE(log.empty());
  EXPECT_TRUE(put_done.empty());
}

task<> queue_dies_first(log_t& log, log_t& put_done) {
  int_queue empty_q, full_q(1);
  auto handed_q = std::make_unique<int_queue>();
  co_await full_q.put(0);
  corio::spawn(getter(empty_q, log, 0ms));
  corio::spawn(putter(full_q, put_done, 1, 0ms));
  corio::spawn(getter(*handed_q, log, 0ms));
  co_await corio::sleep(1ms);
  // Handed to the getter just before the loop stops, and the queue dies: the getter never runs.
  corio::event_loop::current()->call_soon([q = std::move(handed_q)]() mutable {
    EXPECT_TRUE(q->try_put(5));
    q.reset();
  });
}

TEST_P(SyncQueue, QueueDestroyedBeforeItsWaitersUnlinksThem) {
  log_t log, put_done;
  run_then_abandon([&] { return queue_dies_first(log, put_done); });
  EXPECT_TRUE(log.empty());
  EXPECT_TRUE(put_done.empty());
}

} // namespace
