// corio::task_group: structured concurrency like asyncio.TaskGroup.
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task_group.hpp>
#include <corio/testing/mock_clock.hpp>
#include <corio/this_task.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "loop_fixture.hpp"

using namespace std::chrono_literals;
using corio::task;
using corio::testing::after;
using corio::testing::fail_after;
using corio::testing::mock_clock;
using corio::testing::run_mock;

namespace {

TEST(TaskGroup, WaitsForEveryChild) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    corio::task_group group;
    auto a = group.spawn(after(1s, 1));
    auto b = group.spawn(after(3s, 2));
    EXPECT_EQ(group.size(), 2u);
    co_await group.wait();
    EXPECT_EQ(c->now() - t0, 3s);
    EXPECT_EQ(a.result() + b.result(), 3);
    EXPECT_EQ(group.size(), 0u);
  });
}

TEST(TaskGroup, EmptyGroup) {
  run_mock([](mock_clock*) -> task<> {
    corio::task_group group;
    co_await group.wait();
  });
}

TEST(TaskGroup, FirstFailureCancelsTheRestAndIsRethrown) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    corio::task_group group;
    auto slow = group.spawn(after(100s, 1));
    group.spawn(fail_after(2s, "broken"));
    try {
      co_await group.wait();
      ADD_FAILURE() << "wait() must rethrow";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "broken");
    }
    EXPECT_EQ(c->now() - t0, 2s); // the slow child was cancelled, not waited out
    EXPECT_TRUE(slow.cancelled());
    EXPECT_THROW(group.spawn(after(1s, 0)), corio::invalid_state_error);
  });
}

TEST(TaskGroup, SpawnEagerStartsTheChildInsideTheCall) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    corio::task_group group;
    bool started = false;
    auto a = group.spawn_eager(
        [](bool* s) -> task<int> {
          *s = true;
          co_await corio::sleep(1s);
          co_return 5;
        }(&started),
        "eager child");
    EXPECT_TRUE(started);
    EXPECT_EQ(a.name(), "eager child");
    auto b = group.spawn_eager([]() -> task<int> { co_return 6; }()); // done before it is counted
    EXPECT_TRUE(b.done());
    EXPECT_EQ(group.size(), 2u);
    co_await group.wait();
    EXPECT_EQ(c->now() - t0, 1s);
    EXPECT_EQ(a.result() + b.result(), 11);
    EXPECT_EQ(group.size(), 0u);
  });
}

TEST(TaskGroup, AnEagerChildFailingAtOnceFailsTheGroup) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    const auto t0 = c->now();
    corio::task_group group;
    auto slow = group.spawn(after(100s, 1));
    auto bad = group.spawn_eager([]() -> task<> {
      throw std::runtime_error("at once");
      co_return;
    }());
    EXPECT_TRUE(bad.done());
    try {
      co_await group.wait();
      ADD_FAILURE() << "wait() must rethrow";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "at once");
    }
    EXPECT_EQ(c->now() - t0, 0s);
    EXPECT_TRUE(slow.cancelled());
    try {
      group.spawn_eager(after(1s, 0));
      ADD_FAILURE() << "spawn_eager() after the group failed must throw";
    } catch (const corio::invalid_state_error& e) {
      EXPECT_NE(std::string(e.what()).find("spawn_eager()"), std::string::npos) << e.what();
    }
  });
}

TEST(TaskGroup, SeveralFailuresAreAggregated) {
  run_mock([](mock_clock*) -> task<> {
    corio::task_group group;
    group.spawn(fail_after(1s, "one"));
    group.spawn(fail_after(1s, "two"));
    try {
      co_await group.wait();
      ADD_FAILURE();
    } catch (const corio::exception_group& g) {
      EXPECT_EQ(g.size(), 2u);
      if (g.size() != 2u)
        co_return;
      EXPECT_EQ(corio::describe(g.exceptions()[0]), "one");
      EXPECT_EQ(corio::describe(g.exceptions()[1]), "two");
    }
  });
}

