// corio::task<T> and spawn/join_handle: running, results, exceptions, lifetimes.
#include <corio/debug.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>
#include <corio/task_ref.hpp>
#include <corio/testing/mock_clock.hpp>
#include <corio/this_task.hpp>
#include <corio/timeout.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "counted.hpp"
#include "leak_check.hpp"

using namespace std::chrono_literals;
using corio::join_handle;
using corio::task;
using corio::testing::counted;
using corio::testing::mock_clock;

namespace {

task<int> add(int a, int b) { co_return a + b; }

task<int> chain(int depth) {
  if (depth == 0)
    co_return 0;
  co_return 1 + co_await chain(depth - 1);
}

TEST(Task, AwaitReturnsTheValue) {
  corio::testing::leak_check leaks;
  EXPECT_EQ(corio::run(add(2, 3)), 5);
}

TEST(Task, IsLazy) {
  bool ran = false;
  {
    auto t = [](bool* r) -> task<> {
      *r = true;
      co_return;
    }(&ran);
    EXPECT_FALSE(ran);
  }
  EXPECT_FALSE(ran);
}

TEST(Task, MillionSynchronousCompletionsKeepTheStackFlat) {
  auto body = []() -> task<long> {
    long sum = 0;
    for (int i = 0; i < 1'000'000; ++i)
      sum += co_await add(i, 1);
    co_return sum;
  };
  EXPECT_EQ(corio::run(body()), 1'000'000L * 1'000'001L / 2);
}

// Nesting uses stack like any recursion (a task awaited inline runs on the awaiter's stack); sequences of
// awaits do not (above). 1000 levels, as Python's default recursion limit.
TEST(Task, DeepRecursion) { EXPECT_EQ(corio::run(chain(1000)), 1000); }

TEST(Task, ExceptionsPropagateToTheAwaiter) {
  auto failing = []() -> task<int> {
    throw std::runtime_error("inner");
    co_return 0;
  };
  auto outer = [](decltype(failing) f) -> task<std::string> {
    try {
      co_await f();
    } catch (const std::runtime_error& e) {
      co_return std::string("caught ") + e.what();
    }
    co_return "no";
  };
  EXPECT_EQ(corio::run(outer(failing)), "caught inner");
  EXPECT_THROW(corio::run(failing()), std::runtime_error);
}

TEST(Task, MoveOnlyAndReferenceResults) {
  auto make = []() -> task<std::unique_ptr<int>> { co_return std::make_unique<int>(7); };
  EXPECT_EQ(*corio::run(make()), 7);
  static int global = 3;
  auto ref = []() -> task<int&> { co_return global; };
  auto body = [](decltype(ref) r) -> task<int> {
    int& g = co_await r();
    g = 4;
    co_return global;
  };
  EXPECT_EQ(corio::run(body(ref)), 4);
}

TEST(Task, AwaitingAnEmptyTaskIsAClearError) {
  auto body = []() -> task<> {
    task<int> t = add(1, 1);
    task<int> moved = std::move(t);
    EXPECT_EQ(co_await moved, 2);
    co_await t; // moved from
  };
  EXPECT_THROW(corio::run(body()), corio::invalid_state_error);
}

TEST(Task, ResultIsConsumedByAwait) {
  auto body = []() -> task<> {
    task<std::unique_ptr<int>> t = []() -> task<std::unique_ptr<int>> { co_return std::make_unique<int>(1); }();
    auto first = co_await t;
    EXPECT_EQ(*first, 1);
    co_await t; // already taken
  };
  EXPECT_THROW(corio::run(body()), corio::invalid_state_error);
}

// One task awaited by two coroutines at once: the second await resumed the task where it was suspended
// (inside the first awaiter's sleep), cutting the sleep short and leaving the first awaiter waiting
// forever. Python: RuntimeError "coroutine is being awaited already".
TEST(Task, AwaitedByTwoCoroutinesAtOnceIsAClearError) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  auto body = [](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    auto slow = [](mock_clock* c) -> task<corio::duration> {
      const auto start = c->now();
      co_await corio::sleep(20ms);
      co_return c->now() - start;
    };
    auto shared = std::make_shared<task<corio::duration>>(slow(c));
    auto first = corio::spawn(
        [](std::shared_ptr<task<corio::duration>> t) -> task<corio::duration> { co_return co_await *t; }(shared));
    auto second = corio::spawn([](std::shared_ptr<task<corio::duration>> t) -> task<corio::duration> {
      co_await corio::sleep(1ms); // the first awaits it by now
      co_return co_await *t;
    }(shared));
    EXPECT_THROW(co_await second, corio::invalid_state_error);
    EXPECT_EQ(co_await first, 20ms); // its sleep was not cut short, and its awaiter was woken
    EXPECT_EQ(c->now() - t0, 20ms);
  };
  corio::run(body(&clock), {.clock = &clock});
}

