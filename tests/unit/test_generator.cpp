// corio::generator<T>: PEP 255 semantics, iteration, lifetimes, errors.
#include <corio/generator.hpp>

#include <gtest/gtest.h>

#include <iterator>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "counted.hpp"

#if defined(__clang_major__) && __clang_major__ < 16
#define CORIO_HAVE_RANGE_VIEWS 0 // clang 14 cannot instantiate libstdc++ 12's views (HAZARDS.md §3)
#else
#define CORIO_HAVE_RANGE_VIEWS 1
#endif

using corio::generator;
using corio::testing::counted;
using corio::testing::lifetime_check;

namespace {

generator<int> count_to(int n) {
  for (int i = 0; i < n; ++i)
    co_yield i;
}

template <class G> std::vector<typename G::value_type> collect(G g) {
  std::vector<typename G::value_type> out;
  for (auto& v : g)
    out.push_back(v);
  return out;
}

TEST(Generator, YieldsValuesInOrder) { EXPECT_EQ(collect(count_to(5)), (std::vector<int>{0, 1, 2, 3, 4})); }

TEST(Generator, EmptyBodyYieldsNothing) {
  auto empty = []() -> generator<int> { co_return; };
  auto g = empty();
  EXPECT_EQ(g.begin(), g.end());
  EXPECT_TRUE(g.done());
}

TEST(Generator, IsLazyUntilFirstBeginOrNext) {
  int started = 0;
  auto make = [](int* s) -> generator<int> {
    ++*s;
    co_yield 1;
  };
  auto g = make(&started);
  EXPECT_EQ(started, 0);
  EXPECT_FALSE(g.done());
  auto it = g.begin();
  EXPECT_EQ(started, 1);
  EXPECT_EQ(*it, 1);
}

TEST(Generator, BeginTwiceDoesNotRestart) {
  auto g = count_to(3);
  auto it = g.begin();
  ++it;
  EXPECT_EQ(*g.begin(), 1);
}

// Python: next(g) takes an element; a for loop over g then goes on with the following one.
TEST(Generator, BeginAfterNextStartsAfterTheElementNextTook) {
  auto strings = []() -> generator<std::string> {
    co_yield std::string("a");
    co_yield std::string("b");
    co_yield std::string("c");
  }();
  EXPECT_EQ(strings.next(), "a");
  std::vector<std::string> rest;
  for (auto& s : strings)
    rest.push_back(s);
  EXPECT_EQ(rest, (std::vector<std::string>{"b", "c"}));

  auto g = count_to(4);
  EXPECT_EQ(g.next(), 0);
  EXPECT_EQ(g.next(), 1);
  auto it = g.begin();
  EXPECT_EQ(*it, 2);
  EXPECT_EQ(*g.begin(), 2); // begin() again, without a next() between: the same element
  ++it;
  EXPECT_EQ(*it, 3);
  ++it;
  EXPECT_EQ(it, g.end());
  EXPECT_EQ(g.next(), std::nullopt);
}

TEST(Generator, NextReturnsValuesThenNullopt) {
  auto g = count_to(2);
  EXPECT_EQ(g.next(), 0);
  EXPECT_EQ(g.next(), 1);
  EXPECT_FALSE(g.next().has_value());
  EXPECT_FALSE(g.next().has_value()); // exhausted stays exhausted
  EXPECT_TRUE(g.done());
}

TEST(Generator, FreeNextThrowsStopIterationWhenExhausted) {
  auto g = count_to(1);
  EXPECT_EQ(corio::next(g), 0);
  EXPECT_THROW(corio::next(g), corio::stop_iteration);
  EXPECT_THROW(corio::next(g), corio::stop_iteration);
}

TEST(Generator, DefaultYieldsNone) {
  auto g = []() -> generator<> {
    co_yield corio::none;
    co_yield {};
  }();
  int n = 0;
  for (corio::none_t v : g) {
    EXPECT_EQ(v, corio::none);
    ++n;
  }
  EXPECT_EQ(n, 2);
  static_assert(std::is_same_v<generator<void>::value_type, corio::none_t>);
}

TEST(Generator, RvalueYieldIsHandedOutWithoutCopy) {
  lifetime_check check;
  {
    auto g = []() -> generator<counted> {
      co_yield counted{1};
      co_yield counted{2};
    }();
    int sum = 0;
    for (counted& c : g)
      sum += c.value;
    EXPECT_EQ(sum, 3);
    EXPECT_EQ(counted::copies, 0);
    EXPECT_EQ(counted::constructed, 2);
  }
  EXPECT_EQ(check.alive(), 0);
}

TEST(Generator, LvalueYieldIsCopiedSoTheBodyKeepsItsValue) {
  auto g = []() -> generator<std::string> {
    std::string s = "keep";
    co_yield s;
    co_yield s; // the consumer moved the first one away; ours must be intact
  }();
  auto it = g.begin();
  std::string taken = std::move(*it);
  ++it;
  EXPECT_EQ(taken, "keep");
  EXPECT_EQ(*it, "keep");
}

TEST(Generator, ReferenceGeneratorYieldsTheObjectItself) {
  std::vector<int> data{1, 2, 3};
  auto g = [](std::vector<int>* d) -> generator<int&> {
    for (int& x : *d)
      co_yield x;
  }(&data);
  for (int& x : g)
    x *= 10;
  EXPECT_EQ(data, (std::vector<int>{10, 20, 30}));
}

TEST(Generator, ConstReferenceGeneratorDoesNotCopy) {
  lifetime_check check;
  {
    counted a{5};
    auto g = [](const counted* p) -> generator<const counted&> {
      co_yield *p;
      co_yield *p;
    }(&a);
    for (const counted& c : g)
      EXPECT_EQ(&c, &a);
    EXPECT_EQ(counted::copies, 0);
  }
  EXPECT_EQ(check.alive(), 0);
}

TEST(Generator, ConvertingYield) {
  auto g = []() -> generator<std::string> {
    co_yield "literal";
    const char* p = "pointer";
    co_yield p;
  }();
  EXPECT_EQ(collect(std::move(g)), (std::vector<std::string>{"literal", "pointer"}));
}

TEST(Generator, MoveOnlyValues) {
  auto g = []() -> generator<std::unique_ptr<int>> {
    co_yield std::make_unique<int>(1);
    auto p = std::make_unique<int>(2);
    co_yield std::move(p);
  }();
  std::vector<std::unique_ptr<int>> out;
  for (auto& p : g)
    out.push_back(std::move(p));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(*out[0], 1);
  EXPECT_EQ(*out[1], 2);

  auto h = []() -> generator<std::unique_ptr<int>> { co_yield std::make_unique<int>(7); }();
  auto v = h.next();
  ASSERT_TRUE(v && *v);
  EXPECT_EQ(**v, 7);
}

TEST(Generator, ExceptionPropagatesAtTheIterationPointThenFinished) {
  auto g = []() -> generator<int> {
    co_yield 1;
    throw std::runtime_error("boom");
  }();
  auto it = g.begin();
  EXPECT_EQ(*it, 1);
  EXPECT_THROW(++it, std::runtime_error);
  EXPECT_TRUE(g.done());
  EXPECT_EQ(it, g.end());
  EXPECT_FALSE(g.next().has_value()); // finished: no second throw
}

TEST(Generator, ExceptionBeforeFirstYieldComesFromBegin) {
  auto g = []() -> generator<int> {
    throw std::logic_error("early");
    co_return;
  }();
  EXPECT_THROW((void)g.begin(), std::logic_error);
  EXPECT_TRUE(g.done());
}

TEST(Generator, DestroyingUnfinishedRunsLocalDestructorsOnly) {
  lifetime_check check;
  int after_yield = 0;
  {
    auto g = [](int* after) -> generator<int> {
      counted a{1};
      {
        counted b{2};
        co_yield 1;
        ++*after;
      }
      co_yield 2;
    }(&after_yield);
    auto it = g.begin();
    EXPECT_EQ(*it, 1);
    EXPECT_EQ(check.alive(), 2);
  }
  EXPECT_EQ(check.alive(), 0);
  EXPECT_EQ(after_yield, 0); // no more of the body ran
}

TEST(Generator, DestroyingNeverStartedDestroysParameters) {
  lifetime_check check;
  {
    auto g = [](counted c) -> generator<int> { co_yield c.value; }(counted{3});
    EXPECT_GE(check.alive(), 1);
  }
  EXPECT_EQ(check.alive(), 0);
}

TEST(Generator, MoveConstructAndAssign) {
  auto a = count_to(3);
  auto it = a.begin();
  generator<int> b = std::move(a);
  EXPECT_TRUE(a.done()); // NOLINT(bugprone-use-after-move): moved-from is empty and done
  ++it;
  EXPECT_EQ(*it, 1);
  b = count_to(1);
  EXPECT_EQ(collect(std::move(b)), std::vector<int>{0});
}

TEST(Generator, DefaultConstructedIsEmpty) {
  generator<int> g;
  EXPECT_TRUE(g.done());
  EXPECT_EQ(g.begin(), g.end());
  EXPECT_FALSE(g.next().has_value());
}

TEST(Generator, ReentrantIterationIsAnError) {
  struct holder {
    generator<int> g;
  } h;
  auto body = [](holder* self) -> generator<int> {
    co_yield 1;
    (void)self->g.next(); // resumes itself
    co_yield 2;
  };
  h.g = body(&h);
  auto it = h.g.begin();
  EXPECT_THROW(++it, corio::already_executing_error);
  EXPECT_TRUE(h.g.done());
}

TEST(Generator, IteratingItselfFromInsideIsAnError) {
  struct holder {
    generator<int> g;
  } h;
  auto body = [](holder* self) -> generator<int> {
    co_yield 1;
    for (int x : self->g) // begin() on a running generator
      co_yield x;
  };
  h.g = body(&h);
  auto it = h.g.begin();
  EXPECT_EQ(*it, 1);
  EXPECT_THROW(++it, corio::already_executing_error);
  EXPECT_TRUE(h.g.done());
  EXPECT_EQ(it, h.g.end());
}

TEST(Generator, InfiniteGeneratorStopsWhenConsumerStops) {
  auto naturals = []() -> generator<long> {
    for (long i = 0;; ++i)
      co_yield i;
  };
  long sum = 0;
  for (long x : naturals()) {
    if (x == 100)
      break;
    sum += x;
  }
  EXPECT_EQ(sum, 4950);
}

static_assert(std::input_iterator<generator<int>::iterator>);
static_assert(std::sentinel_for<std::default_sentinel_t, generator<int>::iterator>);
static_assert(std::ranges::input_range<generator<int>>);
static_assert(std::ranges::view<generator<int>>);
static_assert(std::is_same_v<std::ranges::range_reference_t<generator<int>>, int&>);
static_assert(std::is_same_v<std::ranges::range_reference_t<generator<const std::string&>>, const std::string&>);
static_assert(!std::is_copy_constructible_v<generator<int>>);

#if CORIO_HAVE_RANGE_VIEWS
TEST(Generator, ComposesWithRangeViews) {
  auto evens = count_to(10) | std::views::filter([](int x) { return x % 2 == 0; }) | std::views::take(3);
  std::vector<int> out;
  for (int x : evens)
    out.push_back(x);
  EXPECT_EQ(out, (std::vector<int>{0, 2, 4}));
}
#endif

TEST(Generator, ManyValuesSum) {
  long long sum = 0;
  for (int x : count_to(1'000'000))
    sum += x;
  EXPECT_EQ(sum, 999'999LL * 1'000'000 / 2);
}

} // namespace
