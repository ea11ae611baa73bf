// The synchronisation primitives allocate nothing per wait: waiters live in the waiting frames, and the
// queue's ring buffer only allocates to grow. Counted with a replaced global operator new.
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync.hpp>
#include <corio/testing/mock_clock.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdlib>
#include <new>

#include "leak_check.hpp"

namespace {
std::size_t allocations = 0;
bool out_of_memory = false; // every allocation fails while set
} // namespace

void* operator new(std::size_t n) {
  ++allocations;
  if (out_of_memory)
    throw std::bad_alloc();
  if (void* p = std::malloc(n != 0 ? n : 1))
    return p;
  throw std::bad_alloc();
}
namespace {
// Out of line: g++ (the tsan preset's -O1) would otherwise see free() applied to what "operator new"
// returned once both are inlined, and warn (-Wmismatched-new-delete, an error with -Werror).
[[gnu::noinline]] void release(void* p) noexcept { std::free(p); }
} // namespace
void operator delete(void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }

using corio::task;

namespace {

// Two tasks taking turns: every round of each is a real wait (suspend, hand-off, wake).
task<> lock_turns(corio::lock& lk, int n) {
  for (int i = 0; i < n; ++i) {
    auto g = co_await lk.scoped();
    co_await corio::sleep(corio::duration::zero()); // let the other task queue up
  }
}
task<> semaphore_turns(corio::semaphore& s, int n) {
  for (int i = 0; i < n; ++i) {
    auto g = co_await s.scoped();
    co_await corio::sleep(corio::duration::zero());
  }
}
task<> event_ping(corio::event& mine, corio::event& other, int n, bool first) {
  for (int i = 0; i < n; ++i) {
    if (first || i > 0)
      other.set();
    co_await mine.wait();
    mine.clear();
  }
  other.set();
}
task<> condition_turns(corio::condition& cv, int& turn, int me, int n) {
  for (int i = 0; i < n; ++i) {
    auto g = co_await cv.scoped();
    auto mine = [&turn, me] { return turn == me; };
    co_await cv.wait_for(mine);
    turn = 1 - me;
    cv.notify();
  }
}
task<> barrier_rounds(corio::barrier& b, int n) {
  for (int i = 0; i < n; ++i)
    (void)co_await b.wait();
}
task<> produce(corio::queue<int>& q, int n) {
  for (int i = 0; i < n; ++i)
    co_await q.put(i);
}
task<> consume(corio::queue<int>& q, int n) {
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(co_await q.get(), i);
    q.task_done();
  }
}

task<> all_primitives(int n) {
  corio::lock lk;
  corio::semaphore sem(1);
  corio::event ping, pong;
  corio::condition cv;
  int turn = 0;
  corio::barrier b(2);
  corio::queue<int> q(2);
  corio::join_handle<> hs[] = {
      corio::spawn(lock_turns(lk, n)),
      corio::spawn(lock_turns(lk, n)),
      corio::spawn(semaphore_turns(sem, n)),
      corio::spawn(semaphore_turns(sem, n)),
      corio::spawn(event_ping(ping, pong, n, true)),
      corio::spawn(event_ping(pong, ping, n, false)),
      corio::spawn(condition_turns(cv, turn, 0, n)),
      corio::spawn(condition_turns(cv, turn, 1, n)),
      corio::spawn(barrier_rounds(b, n)),
      corio::spawn(barrier_rounds(b, n)),
      corio::spawn(produce(q, 3 * n)),
      corio::spawn(consume(q, 3 * n)),
  };
  for (auto& h : hs)
    co_await h;
  co_await q.join();
}

std::size_t allocations_for(int n) {
  corio::testing::mock_clock clock;
  const std::size_t before = allocations;
  corio::run(all_primitives(n), {.clock = &clock});
  return allocations - before;
}

TEST(SyncAlloc, NoAllocationPerWait) {
  corio::testing::leak_check leaks;
  (void)allocations_for(100); // warms up the frame pool
  const std::size_t few = allocations_for(100);
  const std::size_t many = allocations_for(1100);
  EXPECT_GT(few, 0u) << "the counter works: the loop itself allocates";
  EXPECT_EQ(many, few) << "1000 more rounds of waiting on every primitive allocated " << (many - few) << " times";
}

TEST(SyncAlloc, UncontendedOperationsNeverSuspend) {
  corio::testing::leak_check leaks;
  corio::testing::mock_clock clock;
  corio::run(
      []() -> task<> {
        corio::lock lk;
        corio::semaphore sem(1);
        corio::queue<int> q;
        const std::size_t before = allocations;
        for (int i = 0; i < 1'000'000; ++i) { // a million synchronous completions: a flat stack
          co_await lk.acquire();
          lk.release();
          auto g = co_await sem.scoped();
          co_await q.put(i);
          EXPECT_EQ(co_await q.get(), i);
        }
        EXPECT_EQ(allocations - before, 1u); // the queue's ring buffer, once
      }(),
      {.clock = &clock});
}

