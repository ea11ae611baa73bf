// corio::yield_from: delegation (PEP 380) for generators and two-way coroutines, at any depth.
#include <corio/coroutine.hpp>
#include <corio/generator.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "counted.hpp"

using corio::coroutine;
using corio::generator;
using corio::yield_from;
using corio::testing::counted;
using corio::testing::lifetime_check;

namespace {

generator<int> range(int from, int to) {
  for (int i = from; i < to; ++i)
    co_yield i;
}

generator<int> concat() {
  co_yield yield_from(range(0, 2));
  co_yield 100;
  co_yield yield_from(range(2, 4));
}

template <class G> std::vector<int> collect(G&& g) {
  std::vector<int> out;
  for (int x : g)
    out.push_back(x);
  return out;
}

TEST(YieldFromGenerator, FlattensSubGenerators) { EXPECT_EQ(collect(concat()), (std::vector<int>{0, 1, 100, 2, 3})); }

TEST(YieldFromGenerator, NamedSubGeneratorContinuesWhereItWas) {
  auto g = []() -> generator<int> {
    auto sub = range(0, 5);
    (void)sub.next(); // 0 consumed here
    co_yield yield_from(sub);
    co_yield yield_from(sub); // exhausted: yields nothing, completes at once
    co_yield -1;
  }();
  EXPECT_EQ(collect(g), (std::vector<int>{1, 2, 3, 4, -1}));
}

TEST(YieldFromGenerator, NamedSourceIsExhaustedAfterTheDelegation) {
  auto sub = range(0, 3);
  EXPECT_EQ(sub.next(), 0);
  auto outer = [](generator<int>& s) -> generator<int> {
    co_yield yield_from(s);
    co_yield 100;
  }(sub);
  EXPECT_EQ(collect(outer), (std::vector<int>{1, 2, 100}));
  EXPECT_TRUE(sub.done());
  EXPECT_FALSE(sub.next().has_value()); // not a resumption of its finished frame
  EXPECT_EQ(sub.begin(), sub.end());
}

TEST(YieldFromGenerator, FromRanges) {
  auto g = []() -> generator<std::string> {
    std::vector<std::string> borrowed{"a", "b"};
    co_yield yield_from(borrowed);
    EXPECT_EQ(borrowed[0], "a"); // a borrowed range is left as it was
    std::vector<std::string> owned{"c"};
    co_yield yield_from(std::move(owned));
  }();
  std::vector<std::string> out;
  for (auto& s : g)
    out.push_back(std::move(s));
  EXPECT_EQ(out, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(YieldFromGenerator, MoveOnlyElementsOfAnOwnedRange) {
  auto g = []() -> generator<std::unique_ptr<int>> {
    std::vector<std::unique_ptr<int>> v;
    v.push_back(std::make_unique<int>(1));
    v.push_back(std::make_unique<int>(2));
    co_yield yield_from(std::move(v));
  }();
  int sum = 0;
  for (auto& p : g)
    sum += *p;
  EXPECT_EQ(sum, 3);
}

generator<int> recurse(int depth) {
  if (depth == 0) {
    co_yield 7;
    co_yield 8;
    co_return;
  }
  co_yield yield_from(recurse(depth - 1));
}

TEST(YieldFromGenerator, HundredThousandDeepRecursion) {
  EXPECT_EQ(collect(recurse(100'000)), (std::vector<int>{7, 8}));
}

TEST(YieldFromGenerator, HundredThousandDeepDestroyedWhileSuspendedAtTheLeaf) {
  lifetime_check check;
  struct level {
    static generator<int> make(int depth) {
      counted guard{depth};
      if (depth == 0) {
        co_yield 1;
        co_yield 2;
      } else {
        co_yield yield_from(make(depth - 1));
      }
    }
  };
  {
    auto g = level::make(100'000);
    auto it = g.begin();
    EXPECT_EQ(*it, 1);
    EXPECT_EQ(check.alive(), 100'001);
  }
  EXPECT_EQ(check.alive(), 0);
}

TEST(YieldFromGenerator, MillionSequentialDelegationsKeepTheStackFlat) {
  auto g = []() -> generator<int> {
    for (int i = 0; i < 1'000'000; ++i)
      co_yield yield_from(range(0, i % 2)); // half of them finish without yielding
  }();
  long n = 0;
  for (int x : g)
    n += 1 + x;
  EXPECT_EQ(n, 500'000);
}

TEST(YieldFromGenerator, ExceptionFromLeafPropagatesThroughEveryLevel) {
  struct level {
    static generator<int> make(int depth, int* unwound) {
      struct on_unwind {
        int* n;
        ~on_unwind() { ++*n; }
      } u{unwound};
      if (depth == 0) {
        co_yield 1;
        throw std::runtime_error("leaf");
      }
      co_yield yield_from(make(depth - 1, unwound));
    }
  };
  int unwound = 0;
  auto g = level::make(1000, &unwound);
  auto it = g.begin();
  EXPECT_THROW(++it, std::runtime_error);
  EXPECT_EQ(unwound, 1001);
  EXPECT_TRUE(g.done());
}

TEST(YieldFromGenerator, ParentCanCatchAChildsException) {
  auto g = []() -> generator<int> {
    auto failing = []() -> generator<int> {
      co_yield 1;
      throw std::runtime_error("child");
    };
    bool failed = false; // no co_yield inside a handler in C++: note it, yield after
    try {
      co_yield yield_from(failing());
    } catch (const std::runtime_error&) {
      failed = true;
    }
    if (failed)
      co_yield -1;
  }();
  EXPECT_EQ(collect(g), (std::vector<int>{1, -1}));
}

TEST(YieldFromGenerator, DelegatingToItselfIsAlreadyExecuting) {
  struct holder {
    generator<int> g;
  } h;
  h.g = [](holder* self) -> generator<int> {
    co_yield 1;
    co_yield yield_from(self->g);
  }(&h);
  auto it = h.g.begin();
  EXPECT_THROW(++it, corio::already_executing_error);
}

TEST(YieldFromGenerator, FromACoroutineWithoutSend) {
  auto g = []() -> generator<int> {
    auto sub = []() -> coroutine<int, void, int> {
      co_yield 1;
      co_return 99; // dropped by a generator
    };
    co_yield yield_from(sub());
    co_yield 2;
  }();
  EXPECT_EQ(collect(g), (std::vector<int>{1, 2}));
}

// ---- two-way coroutines -------------------------------------------------------------------------

coroutine<int, int, int> adder() {
  int total = 0;
  while (true) {
    int v = co_yield total;
    if (v < 0)
      co_return total;
    total += v;
  }
}

coroutine<int, int, int> nest(int depth) {
  if (depth == 0)
    co_return co_await yield_from(adder());
  int r = co_await yield_from(nest(depth - 1));
  co_return r + 1; // one per level on the way out
}

TEST(YieldFromCoroutine, ForwardsSendsAndEvaluatesToTheReturnValue) {
  auto co = nest(3);
  EXPECT_EQ(co.next().value(), 0);
  EXPECT_EQ(co.send(10).value(), 10);
  EXPECT_EQ(co.send(5).value(), 15);
  auto s = co.send(-1);
  ASSERT_TRUE(s.is_return());
  EXPECT_EQ(s.return_value(), 15 + 3);
}

TEST(YieldFromCoroutine, ThousandDeepForwarding) {
  auto co = nest(1000);
  (void)co.next();
  for (int i = 1; i <= 1000; ++i)
    ASSERT_EQ(co.send(1).value(), i);
  EXPECT_EQ(co.send(-1).return_value(), 2000);
}

TEST(YieldFromCoroutine, HundredThousandDeepDelegation) {
  auto co = nest(100'000);
  (void)co.next();
  EXPECT_EQ(co.send(2).value(), 2);
  EXPECT_EQ(co.send(-1).return_value(), 100'002);
}

TEST(YieldFromCoroutine, MillionSynchronousCompletions) {
  auto co = []() -> coroutine<int, void, long> {
    auto immediate = [](int i) -> coroutine<int, void, int> { co_return i; };
    long sum = 0;
    for (int i = 0; i < 1'000'000; ++i)
      sum += co_await yield_from(immediate(i % 3));
    co_return sum;
  }();
  EXPECT_EQ(co.next().return_value(), 999'999L); // 333,333 * (0+1+2), plus the last 0
}

TEST(YieldFromCoroutine, PartlyDrivenSubCoroutineGetsTheOutersSendsAndThrows) {
  auto co = []() -> coroutine<int, int, int> {
    auto sub = adder();
    (void)sub.next();
    (void)sub.send(100); // suspended at a yield it reached while it was its own root
    co_return co_await yield_from(sub);
  }();
  EXPECT_EQ(co.next().value(), 100); // the delegation resumes sub with next(): sends 0
  EXPECT_EQ(co.send(5).value(), 105);
  EXPECT_THROW((void)co.throw_(std::runtime_error("into sub")), std::runtime_error);
  EXPECT_TRUE(co.done());
}

TEST(YieldFromCoroutine, ThrowGoesToTheInnermostWhichMayHandleIt) {
  auto inner = []() -> coroutine<std::string, void, int> {
    bool handled = false;
    try {
      co_yield "inner";
    } catch (const std::runtime_error&) {
      handled = true;
    }
    if (handled)
      co_yield "inner handled";
    co_return 1;
  };
  auto co = [](auto make) -> coroutine<std::string, void, int> {
    int r = co_await yield_from(make());
    co_yield "outer got " + std::to_string(r);
    co_return r;
  }(inner);
  EXPECT_EQ(co.next().value(), "inner");
  EXPECT_EQ(co.throw_(std::runtime_error("x")).value(), "inner handled");
  EXPECT_EQ(co.next().value(), "outer got 1");
}

TEST(YieldFromCoroutine, ThrowNotHandledByInnerReachesTheOuter) {
  auto co = []() -> coroutine<int> {
    auto inner = []() -> coroutine<int> { co_yield 1; };
    bool caught = false;
    try {
      co_await yield_from(inner());
    } catch (const std::logic_error&) {
      caught = true;
    }
    if (caught)
      co_yield 2;
  }();
  EXPECT_EQ(co.next().value(), 1);
  EXPECT_EQ(co.throw_(std::logic_error("up")).value(), 2);
  EXPECT_TRUE(co.next().is_return());
}

TEST(YieldFromCoroutine, ThrowThatInnerTurnsIntoAReturnResumesTheOuter) {
  auto co = []() -> coroutine<int, void, int> {
    auto inner = []() -> coroutine<int, void, int> {
      try {
        co_yield 1;
      } catch (const std::exception&) {
        co_return 50;
      }
      co_return 0;
    };
    int r = co_await yield_from(inner());
    co_yield r;
    co_return r;
  }();
  (void)co.next();
  EXPECT_EQ(co.throw_(std::runtime_error("x")).value(), 50);
}

TEST(YieldFromCoroutine, CloseClosesTheInnermostThenRaisesInEachDelegator) {
  std::vector<std::string> log;
  struct make {
    static coroutine<int> inner(std::vector<std::string>* log) {
      try {
        co_yield 1;
      } catch (const corio::generator_exit&) {
        log->push_back("inner exit");
        co_return; // a clean finish...
      }
    }
    static coroutine<int> outer(std::vector<std::string>* log) {
      try {
        co_await yield_from(inner(log));
        log->push_back("outer continued"); // ...still raises generator_exit here (PEP 380)
      } catch (const corio::generator_exit&) {
        log->push_back("outer exit");
        throw;
      }
    }
  };
  auto co = make::outer(&log);
  (void)co.next();
  co.close();
  EXPECT_EQ(log, (std::vector<std::string>{"inner exit", "outer exit"}));
  EXPECT_TRUE(co.done());
}

// PEP 380: generator_exit thrown into a delegating coroutine closes the delegate, and its clean finish
// raises generator_exit in the delegator (CPython agrees), whichever throw_ overload carries it.
TEST(YieldFromCoroutine, ThrowingGeneratorExitClosesTheDelegateAsCloseDoes) {
  struct make {
    static coroutine<int, void, int> inner(std::vector<std::string>* log) {
      bool exiting = false;
      try {
        co_yield 1;
      } catch (const corio::generator_exit&) {
        exiting = true;
      }
      log->push_back(exiting ? "inner exit" : "inner resumed");
      co_return 9; // a clean finish, with a value
    }
    static coroutine<int, void, int> outer(std::vector<std::string>* log) {
      try {
        int r = co_await yield_from(inner(log));
        log->push_back("outer got " + std::to_string(r)); // not reached: generator_exit rises instead
        co_yield 50;
      } catch (const corio::generator_exit&) {
        log->push_back("outer exit");
        throw;
      }
      co_return 0;
    }
  };
  for (bool as_ptr : {false, true}) {
    std::vector<std::string> log;
    auto co = make::outer(&log);
    (void)co.next();
    if (as_ptr)
      EXPECT_THROW((void)co.throw_(std::make_exception_ptr(corio::generator_exit{})), corio::generator_exit);
    else
      EXPECT_THROW((void)co.throw_(corio::generator_exit{}), corio::generator_exit);
    EXPECT_EQ(log, (std::vector<std::string>{"inner exit", "outer exit"}));
    EXPECT_TRUE(co.done());
  }
}

// Unlike close(), throw_(generator_exit) lets the root answer with a yield: that is its result, and the
// coroutine goes on as usual. A delegate answering with a yield ignored the exit: ignored_exit_error.
TEST(YieldFromCoroutine, ThrowingGeneratorExitLetsTheRootYieldButNotADelegate) {
  struct make {
    static coroutine<int, void, int> quiet() {
      try {
        co_yield 1;
      } catch (const corio::generator_exit&) {
      }
      co_return 0;
    }
    static coroutine<int, void, int> stubborn() {
      bool exiting = false;
      try {
        co_yield 1;
      } catch (const corio::generator_exit&) {
        exiting = true;
      }
      if (exiting)
        co_yield 2; // ignores the exit
      co_return 0;
    }
    static coroutine<int, void, int> root(bool stubborn_inner) {
      bool exiting = false;
      auto sub = stubborn_inner ? stubborn() : quiet(); // named: g++ 12 destroys a ?: temporary twice here
      try {
        co_await yield_from(std::move(sub));
      } catch (const corio::generator_exit&) {
        exiting = true;
      }
      if (exiting)
        co_yield 70;
      co_return 80;
    }
  };
  auto co = make::root(false);
  (void)co.next();
  EXPECT_EQ(co.throw_(corio::generator_exit{}).value(), 70);
  auto last = co.next();
  EXPECT_TRUE(last.is_return());
  EXPECT_EQ(last.return_value(), 80);

  auto ignoring = make::root(true);
  (void)ignoring.next();
  EXPECT_THROW((void)ignoring.throw_(corio::generator_exit{}), corio::ignored_exit_error);
  EXPECT_FALSE(ignoring.done()); // left suspended at the delegate's yield, as close() leaves it
  EXPECT_THROW(ignoring.close(), corio::ignored_exit_error);
}

// running() is Python's gi_running: a delegate runs while its delegator's chain does.
TEST(YieldFromCoroutine, ADelegateIsRunningWhileTheChainRuns) {
  struct make {
    static coroutine<int> inner(coroutine<int>** self, coroutine<int>** outer, std::vector<bool>* seen) {
      seen->push_back((*self)->running());
      seen->push_back((*outer)->running());
      co_yield 1;
    }
    static coroutine<int> outer(coroutine<int>* sub) { co_await yield_from(*sub); }
  };
  std::vector<bool> seen;
  coroutine<int>* inner_p = nullptr;
  coroutine<int>* outer_p = nullptr;
  auto inner = make::inner(&inner_p, &outer_p, &seen);
  auto outer = make::outer(&inner);
  inner_p = &inner;
  outer_p = &outer;
  EXPECT_FALSE(inner.running());
  (void)outer.next();
  EXPECT_EQ(seen, (std::vector<bool>{true, true}));
  EXPECT_FALSE(inner.running()); // the chain waits at the inner yield
  EXPECT_FALSE(outer.running());
}

// Only the frames that close() found in the chain get generator_exit re-raised: a coroutine that
// handles the exit by delegating to a new one gets that one's return value (found by fuzz_coroutine;
// CPython agrees).
TEST(YieldFromCoroutine, ADelegationStartedWhileClosingReturnsNormally) {
  std::vector<std::string> log;
  struct make {
    static coroutine<int, void, int> quick() { co_return 41; }
    static coroutine<int, void, int> outer(std::vector<std::string>* log) {
      bool exiting = false;
      try {
        co_yield 1;
      } catch (const corio::generator_exit&) {
        exiting = true;
      }
      if (exiting) {
        int r = co_await yield_from(quick()); // not part of the chain close() found
        log->push_back("got " + std::to_string(r));
      }
      co_return 49;
    }
  };
  auto co = make::outer(&log);
  (void)co.next();
  co.close(); // finishing after the exit is a clean close
  EXPECT_EQ(log, (std::vector<std::string>{"got 41"}));
  EXPECT_TRUE(co.done());
}

// A named source that close() finished keeps no trace of that close: delegating to it again gives its
// (empty) result, not generator_exit.
TEST(YieldFromCoroutine, ANamedSourceFinishedByCloseCanBeDelegatedToAgain) {
  auto sub = []() -> coroutine<int, void, int> {
    try {
      co_yield 1;
    } catch (const corio::generator_exit&) {
      co_return 5; // a clean finish
    }
    co_return 6;
  }();
  struct make {
    static coroutine<int, void, int> outer(coroutine<int, void, int>* s) { co_return co_await yield_from(*s); }
  };
  auto first = make::outer(&sub);
  EXPECT_EQ(first.next().value(), 1);
  first.close(); // sub finishes cleanly; generator_exit rises in `first`, which ends
  EXPECT_TRUE(first.done());
  auto second = make::outer(&sub);
  auto s = second.next(); // sub is exhausted: the delegation ends at once, without generator_exit
  EXPECT_TRUE(s.is_return());
}

TEST(YieldFromCoroutine, OuterIgnoringExitIsDetected) {
  auto co = []() -> coroutine<int> {
    auto inner = []() -> coroutine<int> { co_yield 1; };
    bool exiting = false;
    try {
      co_await yield_from(inner());
    } catch (const corio::generator_exit&) {
      exiting = true;
    }
    if (exiting)
      co_yield 2;
  }();
  (void)co.next();
  EXPECT_THROW(co.close(), corio::ignored_exit_error);
}

TEST(YieldFromCoroutine, DelegatingToAGeneratorWhenNothingIsSent) {
  auto co = []() -> coroutine<int, void, int> {
    co_await yield_from(range(0, 3));
    co_return 3;
  }();
  std::vector<int> seen;
  corio::step<int, int> s;
  while ((s = co.next()))
    seen.push_back(s.value());
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(s.return_value(), 3);
}

TEST(YieldFromCoroutine, FinishedSubCoroutineWithReturnValueIsAnError) {
  auto co = []() -> coroutine<int, void, int> {
    auto sub = []() -> coroutine<int, void, int> { co_return 1; }();
    (void)sub.next(); // finished; its return value went to us here
    co_return co_await yield_from(sub);
  }();
  EXPECT_THROW((void)co.next(), corio::coroutine_error);
}

// The first yield_from moved the return value out but left it engaged: a second delegation returned the
// moved-from value (here an empty string) instead of raising.
TEST(YieldFromCoroutine, DelegatingAgainAfterTheResultWasTakenIsAnError) {
  std::string first;
  auto co = [](std::string* out) -> coroutine<int, void, std::string> {
    auto sub = []() -> coroutine<int, void, std::string> {
      co_yield 1;
      co_return std::string("a return value long enough to live on the heap");
    }();
    *out = co_await yield_from(sub);
    std::string again = co_await yield_from(sub); // finished, its return value taken
    co_return again;
  }(&first);
  EXPECT_EQ(co.next().value(), 1);
  EXPECT_THROW((void)co.next(), corio::coroutine_error);
  EXPECT_EQ(first, "a return value long enough to live on the heap");
}

TEST(YieldFromCoroutine, DelegatedSubCannotBeDrivenDirectly) {
  struct holder {
    coroutine<int, int, int> sub;
  } h;
  h.sub = adder();
  auto co = [](holder* hp) -> coroutine<int, int, int> { co_return co_await yield_from(hp->sub); }(&h);
  (void)co.next();
  EXPECT_THROW((void)h.sub.send(1), corio::already_executing_error);
  EXPECT_EQ(co.send(4).value(), 4);
}

TEST(YieldFromCoroutine, NamedSourceIsDoneAfterTheDelegation) {
  auto sub = adder();
  auto co = [](coroutine<int, int, int>& s) -> coroutine<int, int, int> { co_return co_await yield_from(s); }(sub);
  EXPECT_EQ(co.next().value(), 0);
  EXPECT_EQ(co.send(7).value(), 7);
  EXPECT_EQ(co.send(-1).return_value(), 7);
  EXPECT_TRUE(sub.done());
  EXPECT_TRUE(sub.started());
  auto late = sub.next(); // exhausted: its return value went to the delegation
  EXPECT_TRUE(late.done());
  EXPECT_FALSE(late.is_return());
  auto sent = sub.send(1);
  EXPECT_TRUE(sent.done());
  EXPECT_FALSE(sent.is_return());
  EXPECT_THROW((void)sub.throw_(std::runtime_error("late")), std::runtime_error);
  sub.close(); // a no-op
}

TEST(YieldFromCoroutine, ACoroutineThatDelegatesCanBeDelegatedTo) {
  lifetime_check check;
  auto middle = []() -> coroutine<int, int, int> {
    counted guard{1};
    co_return co_await yield_from(adder());
  };
  auto outer = [](auto make) -> coroutine<int, int, int> {
    auto m = make();
    EXPECT_EQ(m.next().value(), 0);
    EXPECT_EQ(m.send(5).value(), 5); // m drives adder as the root of its own chain
    int r = co_await yield_from(m);  // the whole chain m -> adder joins ours
    co_return r + 1000;
  };
  {
    auto co = outer(middle);
    EXPECT_EQ(co.next().value(), 5); // PEP 380's first next(sub) reaches adder: it receives 0
    EXPECT_EQ(co.send(3).value(), 8);
    EXPECT_EQ(co.send(-1).return_value(), 1008);
  }
  {
    auto co = outer(middle);
    EXPECT_EQ(co.next().value(), 5);
    EXPECT_EQ(check.alive(), 1); // destroyed while adder waits at a yield three frames down
  }
  EXPECT_EQ(check.alive(), 0);
}

TEST(YieldFromCoroutine, ThrowAndCloseReachADelegatedGenerator) {
  auto log = std::make_shared<std::vector<std::string>>();
  auto make = [](std::shared_ptr<std::vector<std::string>> out) -> coroutine<int, void, int> {
    auto gen = [](std::shared_ptr<std::vector<std::string>> o) -> generator<int> {
      bool caught = false;
      try {
        co_yield 1;
      } catch (const std::runtime_error& e) {
        o->push_back(std::string("generator caught ") + e.what());
        caught = true;
      }
      if (caught)
        co_yield -1;
      try {
        co_yield 2;
      } catch (const corio::generator_exit&) {
        o->push_back("generator closed");
        throw;
      }
    };
    co_await yield_from(gen(out));
    co_return 0;
  };
  auto co = make(log);
  EXPECT_EQ(co.next().value(), 1);
  EXPECT_EQ(co.throw_(std::runtime_error("x")).value(), -1);
  EXPECT_EQ(co.next().value(), 2);
  co.close();
  EXPECT_TRUE(co.done());
  EXPECT_EQ(*log, (std::vector<std::string>{"generator caught x", "generator closed"}));
}

TEST(YieldFromCoroutine, DestroyingADelegatingChainReleasesEveryFrame) {
  lifetime_check check;
  struct level {
    static coroutine<int, int, int> make(int depth) {
      counted guard{depth};
      if (depth == 0)
        co_return co_await yield_from(adder());
      co_return co_await yield_from(make(depth - 1));
    }
  };
  {
    auto co = level::make(100'000);
    (void)co.next();
    (void)co.send(1);
    EXPECT_EQ(check.alive(), 100'001);
  }
  EXPECT_EQ(check.alive(), 0);
}

} // namespace