TEST(Task, LocalsAreDestroyed) {
  corio::testing::lifetime_check check;
  auto body = []() -> task<int> {
    counted a{1};
    co_await corio::sleep(0s);
    counted b{2};
    co_return a.value + b.value;
  };
  EXPECT_EQ(corio::run(body()), 3);
  EXPECT_EQ(check.alive(), 0);
}

TEST(Spawn, TasksRunConcurrently) {
  mock_clock clock;
  corio::testing::leak_check leaks;
  auto body = [](mock_clock* c) -> task<std::vector<int>> {
    std::vector<int> order;
    auto worker = [](std::vector<int>* o, int id, int secs) -> task<int> {
      co_await corio::sleep(std::chrono::seconds(secs));
      o->push_back(id);
      co_return id * 10;
    };
    const auto t0 = c->now();
    auto a = corio::spawn(worker(&order, 1, 3));
    auto b = corio::spawn(worker(&order, 2, 1));
    auto d = corio::spawn(worker(&order, 3, 2));
    EXPECT_EQ(co_await a + co_await b + co_await d, 60);
    EXPECT_EQ(c->now() - t0, 3s); // concurrently: the longest, not the sum
    co_return order;
  };
  EXPECT_EQ(corio::run(body(&clock), {.clock = &clock}), (std::vector<int>{2, 3, 1}));
}

TEST(Spawn, SpawnedTaskStartsAtTheNextIteration) {
  auto body = []() -> task<> {
    bool started = false;
    auto h = corio::spawn([](bool* s) -> task<> {
      *s = true;
      co_return;
    }(&started));
    EXPECT_FALSE(started);
    co_await corio::sleep(0s);
    EXPECT_TRUE(started);
    EXPECT_TRUE(h.done());
  };
  corio::run(body());
}

TEST(Spawn, JoinHandleResultAndErrors) {
  auto body = []() -> task<> {
    auto ok = corio::spawn(add(1, 2), "adder");
    EXPECT_EQ(ok.name(), "adder");
    EXPECT_FALSE(ok.done());
    EXPECT_THROW(ok.result(), corio::invalid_state_error); // not finished yet
    EXPECT_EQ(co_await ok, 3);
    EXPECT_EQ(ok.result(), 3); // copyable: as often as you like
    EXPECT_EQ(co_await ok, 3);
    auto bad = corio::spawn([]() -> task<int> {
      throw std::logic_error("bad");
      co_return 0;
    }());
    co_await corio::sleep(0s);
    EXPECT_TRUE(bad.done());
    EXPECT_FALSE(bad.cancelled());
    EXPECT_TRUE(bad.exception() != nullptr);
    EXPECT_THROW(bad.result(), std::logic_error);
    auto mo = corio::spawn([]() -> task<std::unique_ptr<int>> { co_return std::make_unique<int>(5); }());
    EXPECT_EQ(*co_await mo, 5);
    EXPECT_THROW(co_await mo, corio::invalid_state_error); // a move-only result goes once
  };
  corio::run(body());
}