TEST(TaskGroup, CancellingTheParentCancelsTheChildren) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    std::vector<corio::join_handle<int>> kids;
    auto parent = corio::spawn([](std::vector<corio::join_handle<int>>* k) -> task<> {
      corio::task_group group;
      k->push_back(group.spawn(after(100s, 1)));
      k->push_back(group.spawn(after(200s, 2)));
      co_await group.wait();
    }(&kids));
    const auto t0 = c->now();
    co_await corio::sleep(5s);
    parent.cancel();
    EXPECT_THROW(co_await parent, corio::cancelled_error);
    EXPECT_EQ(c->now() - t0, 5s);
    EXPECT_EQ(kids.size(), 2u);
    if (kids.size() != 2u)
      co_return;
    EXPECT_TRUE(kids[0].cancelled());
    EXPECT_TRUE(kids[1].cancelled());
  });
}

// asyncio: a child's error wins over the cancellation of the task in wait(); corio keeps that
// cancellation pending, so the next await raises it.
task<int> fails_in_its_cleanup() {
  bool cancelled = false;
  try {
    co_await corio::sleep(100s);
  } catch (const corio::cancelled_error&) {
    cancelled = true;
  }
  if (cancelled)
    throw std::logic_error("cleanup failed");
  co_return 0;
}
TEST(TaskGroup, AChildsFailureWinsOverTheWaitersCancellation) {
  run_mock([](mock_clock* c) -> task<> {
    auto parent = corio::spawn([]() -> task<std::string> {
      corio::task_group group;
      group.spawn(fails_in_its_cleanup());
      group.spawn(after(200s, 2));
      std::string what;
      try {
        co_await group.wait();
      } catch (const std::logic_error& e) {
        what = e.what();
      }
      EXPECT_TRUE(corio::cancelling() > 0); // still being cancelled
      bool cancelled_again = false;
      try {
        co_await corio::sleep(1s);
      } catch (const corio::cancelled_error&) {
        cancelled_again = true;
      }
      EXPECT_TRUE(cancelled_again);
      co_return what;
    }());
    const auto t0 = c->now();
    co_await corio::sleep(5s);
    parent.cancel();
    EXPECT_EQ(co_await parent, "cleanup failed");
    EXPECT_EQ(c->now() - t0, 5s);
  });
}

TEST(TaskGroup, ChildFinishingBeforeWaitIsCounted) {
  run_mock([](mock_clock*) -> task<> {
    corio::task_group group;
    auto h = group.spawn(after(0s, 5));
    co_await corio::sleep(1s);
    co_await group.wait();
    EXPECT_EQ(h.result(), 5);
  });
}

// asyncio's create_task() refuses a child once the group is shutting down ("TaskGroup ... is shutting
// down"): a sibling spawned by a child that caught its cancellation would never be cancelled, and the
// parent's cancellation would wait for it forever.
task<> spawns_a_sibling_when_cancelled(corio::task_group* group, std::string* refusal) {
  bool cancelled = false;
  try {
    co_await corio::sleep(1s);
  } catch (const corio::cancelled_error&) {
    cancelled = true;
  }
  if (cancelled) {
    try {
      group->spawn(after(1h, 0));
      *refusal = "accepted";
    } catch (const corio::invalid_state_error& e) {
      *refusal = e.what();
    }
    throw corio::cancelled_error();
  }
}
TEST(TaskGroup, SpawnIsRefusedWhileTheGroupCancelsItsChildren) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* c) -> task<> {
    std::string refusal;
    auto parent = corio::spawn([](std::string* r) -> task<> {
      corio::task_group group;
      group.spawn(spawns_a_sibling_when_cancelled(&group, r));
      co_await group.wait();
    }(&refusal));
    const auto t0 = c->now();
    co_await corio::sleep(5ms);
    parent.cancel();
    EXPECT_THROW(co_await parent, corio::cancelled_error);
    EXPECT_EQ(c->now() - t0, 5ms); // an accepted sibling would hold the parent for an hour
    EXPECT_NE(refusal.find("task_group::spawn() while the group is shutting down"), std::string::npos) << refusal;
  });
}

} // namespace
