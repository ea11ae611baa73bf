// Guide, step 7: async/await: tasks, futures, combinators, timeouts, cancellation, task groups, sync
// primitives and queues. Runs on a mock clock, so the times it prints are exact.
#include <corio/corio.hpp>
#include <corio/testing/mock_clock.hpp>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

corio::time_point start;
long long ms() { // loop time since main_task started, in milliseconds
  return std::chrono::duration_cast<std::chrono::milliseconds>(corio::event_loop::current()->time() - start).count();
}

// [snippet: article]
// async def coroutine_four(): data = await fetch_data()  — fetch_data returns a Future that the loop
// completes when the (simulated) I/O is done.
corio::future<int> fetch_data() {
  std::printf("Fetching data awaiting IO..\n");
  corio::future<int> result;
  corio::event_loop::current()->call_later(10ms, [result]() mutable {
    std::printf("Fetching data IO ready..\n");
    result.set_result(10);
  });
  return result;
}

corio::task<> coroutine_four() {
  std::printf("Coroutine four doing some work\n");
  int data = co_await fetch_data();
  std::printf("Coroutine four doing more work with data: %d\n", data);
}
// [end snippet]

// [snippet: fetch]
corio::task<int> fetch(int id, corio::duration delay) {
  co_await corio::sleep(delay); // suspends this task; the loop runs the others meanwhile
  co_return id * 10;
}

corio::task<int> fail_after(corio::duration delay, std::string what) {
  co_await corio::sleep(delay);
  throw std::runtime_error(what);
}
// [end snippet]

corio::task<> tasks_demo() {
  // [snippet: spawn]
  corio::join_handle<int> a = corio::spawn(fetch(1, 30ms)); // asyncio.create_task: runs from now on
  corio::join_handle<int> b = corio::spawn(fetch(2, 10ms));
  int rb = co_await b; // 10 ms
  int ra = co_await a; // 30 ms: both ran at the same time
  std::printf("spawn: %d %d at %lld ms\n", ra, rb, ms());
  int direct = co_await fetch(3, 5ms); // co_await on a task runs it inline, in this task
  std::printf("inline: %d at %lld ms\n", direct, ms());
  // [end snippet]
  // [snippet: eager]
  corio::join_handle<int> e = corio::spawn_eager(fetch(4, 5ms), "eager"); // runs now, up to its sleep
  std::printf("eager: done %d, back in '%s'\n", e.done(), corio::current_task().name().c_str());
  int re = co_await e;
  std::printf("eager: %d at %lld ms\n", re, ms());
  // [end snippet]
}

corio::task<> gather_demo() {
  // [snippet: gather]
  auto [x, y] = co_await corio::gather(fetch(1, 20ms), fetch(2, 10ms)); // std::tuple<int, int>
  std::printf("gather: %d %d at %lld ms\n", x, y, ms());

  auto [ok, bad] = co_await corio::gather(corio::return_exceptions, fetch(3, 5ms), fail_after(5ms, "boom"));
  std::printf("return_exceptions: %d, %s\n", ok.value(), corio::describe(bad.exception()).c_str());
  // [end snippet]
}

corio::task<> timeout_demo() {
  // [snippet: timeouts]
  try {
    int v = co_await corio::wait_for(fetch(1, 1h), 50ms); // asyncio.wait_for
    std::printf("never: %d\n", v);
  } catch (const corio::timeout_error&) {
    std::printf("wait_for: timed out at %lld ms\n", ms());
  }

  try {
    auto deadline = corio::timeout(20ms); // asyncio.timeout: a scope over every await below
    int a = co_await fetch(1, 10ms);
    int b = co_await fetch(2, 10ms); // the deadline passes in here
    std::printf("never: %d %d\n", a, b);
  } catch (const corio::timeout_error&) {
    std::printf("timeout scope: expired at %lld ms\n", ms());
  }
  // [end snippet]
}

// [snippet: cancel-worker]
corio::task<> worker() {
  try {
    co_await corio::sleep(1h);
  } catch (const corio::cancelled_error&) {
    std::printf("worker: cancelled at %lld ms\n", ms());
  }
  // Level-triggered: the request stays until the task takes it back, so every await point raises.
  try {
    co_await corio::sleep(1s);
  } catch (const corio::cancelled_error&) {
    std::printf("worker: still cancelled (%d request)\n", corio::cancelling());
  }
  corio::uncancel(); // an explicit choice to go on
  co_await corio::sleep(1s);
  std::printf("worker: finished normally at %lld ms\n", ms());
}
// [end snippet]