// A finished task's frame is freed at once: what its parameters own (here a counted object; in a
// server, the connection's socket) goes when the task ends, not when the last join_handle does. The
// result stays readable. (Found by fuzz_http: a handler's socket stayed open while its handle was held.)
TEST(Spawn, AFinishedTaskReleasesItsParametersWhileHandlesRemain) {
  corio::testing::lifetime_check lives;
  auto body = []() -> task<> {
    auto h =
        corio::spawn([](corio::testing::counted c) -> task<int> { co_return c.value; }(corio::testing::counted(7)));
    auto unit = corio::spawn([](corio::testing::counted) -> task<> { co_return; }(corio::testing::counted(1)));
    auto failing = corio::spawn([](corio::testing::counted) -> task<int> {
      throw std::runtime_error("x");
      co_return 0;
    }(corio::testing::counted(2)));
    EXPECT_EQ(corio::testing::counted::alive(), 3);
    co_await corio::sleep(0s);
    EXPECT_TRUE(h.done() && unit.done() && failing.done());
    EXPECT_EQ(corio::testing::counted::alive(), 0) << "frames of finished tasks still alive";
    EXPECT_EQ(h.result(), 7);
    EXPECT_EQ(co_await h, 7);
    co_await unit;
    EXPECT_THROW(co_await failing, std::runtime_error);
    EXPECT_FALSE(failing.cancelled());
  };
  corio::run(body());
  EXPECT_EQ(lives.alive(), 0);
}

// asyncio: RuntimeError "Task cannot await on itself"; corio waited forever.
TEST(Spawn, ATaskAwaitingItsOwnHandleIsAClearError) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  auto body = []() -> task<> {
    auto self = std::make_shared<join_handle<>>();
    *self = corio::spawn([](std::shared_ptr<join_handle<>> me) -> task<> {
      co_await corio::sleep(1ms);
      co_await *me;
    }(self));
    EXPECT_THROW(co_await *self, corio::invalid_state_error);
    self.reset();
  };
  corio::run(body(), {.clock = &clock});
}

// A join_handle of another loop's task: nothing on the awaiting loop would ever wake the awaiter (it
// hung). asyncio: RuntimeError "... attached to a different loop".
TEST(Spawn, AwaitingATaskOfAnotherLoopIsAClearError) {
  corio::testing::leak_check leaks;
  mock_clock clock_a, clock_b;
  corio::event_loop a({.clock = &clock_a});
  corio::event_loop b({.clock = &clock_b});
  auto slow = []() -> task<int> {
    co_await corio::sleep(20ms);
    co_return 42;
  };
  join_handle<int> h = corio::spawn(a, slow()); // a task of loop a, which is not running
  auto awaiter = [](join_handle<int> h) -> task<int> { co_return co_await h; };
  try {
    corio::run_until_complete(b, awaiter(h));
    ADD_FAILURE() << "no error";
  } catch (const corio::loop_error& e) {
    EXPECT_NE(std::string(e.what()).find("another event loop"), std::string::npos) << e.what();
  }
  EXPECT_EQ(corio::run_until_complete(a, awaiter(h)), 42); // its own loop's tasks can
  EXPECT_EQ(corio::run_until_complete(b, awaiter(h)), 42); // and anyone once it is done
}

// A done handle may be awaited from another loop; the await point is the awaiting task's: its own
// cancellation is raised there (the check looked at the handle's loop's current task instead: none, or
// another thread's task, or a loop already destroyed).
TEST(Spawn, ADoneHandleAwaitedFromAnotherLoopChecksTheAwaitingTasksCancel) {
  corio::testing::leak_check leaks;
  auto seven = []() -> task<int> { co_return 7; };
  auto wait_for_it = [](join_handle<int> h) -> task<> { (void)co_await h; };
  auto cancelled_awaiter = [](join_handle<int> h) -> task<std::string> {
    corio::current_task().cancel();
    try {
      (void)co_await h;
    } catch (const corio::cancelled_error&) {
      co_return "raised at the await";
    }
    co_return "not raised";
  };
  join_handle<int> kept;
  {
    corio::event_loop a;
    corio::event_loop b;
    join_handle<int> h = corio::spawn(a, seven());
    corio::run_until_complete(a, wait_for_it(h));
    EXPECT_EQ(corio::run_until_complete(b, cancelled_awaiter(h)), "raised at the await");
    kept = h;
  }
  corio::event_loop c; // the handle's loop is gone now
  auto value = [](join_handle<int> h) -> task<int> { co_return co_await h; };
  EXPECT_EQ(corio::run_until_complete(c, value(kept)), 7);
}

