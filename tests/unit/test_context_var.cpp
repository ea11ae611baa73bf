// corio::context_var, context, copy_context (asyncio's contextvars): values that follow a task and the
// tasks it spawns, copied at spawn time; tokens; context::run; threads.
#include <corio/context_var.hpp>
#include <corio/gather.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/event.hpp>
#include <corio/task_group.hpp>
#include <corio/to_thread.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "leak_check.hpp"
#include "loop_fixture.hpp"

using namespace std::chrono_literals;
using corio::task;

namespace {

corio::context_var<std::string> request_id("request_id", "none");
corio::context_var<int> depth("depth"); // no default

template <class F> void run(F body) {
  corio::testing::leak_check leaks;
  corio::testing::mock_clock clock;
  corio::run(body(), {.clock = &clock});
}

TEST(ContextVar, DefaultsAndLookupError) {
  run([]() -> task<> {
    EXPECT_EQ(request_id.name(), "request_id");
    EXPECT_EQ(request_id.get(), "none");
    EXPECT_FALSE(request_id.has_value());
    EXPECT_EQ(depth.get(7), 7);
    std::string what;
    try {
      (void)depth.get();
    } catch (const corio::lookup_error& e) {
      what = e.what();
    }
    EXPECT_NE(what.find("'depth'"), std::string::npos) << what;
    auto t = depth.set(1);
    EXPECT_EQ(depth.get(), 1);
    EXPECT_TRUE(depth.has_value());
    EXPECT_EQ(t.old_value(), std::nullopt);
    co_return;
  });
}

// A child starts with a copy of its spawner's context as it was at the spawn: later sets on either side
// are not seen by the other. A task spawned before a set does not see it.
TEST(ContextVar, TasksCopyTheSpawnersContextAtSpawnTime) {
  run([]() -> task<> {
    auto read_later = [](corio::event* go) -> task<std::string> {
      co_await go->wait();
      co_return request_id.get();
    };
    corio::event go;
    auto before = corio::spawn(read_later(&go)); // spawned before the set
    (void)request_id.set("parent");
    auto after = corio::spawn(read_later(&go));
    auto child_sets = corio::spawn([]() -> task<std::string> {
      std::string seen = request_id.get();
      (void)request_id.set("child");
      co_await corio::sleep(1ms);
      co_return seen + "/" + request_id.get();
    }());
    EXPECT_EQ(co_await child_sets, "parent/child");
    EXPECT_EQ(request_id.get(), "parent") << "the child's set leaked into the parent";
    (void)request_id.set("parent again");
    go.set();
    EXPECT_EQ(co_await before, "none");
    EXPECT_EQ(co_await after, "parent") << "a set after the spawn reached the child";
    // Grandchildren inherit through the chain.
    auto grandchild = corio::spawn([]() -> task<std::string> {
      (void)depth.set(1);
      auto inner =
          corio::spawn([]() -> task<std::string> { co_return request_id.get() + ":" + std::to_string(depth.get()); }());
      co_return co_await inner;
    }());
    EXPECT_EQ(co_await grandchild, "parent again:1");
    EXPECT_FALSE(depth.has_value());
  });
}

// `co_await f()` runs f in the caller's task: what it sets, the caller sees (asyncio's `await coro`).
TEST(ContextVar, InlineAwaitSharesTheTasksContext) {
  run([]() -> task<> {
    auto set_inside = []() -> task<> {
      (void)depth.set(5);
      co_return;
    };
    co_await set_inside();
    EXPECT_EQ(depth.get(), 5);
  });
}

// Children of a task_group and of gather get the context of the task that spawns them.
TEST(ContextVar, TaskGroupAndGatherChildrenInherit) {
  run([]() -> task<> {
    (void)request_id.set("group");
    auto read = []() -> task<std::string> {
      co_await corio::sleep(1ms);
      co_return request_id.get();
    };
    corio::task_group g;
    auto a = g.spawn(read());
    auto b = g.spawn_eager(read());
    co_await g.wait();
    EXPECT_EQ(a.result(), "group");
    EXPECT_EQ(b.result(), "group");
    auto both = co_await corio::gather(read(), read());
    EXPECT_EQ(std::get<0>(both), "group");
    EXPECT_EQ(std::get<1>(both), "group");
  });
}

// Tokens: reset() puts the old value back (or none); a token works once, for its own variable, in its own
// task.
TEST(ContextVar, TokensResetAndTheirMisuse) {
  run([]() -> task<> {
    auto first = request_id.set("a");
    auto second = request_id.set("b");
    EXPECT_EQ(second.old_value(), "a");
    EXPECT_EQ(&second.var(), &request_id);
    request_id.reset(second);
    EXPECT_EQ(request_id.get(), "a");
    EXPECT_THROW(request_id.reset(second), corio::invalid_state_error);
    request_id.reset(first);
    EXPECT_FALSE(request_id.has_value());
    EXPECT_EQ(request_id.get(), "none");
    corio::context_var<std::string> other("other");
    auto of_other = other.set("x");
    EXPECT_THROW(request_id.reset(of_other), std::invalid_argument);
    EXPECT_EQ(other.get(), "x");
    auto mine = request_id.set("mine");
    auto elsewhere = corio::spawn([](decltype(mine)* t) -> task<bool> {
      try {
        request_id.reset(*t);
      } catch (const std::invalid_argument&) {
        co_return true;
      }
      co_return false;
    }(&mine));
    EXPECT_TRUE(co_await elsewhere) << "a token of another task was accepted";
    request_id.reset(mine);
    EXPECT_FALSE(request_id.has_value());
  });
}

// copy_context() and context::run(): sets inside run stay in that context; tasks spawned inside start
// from it; an eager child run inside keeps to its own context.
TEST(ContextVar, CopyContextAndRun) {
  run([]() -> task<> {
    (void)request_id.set("outer");
    corio::context ctx = corio::copy_context();
    EXPECT_EQ(ctx.get(request_id), "outer");
    EXPECT_EQ(ctx.get(depth), std::nullopt);
    int seen_depth = ctx.run([] {
      (void)depth.set(9);
      return depth.get();
    });
    EXPECT_EQ(seen_depth, 9);
    EXPECT_FALSE(depth.has_value()) << "run()'s set leaked into the task";
    EXPECT_EQ(ctx.get(depth), 9);
    auto read = []() -> task<int> {
      co_await corio::sleep(1ms);
      co_return depth.get(-1);
    };
    auto inside = ctx.run([&] { return corio::spawn(read()); });
    EXPECT_EQ(co_await inside, 9);
    auto eager = ctx.run([] {
      return corio::spawn_eager([]() -> task<int> {
        (void)depth.set(100); // the child's own context, not ctx
        co_await corio::sleep(1ms);
        co_return depth.get();
      }());
    });
    EXPECT_EQ(co_await eager, 100);
    EXPECT_EQ(ctx.get(depth), 9) << "an eager child's set went into the context run() entered";
    corio::context empty;
    EXPECT_EQ(empty.run([] { return request_id.get(); }), "none");
    EXPECT_EQ(request_id.get(), "outer");
  });
}

// Outside any task each thread has its own context: the main task starts from the one of the thread that
// called run(); another thread does not see it.
TEST(ContextVar, ThreadContextsAndTheMainTask) {
  corio::testing::leak_check leaks;
  auto t = request_id.set("from main()");
  corio::testing::mock_clock clock;
  std::string in_task = corio::run(
      []() -> task<std::string> {
        std::string seen = request_id.get();
        (void)request_id.set("changed in the task");
        co_return seen + "|" + request_id.get();
      }(),
      {.clock = &clock});
  EXPECT_EQ(in_task, "from main()|changed in the task");
  EXPECT_EQ(request_id.get(), "from main()") << "the main task's set leaked into the thread";
  std::string other;
  std::thread([&other] { other = request_id.get(); }).join();
  EXPECT_EQ(other, "none");
  corio::context here = corio::copy_context();
  std::thread([&other, &here] { other = here.run([] { return request_id.get(); }); }).join();
  EXPECT_EQ(other, "from main()");
  request_id.reset(t);
  EXPECT_FALSE(request_id.has_value());
}

// Python: RuntimeError "cannot enter context: ... is already entered". A nested run() of the same context
// was silently accepted.
TEST(ContextVar, ANestedRunOfTheSameContextIsAnInvalidStateError) {
  corio::testing::leak_check leaks;
  corio::context ctx; // empty
  corio::context copy = ctx;
  std::string message;
  ctx.run([&] {
    (void)depth.set(1);
    try {
      ctx.run([] { (void)depth.set(2); });
      ADD_FAILURE() << "entered twice";
    } catch (const corio::invalid_state_error& e) {
      message = e.what();
    }
    EXPECT_EQ(depth.get(), 1) << "the refused run() changed nothing";
    EXPECT_EQ(copy.run([] { return depth.get(-1); }), -1) << "a copy is another context: it may be entered";
  });
  EXPECT_NE(message.find("already entered"), std::string::npos) << message;
  EXPECT_EQ(ctx.get(depth), 1);
  EXPECT_EQ(ctx.run([] { return depth.get(); }), 1) << "entered again once the first run() is over";
  EXPECT_THROW(ctx.run([&] { ctx.run([] {}); }), corio::invalid_state_error);
  EXPECT_EQ(ctx.run([] { return depth.get(); }), 1) << "a run() that threw leaves the context free";
}

// One context entered on two threads at once: both ran with the same slot (a data race on it, a
// use-after-free under ASan). The second is refused while the first is inside.
TEST(ContextVar, RunOfAContextEnteredOnAnotherThreadIsAnInvalidStateError) {
  corio::testing::leak_check leaks;
  corio::context ctx; // empty
  std::atomic<bool> inside{false}, tried{false};
  std::thread holder([&] {
    ctx.run([&] {
      (void)depth.set(5);
      inside.store(true);
      while (!tried.load()) // bounded by the other thread's single attempt below
        std::this_thread::yield();
    });
  });
  while (!inside.load())
    std::this_thread::yield();
  EXPECT_THROW(ctx.run([] { (void)depth.set(6); }), corio::invalid_state_error);
  tried.store(true);
  holder.join();
  EXPECT_EQ(ctx.get(depth), 5);
  // Taking turns is fine: each run() sees what the one before set (the flag's release/acquire).
  std::thread([&ctx] { ctx.run([] { (void)depth.set(depth.get() + 1); }); }).join();
  EXPECT_EQ(ctx.run([] { return depth.get(); }), 6);
}

// to_thread / run_in_executor run the call in a copy of the caller's context (asyncio.to_thread): it
// reads the caller's values, and what it sets stays on its side.
TEST(ContextVar, ToThreadRunsInACopyOfTheCallersContext) {
  run([]() -> task<> {
    (void)request_id.set("caller");
    auto work = [] {
      std::string seen = request_id.get();
      (void)request_id.set("worker");
      return seen + "|" + request_id.get();
    };
    EXPECT_EQ(co_await corio::to_thread(work), "caller|worker");
    EXPECT_EQ(request_id.get(), "caller");
    auto again = [] { return request_id.get(); };
    EXPECT_EQ(co_await corio::to_thread(again), "caller") << "the worker thread kept the last call's set";
  });
}

// Values of any copyable type; each get() is a copy of the stored value.
TEST(ContextVar, AnyCopyableType) {
  run([]() -> task<> {
    corio::context_var<std::vector<int>> list("list", std::vector<int>{1});
    EXPECT_EQ(list.get(), std::vector<int>{1});
    std::vector<int> v{1, 2, 3};
    (void)list.set(v);
    v.push_back(4);
    EXPECT_EQ(list.get().size(), 3u);
    co_return;
  });
}

} // namespace
