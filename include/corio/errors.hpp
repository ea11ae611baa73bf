// Exceptions raised by corio's coroutine types, named after their Python counterparts.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace corio {

/// Thrown into a coroutine at its suspension point by `close()` (Python's GeneratorExit).
/// Deliberately not derived from std::exception, so `catch (const std::exception&)` in a coroutine
/// body does not swallow a close — just as `except Exception` does not catch GeneratorExit.
struct generator_exit {};

/// Raised by `corio::next(gen)` when the generator is exhausted (Python's StopIteration).
class stop_iteration : public std::exception {
public:
  [[nodiscard]] const char* what() const noexcept override;
};

/// Base of every error that reports misuse of a coroutine object (Python's ValueError/TypeError/RuntimeError
/// raised by generator methods).
class coroutine_error : public std::logic_error {
public:
  using std::logic_error::logic_error;
};

/// A coroutine was resumed (next/send/throw_/close, or delegated to) while it is running.
class already_executing_error : public coroutine_error {
public:
  already_executing_error();
};

/// A value was sent to a coroutine that has not reached its first `co_yield` yet.
class just_started_error : public coroutine_error {
public:
  just_started_error();
};

/// The coroutine answered `close()` by yielding a value instead of finishing.
class ignored_exit_error : public coroutine_error {
public:
  ignored_exit_error();
};

/// `step::value()` on a step that did not yield, or `step::return_value()` on one that did not return.
class bad_step_access : public coroutine_error {
public:
  using coroutine_error::coroutine_error;
};

/// Several independent failures reported together (Python's ExceptionGroup).
class exception_group : public std::exception {
public:
  exception_group(std::string message, std::vector<std::exception_ptr> exceptions);

  [[nodiscard]] const char* what() const noexcept override { return what_.c_str(); }
  [[nodiscard]] const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }
  [[nodiscard]] std::size_t size() const noexcept { return exceptions_.size(); }

private:
  std::vector<std::exception_ptr> exceptions_;
  std::string what_;
};

/// A one-line description of an exception: its what() for std::exception, a fixed text otherwise.
[[nodiscard]] std::string describe(const std::exception_ptr& e);

} // namespace corio

namespace corio {

/// Raised at a task's await point when the task is cancelled (asyncio.CancelledError). Cancellation is
/// level-triggered: until the task calls corio::uncancel(), every further await point raises it again,
/// so a task cannot swallow a cancellation by accident.
class cancelled_error : public std::exception {
public:
  cancelled_error() noexcept = default;
  /// With the message given to cancel(msg) (asyncio's Task.cancel(msg) -> CancelledError(msg)).
  explicit cancelled_error(std::string message);
  [[nodiscard]] const char* what() const noexcept override;
  /// The message of cancel(msg); empty when the cancel had none. Valid as long as this exception.
  [[nodiscard]] std::string_view message() const noexcept;

private:
  std::shared_ptr<const std::string> what_; // "cancelled_error: " + the message; null without one
};

/// Raised at a task's await point when a timeout(d) scope or wait_for() expired (asyncio.TimeoutError).
/// A kind of cancellation: `catch (const cancelled_error&)` also catches it.
class timeout_error : public cancelled_error {
public:
  [[nodiscard]] const char* what() const noexcept override;
};

/// True if `e` holds a cancelled_error (or timeout_error).
[[nodiscard]] bool is_cancellation(const std::exception_ptr& e) noexcept;

/// The operation does not fit the object's state: a future's result taken twice, set twice, asked for
/// before it is done (asyncio.InvalidStateError).
class invalid_state_error : public std::logic_error {
public:
  using std::logic_error::logic_error;
};

/// Misuse of an event loop: running a loop inside a running loop, running a closed loop, closing a
/// running one, a loop operation outside a loop.
class loop_error : public std::logic_error {
public:
  using std::logic_error::logic_error;
};

} // namespace corio