TEST(Spawn, SpawnOutsideALoopIsAnError) {
  EXPECT_THROW(corio::spawn(add(1, 2)), corio::loop_error);
  corio::join_handle<int> empty;
  EXPECT_THROW(empty.result(), corio::invalid_state_error);
  EXPECT_FALSE(empty.cancel());
}

TEST(Spawn, DoneCallbacksRunOnTheLoop) {
  auto body = []() -> task<int> {
    int calls = 0;
    auto h = corio::spawn(add(1, 1));
    h.add_done_callback([&] { ++calls; });
    co_await h;
    co_await corio::sleep(0s);
    h.add_done_callback([&] { ++calls; }); // already done: scheduled at once
    co_await corio::sleep(0s);
    co_return calls;
  };
  EXPECT_EQ(corio::run(body()), 2);
}

TEST(Spawn, RemoveDoneCallbackAndSetName) {
  mock_clock clock;
  auto body = []() -> task<std::string> {
    std::string order;
    auto h = corio::spawn([]() -> task<> { co_await corio::sleep(1s); }(), "first");
    const auto a = h.add_done_callback([&] { order += 'a'; });
    const auto b = h.add_done_callback([&] { order += 'b'; });
    EXPECT_TRUE(h.remove_done_callback(a));
    EXPECT_FALSE(h.remove_done_callback(a));
    EXPECT_FALSE(h.remove_done_callback(0));
    h.set_name("renamed");
    EXPECT_EQ(h.name(), "renamed");
    std::string tree = corio::format_tasks(*corio::event_loop::current());
    EXPECT_NE(tree.find("'renamed' ready"), std::string::npos) << tree;
    co_await h;
    EXPECT_FALSE(h.remove_done_callback(b)); // done: scheduled already
    EXPECT_EQ(h.add_done_callback([&] { order += 'c'; }), 0u);
    co_await corio::sleep(0s);
    co_return order;
  };
  EXPECT_EQ(corio::run(body(), {.clock = &clock}), "bc");
}

TEST(Spawn, SpawnEagerRunsToTheFirstSuspensionInsideTheCall) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  auto body = []() -> task<> {
    int step = 0;
    auto h = corio::spawn_eager(
        [](int* s) -> task<int> {
          *s = 1;
          std::string tree = corio::format_tasks(*corio::event_loop::current());
          EXPECT_NE(tree.find("'eager' running"), std::string::npos) << tree; // it is the current task
          EXPECT_EQ(tree.find("'main' running"), std::string::npos) << tree;
          co_await corio::sleep(1s);
          *s = 2;
          co_return 7;
        }(&step),
        "eager");
    EXPECT_EQ(step, 1); // ran up to its sleep, inside spawn_eager
    EXPECT_FALSE(h.done());
    std::string tree = corio::format_tasks(*corio::event_loop::current());
    EXPECT_NE(tree.find("'main' running"), std::string::npos) << tree; // back to the caller
    EXPECT_NE(tree.find("'eager' waiting: sleep"), std::string::npos) << tree;
    EXPECT_EQ(co_await h, 7);
    EXPECT_EQ(step, 2);

    // One that never suspends is done on return, without a trip through the loop.
    auto quick = corio::spawn_eager(add(2, 3));
    EXPECT_TRUE(quick.done());
    EXPECT_EQ(quick.result(), 5);
    auto failing = corio::spawn_eager([]() -> task<int> {
      throw std::logic_error("at once");
      co_return 0;
    }());
    EXPECT_TRUE(failing.done());
    EXPECT_THROW(failing.result(), std::logic_error);
  };
  corio::run(body(), {.clock = &clock});
}

