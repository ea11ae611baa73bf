// corio::step<Y, R>: the result of one resumption.
#include <corio/step.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

using step = corio::step<std::string, int>;

TEST(Step, DefaultIsExhausted) {
  step s;
  EXPECT_EQ(s.what(), step::kind::exhausted);
  EXPECT_TRUE(s.done());
  EXPECT_FALSE(s.is_yield());
  EXPECT_FALSE(s.is_return());
  EXPECT_FALSE(s);
  EXPECT_THROW((void)s.value(), corio::bad_step_access);
  EXPECT_THROW((void)s.return_value(), corio::bad_step_access);
}

TEST(Step, Yielded) {
  auto s = step::yielded("v");
  EXPECT_TRUE(s);
  EXPECT_TRUE(s.is_yield());
  EXPECT_FALSE(s.done());
  EXPECT_EQ(s.value(), "v");
  EXPECT_THROW((void)s.return_value(), corio::bad_step_access);
  std::string moved = std::move(s).value();
  EXPECT_EQ(moved, "v");
}

TEST(Step, Returned) {
  const auto s = step::returned(3);
  EXPECT_TRUE(s.is_return());
  EXPECT_TRUE(s.done());
  EXPECT_EQ(s.return_value(), 3);
  EXPECT_THROW((void)s.value(), corio::bad_step_access);
}

TEST(Step, SameYieldAndReturnTypesStayDistinct) {
  using same = corio::step<int, int>;
  EXPECT_TRUE(same::yielded(1).is_yield());
  EXPECT_TRUE(same::returned(1).is_return());
}

TEST(Step, VoidTypesAreNone) {
  auto s = corio::step<void>::returned(corio::none);
  EXPECT_EQ(s.return_value(), corio::none);
  static_assert(std::is_same_v<corio::step<void, void>::yield_type, corio::none_t>);
}

} // namespace
