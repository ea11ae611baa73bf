// corio::future<T>: set once, awaited by many, cancel, callbacks, misuse.
#include <corio/future.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/testing/mock_clock.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "leak_check.hpp"

using namespace std::chrono_literals;
using corio::future;
using corio::task;

namespace {

TEST(Future, AwaitedByManyTasks) {
  corio::testing::leak_check leaks;
  auto body = []() -> task<int> {
    future<int> f;
    auto waiter = [](future<int> fut) -> task<int> { co_return co_await fut; };
    auto a = corio::spawn(waiter(f));
    auto b = corio::spawn(waiter(f));
    co_await corio::sleep(0s);
    EXPECT_FALSE(f.done());
    f.set_result(21);
    EXPECT_TRUE(f.done());
    co_return co_await a + co_await b + co_await f;
  };
  EXPECT_EQ(corio::run(body()), 63);
}

TEST(Future, ExceptionAndCancel) {
  auto body = []() -> task<> {
    future<int> f;
    f.set_exception(std::make_exception_ptr(std::runtime_error("nope")));
    EXPECT_THROW(co_await f, std::runtime_error);
    EXPECT_TRUE(f.exception() != nullptr);
    future<> g;
    EXPECT_TRUE(g.cancel());
    EXPECT_FALSE(g.cancel());
    EXPECT_TRUE(g.cancelled());
    EXPECT_THROW(co_await g, corio::cancelled_error);
  };
  corio::run(body());
}

TEST(Future, MisuseIsAClearError) {
  future<int> f;
  EXPECT_THROW(f.result(), corio::invalid_state_error); // not done
  EXPECT_THROW((void)f.exception(), corio::invalid_state_error);
  f.set_result(1);
  EXPECT_THROW(f.set_result(2), corio::invalid_state_error); // twice
  EXPECT_THROW(f.set_exception(std::make_exception_ptr(1)), corio::invalid_state_error);
  EXPECT_THROW(f.set_exception(nullptr), corio::invalid_state_error);
  EXPECT_EQ(f.result(), 1);
}

// A future belongs to the first loop that awaits it (here: it was made outside any loop); a task of another
// loop awaiting it would never be woken (it hung). asyncio: RuntimeError "... attached to a different loop".
TEST(Future, AwaitingAFutureOfAnotherLoopIsAClearError) {
  corio::testing::leak_check leaks;
  corio::testing::mock_clock clock_a, clock_b;
  corio::event_loop a({.clock = &clock_a});
  corio::event_loop b({.clock = &clock_b});
  future<int> f;
  auto waiter = [](future<int> f) -> task<int> { co_return co_await f; };
  auto on_a = corio::spawn(a, waiter(f));
  corio::run_until_complete(a, []() -> task<> { co_await corio::sleep(1ms); }()); // on_a awaits f: bound to a
  EXPECT_FALSE(on_a.done());
  try {
    corio::run_until_complete(b, waiter(f));
    ADD_FAILURE() << "no error";
  } catch (const corio::loop_error& e) {
    EXPECT_NE(std::string(e.what()).find("another event loop"), std::string::npos) << e.what();
  }
  f.set_result(5);
  EXPECT_EQ(corio::run_until_complete(a, [](corio::join_handle<int> h) -> task<int> { co_return co_await h; }(on_a)),
            5);
  EXPECT_EQ(corio::run_until_complete(b, waiter(f)), 5); // done: anyone may take its result
}

TEST(Future, MoveOnlyResultIsConsumedOnce) {
  auto body = []() -> task<> {
    future<std::unique_ptr<int>> f;
    f.set_result(std::make_unique<int>(9));
    auto p = co_await f;
    EXPECT_EQ(*p, 9);
    try {
      co_await f; // finished and consumed
      ADD_FAILURE();
    } catch (const corio::invalid_state_error& e) {
      EXPECT_NE(std::string(e.what()).find("already taken"), std::string::npos);
    }
  };
  corio::run(body());
}

TEST(Future, DoneCallbacks) {
  auto body = []() -> task<int> {
    future<> f;
    int calls = 0;
    f.add_done_callback([&] { ++calls; });
    f.set_result();
    EXPECT_EQ(calls, 0); // scheduled, not run inline
    co_await corio::sleep(0s);
    f.add_done_callback([&] { ++calls; });
    co_await corio::sleep(0s);
    co_return calls;
  };
  EXPECT_EQ(corio::run(body()), 2);
}

TEST(Future, RemoveDoneCallback) {
  auto body = []() -> task<std::string> {
    future<int> f;
    std::string order;
    const auto a = f.add_done_callback([&] { order += 'a'; });
    const auto b = f.add_done_callback([&] { order += 'b'; });
    const auto c = f.add_done_callback([&] { order += 'c'; });
    EXPECT_NE(a, b);
    EXPECT_TRUE(f.remove_done_callback(b));
    EXPECT_FALSE(f.remove_done_callback(b)); // once
    EXPECT_FALSE(f.remove_done_callback(0)); // names none
    EXPECT_FALSE(f.remove_done_callback(c + 100));
    f.set_result(1);
    EXPECT_FALSE(f.remove_done_callback(c)); // done: already scheduled
    EXPECT_EQ(f.add_done_callback([&] { order += 'd'; }), 0u);
    co_await corio::sleep(0s);
    co_return order;
  };
  EXPECT_EQ(corio::run(body()), "acd");
}

TEST(Future, SetFromAnotherThreadThroughTheLoop) {
  auto body = []() -> task<int> {
    future<int> f;
    corio::event_loop* loop = corio::event_loop::current();
    std::thread worker([loop, f]() mutable { loop->call_soon_threadsafe([f]() mutable { f.set_result(5); }); });
    int v = co_await f;
    worker.join();
    co_return v;
  };
  EXPECT_EQ(corio::run(body()), 5);
}

} // namespace