// The eager child's waits, cancellation and timeouts are its own; the caller's are the caller's.
TEST(Spawn, SpawnEagerKeepsTheTasksApart) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  auto body = [](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    join_handle<int> child;
    bool caller_timed_out = false;
    try {
      auto scope = corio::timeout(1s);
      child = corio::spawn_eager([]() -> task<int> {
        co_await corio::sleep(2s); // the caller's 1 s timeout is not this task's
        co_return 2;
      }());
      co_await corio::sleep(5s);
    } catch (const corio::timeout_error&) {
      caller_timed_out = true;
    }
    EXPECT_TRUE(caller_timed_out);
    EXPECT_EQ(c->now() - t0, 1s);
    EXPECT_EQ(co_await child, 2);
    EXPECT_EQ(c->now() - t0, 2s);

    // Cancelling the eager child cancels it, not its caller.
    auto sleeper = corio::spawn_eager([]() -> task<> { co_await corio::sleep(1h); }());
    EXPECT_TRUE(sleeper.cancel());
    co_await corio::sleep(0s);
    EXPECT_TRUE(sleeper.cancelled());

    // Nested: an eager task that spawns one eagerly; each returns to the task that was running.
    std::string trail;
    auto outer = corio::spawn_eager(
        [](std::string* t) -> task<> {
          t->append("outer ");
          auto inner = corio::spawn_eager(
              [](std::string* t2) -> task<> {
                t2->append("inner ");
                co_await corio::sleep(1s);
                t2->append("inner-done ");
              }(t),
              "inner");
          std::string tree = corio::format_tasks(*corio::event_loop::current());
          EXPECT_NE(tree.find("'outer' running"), std::string::npos) << tree;
          t->append("outer-after ");
          co_await inner;
          t->append("outer-done");
        }(&trail),
        "outer");
    EXPECT_EQ(trail, "outer inner outer-after ");
    co_await outer;
    EXPECT_EQ(trail, "outer inner outer-after inner-done outer-done");
  };
  corio::run(body(&clock), {.clock = &clock});
}

TEST(Spawn, SpawnEagerOnALoopThatIsNotRunningSchedulesTheTask) {
  corio::event_loop loop;
  bool started = false;
  auto h = corio::spawn_eager(loop, [](bool* s) -> task<> {
    *s = true;
    co_return;
  }(&started));
  EXPECT_FALSE(started);
  EXPECT_FALSE(h.done());
  corio::run_until_complete(loop, [](join_handle<> x) -> task<> { co_await x; }(h));
  EXPECT_TRUE(started);
  EXPECT_THROW(corio::spawn_eager(add(1, 2)), corio::loop_error); // no loop runs on this thread
  loop.close();
}

TEST(Spawn, CurrentTaskAndAllTasks) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  EXPECT_FALSE(corio::current_task().valid()); // no loop
  EXPECT_THROW((void)corio::all_tasks(), corio::loop_error);
  auto body = []() -> task<> {
    corio::task_ref me = corio::current_task();
    EXPECT_TRUE(me.valid());
    EXPECT_EQ(me.name(), "main");
    EXPECT_FALSE(me.done());
    EXPECT_EQ(me.cancelling(), 0);
    auto sleeper = [](int secs) -> task<int> {
      co_await corio::sleep(std::chrono::seconds(secs));
      co_return secs;
    };
    auto a = corio::spawn(sleeper(1), "a");
    auto b = corio::spawn(sleeper(2));
    std::vector<corio::task_ref> all = corio::all_tasks();
    EXPECT_EQ(all.size(), 3u); // oldest first
    if (all.size() != 3u)
      co_return;
    EXPECT_TRUE(all[0] == me);
    EXPECT_TRUE(all[1] == corio::task_ref(a));
    EXPECT_TRUE(all[2] == corio::task_ref(b));
    corio::task_ref rb = b;
    rb.set_name("renamed b");
    EXPECT_EQ(b.name(), "renamed b");
    EXPECT_EQ(rb.id(), b.id());
    // Inside a spawned task, current_task() is that task; in a plain callback, none.
    auto who = corio::spawn([]() -> task<std::string> { co_return corio::current_task().name(); }(), "who");
    EXPECT_EQ(co_await who, "who");
    bool callback_saw_a_task = true;
    corio::event_loop::current()->call_soon([&] { callback_saw_a_task = corio::current_task().valid(); });
    EXPECT_EQ(co_await a, 1);
    EXPECT_FALSE(callback_saw_a_task);
    EXPECT_EQ(corio::all_tasks().size(), 2u); // a and who are done
    EXPECT_TRUE(rb.cancel());
    EXPECT_EQ(rb.cancelling(), 1);
    EXPECT_THROW(co_await b, corio::cancelled_error);
    EXPECT_TRUE(rb.done()); // the reference outlives the task
    EXPECT_FALSE(rb.cancel());
    EXPECT_EQ(rb.name(), "renamed b");
    corio::task_ref empty;
    EXPECT_FALSE(empty.valid());
    EXPECT_THROW((void)empty.id(), corio::invalid_state_error);
    EXPECT_FALSE(empty == me);
  };
  corio::run(body(), {.clock = &clock});
}

