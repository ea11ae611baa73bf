#include "corio/errors.hpp"

#include <typeinfo>

namespace corio {

const char* stop_iteration::what() const noexcept { return "stop_iteration: the generator is exhausted"; }

already_executing_error::already_executing_error() : coroutine_error("coroutine already executing") {}

just_started_error::just_started_error()
    : coroutine_error("can't send a value to a just-started coroutine: start it with next()") {}

ignored_exit_error::ignored_exit_error()
    : coroutine_error("coroutine ignored generator_exit: it yielded after close()") {}

namespace detail {
void throw_already_executing() { throw already_executing_error(); }
} // namespace detail

exception_group::exception_group(std::string message, std::vector<std::exception_ptr> exceptions)
    : exceptions_(std::move(exceptions)), what_(std::move(message)) {}

std::string describe(const std::exception_ptr& e) {
  if (!e)
    return "no exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (const generator_exit&) {
    return "generator_exit";
  } catch (...) {
    return "unknown exception (not derived from std::exception)";
  }
}

} // namespace corio

namespace corio {
namespace {
constexpr std::string_view cancelled_prefix = "cancelled_error: ";
}

cancelled_error::cancelled_error(std::string message)
    : what_(std::make_shared<const std::string>(std::string(cancelled_prefix) + message)) {}

const char* cancelled_error::what() const noexcept {
  return what_ ? what_->c_str() : "cancelled_error: the task was cancelled";
}

std::string_view cancelled_error::message() const noexcept {
  return what_ ? std::string_view(*what_).substr(cancelled_prefix.size()) : std::string_view();
}
const char* timeout_error::what() const noexcept { return "timeout_error: the timeout expired"; }

bool is_cancellation(const std::exception_ptr& e) noexcept {
  if (!e)
    return false;
  try {
    std::rethrow_exception(e);
  } catch (const cancelled_error&) {
    return true;
  } catch (...) {
    return false;
  }
}
} // namespace corio