corio::task<> cancel_demo() {
  // [snippet: cancel]
  corio::join_handle<> w = corio::spawn(worker());
  co_await corio::sleep(10ms);
  w.cancel(); // cancelled_error at the task's current await point
  co_await w;
  std::printf("cancelled()=%d\n", static_cast<int>(w.cancelled())); // it chose to finish normally

  corio::join_handle<int> f = corio::spawn(fetch(1, 1h));
  co_await corio::sleep(0s); // let it start
  f.cancel();
  try {
    (void)co_await f;
  } catch (const corio::cancelled_error&) {
    std::printf("fetch: cancelled()=%d\n", static_cast<int>(f.cancelled()));
  }
  // [end snippet]
}

corio::task<> group_demo() {
  // [snippet: task-group]
  corio::task_group group; // asyncio.TaskGroup
  corio::join_handle<int> quick = group.spawn(fetch(1, 10ms));
  corio::join_handle<int> slow = group.spawn(fetch(2, 1h));
  group.spawn(fail_after(20ms, "disk full"));
  try {
    co_await group.wait(); // the failure cancels the others; wait() raises it once all have finished
  } catch (const std::runtime_error& e) {
    std::printf("group: %s at %lld ms; quick=%d, slow cancelled=%d\n", e.what(), ms(), quick.result(),
                static_cast<int>(slow.cancelled()));
  }
  // [end snippet]
}

// [snippet: queue]
corio::task<> producer(corio::queue<std::string>& q) {
  for (const char* item : {"a", "b", "c"}) {
    co_await q.put(item); // waits while the queue is full (maxsize 1 here)
    std::printf("put %s at %lld ms\n", item, ms());
  }
  q.shutdown(); // Python 3.13's Queue.shutdown(): get() raises queue_shut_down once it is empty
}

corio::task<> consumer(corio::queue<std::string>& q) {
  try {
    for (;;) {
      std::string item = co_await q.get();
      co_await corio::sleep(10ms); // slow consumer: the producer waits for room
      std::printf("got %s at %lld ms\n", item.c_str(), ms());
    }
  } catch (const corio::queue_shut_down&) {
    std::printf("consumer: queue shut down\n");
  }
}
// [end snippet]

corio::task<> sync_demo() {
  // [snippet: queue-use]
  corio::queue<std::string> q(1);
  co_await corio::gather(producer(q), consumer(q));
  // [end snippet]

  // [snippet: lock-event]
  corio::lock lk;
  corio::event ready;
  int shared = 0;
  auto add = [&](int n) -> corio::task<> {
    co_await ready.wait();             // every waiter goes once set() is called
    auto guard = co_await lk.scoped(); // released when guard goes out of scope
    int v = shared;
    co_await corio::sleep(1ms); // without the lock, the other task would read the old value here
    shared = v + n;
  };
  auto one = corio::spawn(add(1));
  auto two = corio::spawn(add(2));
  co_await corio::sleep(5ms);
  ready.set();
  co_await one;
  co_await two;
  std::printf("shared = %d\n", shared);
  // [end snippet]
}

// [snippet: async-generator]
corio::async_generator<int> ticks(int n) {
  for (int i = 0; i < n; ++i) {
    co_await corio::sleep(100ms); // an async generator can await ...
    co_yield i;                   // ... and yield
  }
}
// [end snippet]

corio::task<> async_generator_demo() {
  // [snippet: async-generator-use]
  auto g = ticks(3);
  while (std::optional<int> v = co_await g.next()) // Python's `async for v in ticks(3)`
    std::printf("tick %d at %lld ms\n", *v, ms());
  // [end snippet]
}

corio::task<> main_task() {
  start = corio::event_loop::current()->time();
  co_await coroutine_four();
  std::printf("--\n");
  start = corio::event_loop::current()->time();
  co_await tasks_demo();
  start = corio::event_loop::current()->time();
  co_await gather_demo();
  start = corio::event_loop::current()->time();
  co_await timeout_demo();
  start = corio::event_loop::current()->time();
  co_await cancel_demo();
  start = corio::event_loop::current()->time();
  co_await group_demo();
  start = corio::event_loop::current()->time();
  co_await sync_demo();
  start = corio::event_loop::current()->time();
  co_await async_generator_demo();
}

} // namespace

int main() {
  corio::testing::mock_clock clock;
  corio::run(main_task(), {.clock = &clock});
}
