// corio's exception types: names and messages that say what went wrong.
#include <corio/errors.hpp>

#include <gtest/gtest.h>

#include <string>
#include <type_traits>

namespace {

TEST(Errors, MessagesNameTheProblem) {
  EXPECT_NE(std::string(corio::already_executing_error().what()).find("already executing"), std::string::npos);
  EXPECT_NE(std::string(corio::just_started_error().what()).find("just-started"), std::string::npos);
  EXPECT_NE(std::string(corio::ignored_exit_error().what()).find("ignored generator_exit"), std::string::npos);
  EXPECT_NE(std::string(corio::stop_iteration().what()).find("exhausted"), std::string::npos);
}

TEST(Errors, Hierarchy) {
  static_assert(std::is_base_of_v<corio::coroutine_error, corio::already_executing_error>);
  static_assert(std::is_base_of_v<corio::coroutine_error, corio::just_started_error>);
  static_assert(std::is_base_of_v<corio::coroutine_error, corio::ignored_exit_error>);
  static_assert(std::is_base_of_v<std::logic_error, corio::coroutine_error>);
  static_assert(!std::is_base_of_v<std::exception, corio::generator_exit>);
  static_assert(std::is_base_of_v<std::exception, corio::stop_iteration>);
}

TEST(Errors, ExceptionGroupKeepsEveryException) {
  corio::exception_group g("two failed", {std::make_exception_ptr(std::runtime_error("a")),
                                          std::make_exception_ptr(corio::generator_exit{})});
  EXPECT_STREQ(g.what(), "two failed");
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(corio::describe(g.exceptions()[0]), "a");
  EXPECT_EQ(corio::describe(g.exceptions()[1]), "generator_exit");
  EXPECT_EQ(corio::describe(std::make_exception_ptr(42)), "unknown exception (not derived from std::exception)");
  EXPECT_EQ(corio::describe(nullptr), "no exception");
}

} // namespace
