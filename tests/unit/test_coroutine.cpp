// corio::coroutine<Y, S, R>: PEP 342's rules for next/send/throw_/close, one test each.
#include <corio/coroutine.hpp>
#include <corio/generator.hpp>

#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "counted.hpp"

using corio::coroutine;
using corio::testing::counted;
using corio::testing::lifetime_check;

namespace {

/// Yields the running total of what it is sent; returns the total when sent a negative number.
coroutine<int, int, int> accumulator() {
  int total = 0;
  while (true) {
    int v = co_yield total;
    if (v < 0)
      co_return total;
    total += v;
  }
}

TEST(Coroutine, IsLazy) {
  bool started = false;
  auto co = [](bool* s) -> coroutine<int> {
    *s = true;
    co_yield 1;
  }(&started);
  EXPECT_FALSE(started);
  EXPECT_FALSE(co.started());
  EXPECT_TRUE(co.next().is_yield());
  EXPECT_TRUE(started);
}

TEST(Coroutine, SendDeliversTheValueToTheYieldExpression) {
  auto acc = accumulator();
  EXPECT_EQ(acc.next().value(), 0);
  EXPECT_EQ(acc.send(5).value(), 5);
  EXPECT_EQ(acc.send(7).value(), 12);
  auto last = acc.send(-1);
  EXPECT_TRUE(last.is_return());
  EXPECT_TRUE(last.done());
  EXPECT_FALSE(last);
  EXPECT_EQ(last.return_value(), 12);
  EXPECT_TRUE(acc.done());
}

TEST(Coroutine, SendingToAJustStartedCoroutineIsAnError) {
  auto acc = accumulator();
  EXPECT_THROW((void)acc.send(1), corio::just_started_error);
  EXPECT_FALSE(acc.started()); // nothing ran; it can still be started properly
  EXPECT_EQ(acc.next().value(), 0);
  EXPECT_EQ(acc.send(2).value(), 2);
}

TEST(Coroutine, SendNoneStartsLikeNext) {
  auto co = []() -> coroutine<void, std::string> {
    std::string got = co_yield corio::none;
    EXPECT_EQ(got, "lorem ipsum");
  }();
  EXPECT_TRUE(co.send(corio::none).is_yield());
  EXPECT_TRUE(co.send("lorem ipsum").is_return());
}

TEST(Coroutine, SendingPythonsNoneStartsEveryKindOfCoroutine) {
  // send(None) is next() in Python, whatever the coroutine is sent later.
  auto nones = []() -> coroutine<int, corio::none_t> { co_yield 1; }();
  EXPECT_EQ(nones.send(corio::none).value(), 1);
  auto optionals = []() -> coroutine<int, std::optional<int>> {
    auto got = co_yield 1;
    co_yield got.value_or(-1);
  }();
  EXPECT_EQ(optionals.send(std::nullopt).value(), 1);
  EXPECT_EQ(optionals.send(std::optional<int>(7)).value(), 7);
  auto unstarted = []() -> coroutine<int, std::optional<int>> { co_yield 1; }();
  EXPECT_THROW((void)unstarted.send(std::optional<int>(3)), corio::just_started_error); // only None starts it
}

TEST(Coroutine, NextAfterStartSendsADefaultValue) {
  auto co = []() -> coroutine<int, std::optional<int>> {
    auto got = co_yield 1;
    co_yield got.has_value() ? 100 : -100; // Python: next() sends None
  }();
  EXPECT_EQ(co.next().value(), 1);
  EXPECT_EQ(co.next().value(), -100);
}

TEST(Coroutine, NextOnNonDefaultConstructibleSendIsAClearError) {
  struct no_default {
    explicit no_default(int v) : x(v) {}
    int x;
  };
  auto co = []() -> coroutine<int, no_default> {
    auto v = co_yield 1;
    co_yield v.x;
  }();
  EXPECT_EQ(co.next().value(), 1);
  EXPECT_THROW((void)co.next(), corio::coroutine_error);
  EXPECT_EQ(co.send(no_default{4}).value(), 4);
}

TEST(Coroutine, ThrowCaughtAndYieldedIsTheResult) {
  auto co = []() -> coroutine<std::string> {
    while (true) {
      std::string caught; // C++ allows no co_yield inside a handler: note it, yield after
      try {
        co_yield "waiting";
      } catch (const std::runtime_error& e) {
        caught = e.what();
      }
      if (!caught.empty())
        co_yield "caught " + caught;
    }
  }();
  EXPECT_EQ(co.next().value(), "waiting");
  auto s = co.throw_(std::runtime_error("oops"));
  EXPECT_EQ(s.value(), "caught oops");
  EXPECT_EQ(co.next().value(), "waiting");
}

TEST(Coroutine, ThrowNotCaughtPropagatesAndFinishes) {
  auto acc = accumulator();
  (void)acc.next();
  EXPECT_THROW((void)acc.throw_(std::invalid_argument("bad")), std::invalid_argument);
  EXPECT_TRUE(acc.done());
  EXPECT_TRUE(acc.next().done());
}

TEST(Coroutine, ThrowCaughtAndReturnedIsAReturnStep) {
  auto co = []() -> coroutine<int, void, std::string> {
    try {
      co_yield 1;
    } catch (const std::exception& e) {
      co_return std::string("handled ") + e.what();
    }
    co_return "not reached";
  }();
  (void)co.next();
  auto s = co.throw_(std::runtime_error("x"));
  ASSERT_TRUE(s.is_return());
  EXPECT_EQ(s.return_value(), "handled x");
}

TEST(Coroutine, ThrowAcceptsExceptionPtr) {
  auto acc = accumulator();
  (void)acc.next();
  EXPECT_THROW((void)acc.throw_(std::make_exception_ptr(std::out_of_range("r"))), std::out_of_range);
  EXPECT_THROW((void)acc.throw_(std::exception_ptr{}), corio::coroutine_error);
}

TEST(Coroutine, ThrowIntoJustStartedRaisesWithoutRunningTheBody) {
  bool ran = false;
  auto co = [](bool* r) -> coroutine<int> {
    *r = true;
    co_yield 1;
  }(&ran);
  EXPECT_THROW((void)co.throw_(std::runtime_error("early")), std::runtime_error);
  EXPECT_FALSE(ran);
  EXPECT_TRUE(co.done());
}

TEST(Coroutine, ThrowIntoFinishedRaisesInTheCaller) {
  auto co = []() -> coroutine<int> { co_return; }();
  EXPECT_TRUE(co.next().is_return());
  EXPECT_THROW((void)co.throw_(std::runtime_error("late")), std::runtime_error);
}

TEST(Coroutine, CloseRaisesGeneratorExitAtTheSuspensionPoint) {
  bool saw_exit = false, cleaned_up = false;
  auto co = [](bool* saw, bool* cleaned) -> coroutine<int> {
    struct cleanup {
      bool* flag;
      ~cleanup() { *flag = true; }
    } c{cleaned};
    try {
      co_yield 1;
    } catch (const corio::generator_exit&) {
      *saw = true;
      throw;
    }
  }(&saw_exit, &cleaned_up);
  (void)co.next();
  co.close();
  EXPECT_TRUE(saw_exit);
  EXPECT_TRUE(cleaned_up);
  EXPECT_TRUE(co.done());
  EXPECT_TRUE(co.next().done());
}

TEST(Coroutine, CloseIsNotCaughtByCatchStdException) {
  bool swallowed = false;
  auto co = [](bool* s) -> coroutine<int> {
    try {
      co_yield 1;
    } catch (const std::exception&) {
      *s = true;
    }
  }(&swallowed);
  (void)co.next();
  co.close();
  EXPECT_FALSE(swallowed);
}

TEST(Coroutine, CloseWhereTheCoroutineReturnsIsClean) {
  auto co = []() -> coroutine<int, void, int> {
    try {
      co_yield 1;
    } catch (const corio::generator_exit&) {
      co_return 5;
    }
    co_return 0;
  }();
  (void)co.next();
  EXPECT_NO_THROW(co.close());
  EXPECT_TRUE(co.done());
}

TEST(Coroutine, CloseWhereTheCoroutineYieldsIsAnError) {
  auto co = []() -> coroutine<int> {
    while (true) {
      bool exiting = false;
      try {
        co_yield 1;
      } catch (const corio::generator_exit&) {
        exiting = true;
      }
      if (exiting)
        co_yield 2; // ignores the close
    }
  }();
  (void)co.next();
  EXPECT_THROW(co.close(), corio::ignored_exit_error);
  EXPECT_FALSE(co.done()); // still suspended, at the yield it answered with
  EXPECT_EQ(co.next().value(), 1);
}

TEST(Coroutine, CloseWhereTheCoroutineRaisesSomethingElsePropagates) {
  auto co = []() -> coroutine<int> {
    try {
      co_yield 1;
    } catch (const corio::generator_exit&) {
      throw std::runtime_error("cleanup failed");
    }
  }();
  (void)co.next();
  EXPECT_THROW(co.close(), std::runtime_error);
  EXPECT_TRUE(co.done());
}

TEST(Coroutine, CloseOnFinishedOrNeverStartedIsANoOp) {
  lifetime_check check;
  {
    auto never = [](counted c) -> coroutine<int> { co_yield c.value; }(counted{1});
    EXPECT_NO_THROW(never.close());
    EXPECT_TRUE(never.done());
    EXPECT_EQ(check.alive(), 0); // closing released the frame and its parameters
    EXPECT_TRUE(never.next().done());

    auto finished = []() -> coroutine<int> { co_return; }();
    (void)finished.next();
    EXPECT_NO_THROW(finished.close());
    EXPECT_NO_THROW(finished.close());
  }
}

TEST(Coroutine, ResumingFromInsideItselfIsAlreadyExecuting) {
  struct holder {
    coroutine<int> co;
  } h;
  auto body = [](holder* self) -> coroutine<int> {
    EXPECT_TRUE(self->co.running());
    EXPECT_THROW((void)self->co.next(), corio::already_executing_error);
    EXPECT_THROW(self->co.close(), corio::already_executing_error);
    EXPECT_THROW((void)self->co.throw_(std::runtime_error("x")), corio::already_executing_error);
    co_yield 1;
  };
  h.co = body(&h);
  EXPECT_EQ(h.co.next().value(), 1);
  EXPECT_FALSE(h.co.running());
}

TEST(Coroutine, SendFromInsideItselfIsAlreadyExecuting) {
  struct holder {
    coroutine<int, int> co;
  } h;
  h.co = [](holder* self) -> coroutine<int, int> {
    int v = co_yield 0;
    EXPECT_THROW((void)self->co.send(v), corio::already_executing_error);
    co_yield v;
  }(&h);
  (void)h.co.next();
  EXPECT_EQ(h.co.send(3).value(), 3);
}

TEST(Coroutine, OperationsOnAFinishedCoroutineReportCompletion) {
  auto acc = accumulator();
  (void)acc.next();
  EXPECT_TRUE(acc.send(-1).is_return());
  auto a = acc.next();
  EXPECT_TRUE(a.done());
  EXPECT_FALSE(a.is_return()); // already exhausted: no value the second time (Python: StopIteration(None))
  EXPECT_EQ(a.what(), (corio::step<int, int>::kind::exhausted));
  EXPECT_TRUE(acc.send(1).done());
  EXPECT_NO_THROW(acc.close());
  coroutine<int, int, int> empty;
  EXPECT_TRUE(empty.next().done());
  EXPECT_TRUE(empty.send(1).done());
  EXPECT_NO_THROW(empty.close());
}

TEST(Coroutine, ExceptionFromBodyPropagatesAndFinishes) {
  auto co = []() -> coroutine<int> {
    co_yield 1;
    throw std::runtime_error("body");
  }();
  (void)co.next();
  EXPECT_THROW((void)co.next(), std::runtime_error);
  EXPECT_TRUE(co.done());
  EXPECT_TRUE(co.next().done());
}

TEST(Coroutine, VoidReturnStepCarriesNone) {
  auto co = []() -> coroutine<int> { co_return; }();
  auto s = co.next();
  EXPECT_TRUE(s.is_return());
  EXPECT_EQ(s.return_value(), corio::none);
  EXPECT_THROW((void)s.value(), corio::bad_step_access);
}

TEST(Coroutine, DestroyingUnfinishedRunsDestructorsOnly) {
  lifetime_check check;
  bool caught = false;
  {
    auto co = [](bool* c) -> coroutine<int, int> {
      counted a{1};
      try {
        co_yield 1;
      } catch (...) {
        *c = true; // destruction is not a close: no code runs
      }
      co_yield 2;
    }(&caught);
    (void)co.next();
    EXPECT_EQ(check.alive(), 1);
  }
  EXPECT_EQ(check.alive(), 0);
  EXPECT_FALSE(caught);
}

TEST(Coroutine, YieldedAndSentObjectsAreNotLeakedOrCopiedNeedlessly) {
  lifetime_check check;
  {
    auto co = []() -> coroutine<counted, counted, counted> {
      counted got = co_yield counted{1};
      counted copy_me{got.value + 1};
      got = co_yield copy_me; // an lvalue: copied once, the local stays intact
      EXPECT_FALSE(copy_me.moved_from);
      co_return counted{got.value * 10};
    }();
    EXPECT_EQ(co.next().value().value, 1);
    EXPECT_EQ(co.send(counted{4}).value().value, 5);
    EXPECT_EQ(co.send(counted{6}).return_value().value, 60);
    EXPECT_EQ(counted::copies, 1);
  }
  EXPECT_EQ(check.alive(), 0);
}

TEST(Coroutine, MoveOnlyYieldSendAndReturn) {
  auto co = []() -> coroutine<std::unique_ptr<int>, std::unique_ptr<int>, std::unique_ptr<int>> {
    auto got = co_yield std::make_unique<int>(1);
    co_return std::move(got);
  }();
  auto first = co.next();
  EXPECT_EQ(*first.value(), 1);
  auto last = co.send(std::make_unique<int>(2));
  EXPECT_EQ(*last.return_value(), 2);
}

TEST(Coroutine, LoopUntilDone) {
  auto co = []() -> coroutine<int, void, int> {
    for (int i = 0; i < 3; ++i)
      co_yield i;
    co_return 42;
  }();
  std::vector<int> seen;
  corio::step<int, int> s;
  while ((s = co.next()))
    seen.push_back(s.value());
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(s.return_value(), 42);
}

// throw_() hands its exception to the co_yield it resumes through a per-thread slot, and every co_yield
// tests a process-wide count of waiting throws: a generator resumed on another thread meanwhile must
// neither raise that exception nor lose its own values. Both loops are bounded; any interleaving passes.
TEST(Coroutine, ThrowWhileAnotherThreadIteratesGenerators) {
  constexpr int rounds = 2000;
  long long sums_ok = 0;
  std::thread other([&sums_ok] {
    auto count = [](int n) -> corio::generator<int> {
      for (int i = 0; i < n; ++i)
        co_yield i;
    };
    for (int r = 0; r < rounds; ++r) {
      long long sum = 0;
      for (int v : count(100))
        sum += v;
      sums_ok += sum == 4950 ? 1 : 0;
    }
  });
  int handled = 0;
  for (int r = 0; r < rounds; ++r) {
    auto co = []() -> coroutine<int> {
      bool caught = false;
      try {
        co_yield 1;
      } catch (const std::runtime_error&) {
        caught = true;
      }
      co_yield caught ? 2 : 0;
    }();
    (void)co.next();
    handled += co.throw_(std::runtime_error("x")).value() == 2 ? 1 : 0;
  }
  other.join();
  EXPECT_EQ(handled, rounds);
  EXPECT_EQ(sums_ok, rounds);
}

} // namespace
