// corio::round_robin: the article's deque scheduler, and its error policy.
#include <corio/coroutine.hpp>
#include <corio/generator.hpp>
#include <corio/round_robin.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "counted.hpp"

namespace {

using log_t = std::vector<std::string>;

corio::coroutine<void> worker(std::string name, int steps, log_t* log) {
  for (int i = 0; i < steps; ++i) {
    log->push_back(name + std::to_string(i));
    co_yield corio::none;
  }
}

TEST(RoundRobin, InterleavesInTurn) {
  log_t log;
  corio::round_robin s;
  s.add(worker("a", 2, &log));
  s.add(worker("b", 3, &log));
  EXPECT_EQ(s.size(), 2u);
  // a and b each take one resumption per item plus one to finish
  EXPECT_EQ(s.run(), 7u);
  EXPECT_EQ(log, (log_t{"a0", "b0", "a1", "b1", "b2"}));
  EXPECT_TRUE(s.empty());
}

TEST(RoundRobin, MixesGeneratorsAndCoroutinesOfAnyType) {
  log_t log;
  corio::round_robin s;
  s.add([](log_t* l) -> corio::generator<int> {
    l->push_back("gen");
    co_yield 1;
    l->push_back("gen again");
    co_yield 2;
  }(&log));
  s.add([](log_t* l) -> corio::coroutine<std::string, int, double> {
    int got = co_yield "x"; // next() sends int{}
    l->push_back("co got " + std::to_string(got));
    co_return 1.5;
  }(&log));
  s.run();
  EXPECT_EQ(log, (log_t{"gen", "gen again", "co got 0"})); // co logs on its second turn
}

TEST(RoundRobin, FailingCoroutineIsReportedAndOthersFinish) {
  log_t log;
  corio::round_robin s;
  s.add(worker("a", 3, &log), "good");
  s.add(
      []() -> corio::coroutine<void> {
        co_yield corio::none;
        throw std::runtime_error("boom");
      }(),
      "bad");
  try {
    s.run();
    FAIL() << "run() must report the failure";
  } catch (const corio::exception_group& g) {
    ASSERT_EQ(g.size(), 1u);
    EXPECT_NE(std::string(g.what()).find("[bad] boom"), std::string::npos) << g.what();
    EXPECT_THROW(std::rethrow_exception(g.exceptions()[0]), std::runtime_error);
  }
  EXPECT_EQ(log, (log_t{"a0", "a1", "a2"})); // the good one ran to the end
  EXPECT_TRUE(s.failures().empty());
  EXPECT_EQ(s.run(), 0u); // reported once
}

TEST(RoundRobin, SeveralFailuresAreAggregatedInOrder) {
  corio::round_robin s;
  auto fail_after = [](int n, const char* what) -> corio::coroutine<void> {
    for (int i = 0; i < n; ++i)
      co_yield corio::none;
    throw std::runtime_error(what);
  };
  s.add(fail_after(2, "second"));
  s.add(fail_after(0, "first"));
  try {
    s.run();
    FAIL();
  } catch (const corio::exception_group& g) {
    ASSERT_EQ(g.size(), 2u);
    EXPECT_EQ(corio::describe(g.exceptions()[0]), "first");
    EXPECT_EQ(corio::describe(g.exceptions()[1]), "second");
    EXPECT_NE(std::string(g.what()).find("[#1] first; [#0] second"), std::string::npos) << g.what();
  }
}

TEST(RoundRobin, RunOnceRecordsFailuresWithoutThrowing) {
  corio::round_robin s;
  s.add([]() -> corio::coroutine<void> {
    throw std::runtime_error("x");
    co_return;
  }());
  EXPECT_TRUE(s.run_once());
  EXPECT_FALSE(s.run_once());
  ASSERT_EQ(s.failures().size(), 1u);
  EXPECT_EQ(s.failures()[0].name, "#0");
}

TEST(RoundRobin, DestroyingWithQueuedCoroutinesReleasesThem) {
  corio::testing::lifetime_check check;
  {
    corio::round_robin s;
    s.add([](corio::testing::counted) -> corio::coroutine<void> { co_yield corio::none; }(corio::testing::counted{1}));
    EXPECT_TRUE(s.run_once());
    EXPECT_EQ(s.size(), 1u);
  }
  EXPECT_EQ(check.alive(), 0);
}

TEST(RoundRobin, ManyCoroutines) {
  corio::round_robin s;
  int total = 0;
  for (int i = 0; i < 10'000; ++i)
    s.add([](int* t, int n) -> corio::coroutine<void> {
      for (int k = 0; k < n; ++k) {
        ++*t;
        co_yield corio::none;
      }
    }(&total, i % 5));
  s.run();
  EXPECT_EQ(total, 2000 * (0 + 1 + 2 + 3 + 4));
}

} // namespace