// A queue that swings between empty and a burst keeps its room: shrinking at the first pop under a
// quarter full reallocated twice per swing.
TEST(SyncAlloc, AQueueSwingingBetweenEmptyAndABurstAllocatesOnlyToGrow) {
  corio::testing::leak_check leaks;
  corio::testing::mock_clock clock;
  corio::run(
      []() -> task<> {
        corio::queue<int> q;
        auto swing = [](corio::queue<int>& qq) -> task<> {
          for (int i = 0; i < 40; ++i)
            EXPECT_TRUE(qq.try_put(int(i)));
          for (int i = 0; i < 40; ++i)
            EXPECT_EQ(qq.try_get(), i);
          co_return;
        };
        co_await swing(q); // grows to 64 slots
        const std::size_t before = allocations;
        for (int round = 0; round < 1000; ++round)
          co_await swing(q);
        EXPECT_EQ(allocations - before, 0u);
      }(),
      {.clock = &clock});
}

// After a spike, a capacity's worth of quiet traffic gives the memory back, down to 16 slots.
TEST(SyncAlloc, TheRingBufferShrinksAfterASpike) {
  corio::detail::ring_buffer<int> rb;
  for (int i = 0; i < 4096; ++i)
    rb.push_back(int(i));
  EXPECT_EQ(rb.capacity(), 4096u);
  for (int i = 0; i < 4096; ++i)
    EXPECT_EQ(rb.pop_front(), i);
  EXPECT_EQ(rb.capacity(), 4096u); // 1024 pops under a quarter full: not yet a capacity's worth
  for (int i = 0; i < 100'000 && rb.capacity() > 16; ++i) {
    rb.push_back(int(i));
    EXPECT_EQ(rb.pop_front(), i);
  }
  EXPECT_EQ(rb.capacity(), 16u);
  // Order survives resizing with the head anywhere.
  for (int i = 0; i < 10; ++i)
    rb.push_back(int(i));
  rb.push_front(-1);
  for (int i = -1; i < 10; ++i)
    EXPECT_EQ(rb.pop_front(), i);
  EXPECT_TRUE(rb.empty());
}

// Shrinking is optional: when its allocation fails, pop_front() still returns the item (it used to raise
// bad_alloc, and the item was lost) and the buffer keeps its capacity, to try again later.
TEST(SyncAlloc, AFailedShrinkLosesNoItem) {
  corio::detail::ring_buffer<int> rb;
  for (int i = 0; i < 4096; ++i)
    rb.push_back(int(i));
  out_of_memory = true;
  int expected = 0;
  std::size_t failed = 0;
  for (; expected < 4096; ++expected) {
    try {
      if (rb.pop_front() != expected)
        break;
    } catch (const std::bad_alloc&) {
      ++failed;
    }
  }
  for (int i = 0; i < 20'000; ++i) { // quiet traffic: a shrink is due again and again
    rb.push_back(int(i));
    try {
      if (rb.pop_front() != i)
        break;
    } catch (const std::bad_alloc&) {
      ++failed;
    }
  }
  out_of_memory = false;
  EXPECT_EQ(expected, 4096);
  EXPECT_EQ(failed, 0u);
  EXPECT_TRUE(rb.empty());
  EXPECT_EQ(rb.capacity(), 4096u);
  for (int i = 0; i < 20'000 && rb.capacity() > 16; ++i) { // memory is back: it shrinks now
    rb.push_back(int(i));
    EXPECT_EQ(rb.pop_front(), i);
  }
  EXPECT_EQ(rb.capacity(), 16u);
}

// A woken getter that runs frees a slot and lets a waiting putter's item in, which may grow the ring: out
// of memory, the getter still gets its own item (it was lost to the bad_alloc), and the putter keeps its
// item and waits on, to be let in by the next get.
TEST(SyncAlloc, AFailedAllocationLettingAPutterInLosesNoItem) {
  corio::testing::mock_clock clock;
  corio::run(
      []() -> task<> {
        corio::queue<int> q(65);
        std::vector<int> got;
        got.reserve(1); // nothing but the queue may allocate while memory is out
        auto getter = corio::spawn(
            [](corio::queue<int>* q, std::vector<int>* got) -> task<> { got->push_back(co_await q->get()); }(&q, &got));
        co_await corio::sleep(corio::duration::zero()); // the getter waits
        EXPECT_TRUE(q.try_put(0));                      // handed to it
        for (int i = 1; i <= 64; ++i)                   // the ring's 64 slots, all taken
          EXPECT_TRUE(q.try_put(int(i)));
        EXPECT_TRUE(q.full());
        auto putter = corio::spawn_eager([](corio::queue<int>* q) -> task<> { co_await q->put(100); }(&q));
        EXPECT_FALSE(putter.done()); // it waits for room, before the getter runs
        out_of_memory = true;        // the getter runs: admitting 100 would need a bigger ring
        co_await getter;
        out_of_memory = false;
        EXPECT_EQ(got, std::vector<int>{0});
        EXPECT_FALSE(putter.done()) << "no room was made: it waits on";
        EXPECT_EQ(q.try_get(), 1); // frees a slot: 100 goes in now
        co_await putter;
        std::vector<int> rest;
        while (auto v = q.try_get())
          rest.push_back(*v);
        std::vector<int> expected;
        for (int i = 2; i <= 64; ++i)
          expected.push_back(i);
        expected.push_back(100);
        EXPECT_EQ(rest, expected);
      }(),
      {.clock = &clock});
}

} // namespace