TEST(Spawn, ATaskCancelsItselfThroughCurrentTask) {
  auto body = []() -> task<int> {
    EXPECT_TRUE(corio::current_task().cancel());
    bool cancelled = false;
    try {
      co_await corio::sleep(0s);
    } catch (const corio::cancelled_error&) {
      cancelled = true;
      EXPECT_EQ(corio::uncancel(), 0);
    }
    co_return cancelled ? 1 : 0;
  };
  EXPECT_EQ(corio::run(body()), 1);
}

TEST(Spawn, UnretrievedExceptionIsReported) {
  auto body = []() -> task<> {
    corio::spawn([]() -> task<> {
      throw std::runtime_error("nobody looked");
      co_return;
    }());
    co_await corio::sleep(0s);
    co_await corio::sleep(0s);
  };
  testing::internal::CaptureStderr();
  corio::run(body());
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("exception was never retrieved: nobody looked"), std::string::npos) << err;
}

TEST(Spawn, RunCancelsAndDrainsLeftoverTasks) {
  corio::testing::leak_check leaks;
  mock_clock clock;
  bool cleaned = false;
  auto body = [](bool* c) -> task<int> {
    corio::spawn([](bool* cl) -> task<> {
      struct on_exit {
        bool* f;
        ~on_exit() { *f = true; }
      } guard{cl};
      co_await corio::sleep(1h);
    }(c));
    co_await corio::sleep(1s);
    co_return 1;
  };
  EXPECT_EQ(corio::run(body(&cleaned), {.clock = &clock}), 1);
  EXPECT_TRUE(cleaned);
}

TEST(Debug, DumpTasksShowsTheTree) {
  mock_clock clock;
  auto body = []() -> task<std::string> {
    auto child = corio::spawn([]() -> task<> { co_await corio::sleep(10s); }(), "child");
    auto parent = corio::spawn([](join_handle<> c) -> task<> { co_await c; }(child), "parent");
    co_await corio::sleep(1s);
    std::string tree = corio::format_tasks(*corio::event_loop::current());
    co_await parent;
    co_return tree;
  };
  std::string tree = corio::run(body(), {.clock = &clock});
  EXPECT_NE(tree.find("3 task(s)"), std::string::npos) << tree;
  EXPECT_NE(tree.find("'main' running"), std::string::npos) << tree;
  EXPECT_NE(tree.find("  #3 'parent' waiting: awaiting a task\n    #2 'child' waiting: sleep"), std::string::npos)
      << tree;
}

TEST(Debug, NeverAwaitedTaskIsReportedInDebugMode) {
  auto body = []() -> task<> {
    { auto forgotten = add(1, 2); }
    co_return;
  };
  testing::internal::CaptureStderr();
  corio::run(body(), {.debug = true});
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("without being awaited"), std::string::npos) << err;
}

} // namespace
