// corio::round_robin: the article's deque scheduler.
#pragma once

#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "corio/errors.hpp"

namespace corio {

/// Runs coroutines and generators by turns, like the article's `scheduler()`: pop the first one,
/// resume it once, put it back at the end unless it finished.
///
/// Error policy: a coroutine that throws is removed and recorded in failures(); the others keep running.
/// run() throws corio::exception_group (one entry per failure, in the order they failed, with each
/// coroutine's name in the message) once every coroutine has finished. Nothing is swallowed.
class round_robin {
public:
  struct failure {
    std::string name;
    std::exception_ptr error;
  };

  round_robin() = default;
  round_robin(round_robin&&) noexcept = default;
  round_robin& operator=(round_robin&&) noexcept = default;
  ~round_robin();

  /// Queues a coroutine<Y, S, R> (S default-constructible or void) or a generator<T>, taking ownership.
  /// `name` identifies it in failure reports ("#<n>" by default, n counting from 0).
  template <class Coroutine> void add(Coroutine coroutine, std::string name = {}) {
    push(std::make_unique<holder<Coroutine>>(std::move(coroutine)), std::move(name));
  }

  /// Resumes the first queued coroutine once. Returns false if the queue was empty.
  bool run_once();
  /// Runs until the queue is empty and returns the number of resumptions; throws exception_group if any
  /// coroutine failed (the failures are cleared).
  std::size_t run();

  [[nodiscard]] std::size_t size() const noexcept { return queue_.size(); }
  [[nodiscard]] bool empty() const noexcept { return queue_.empty(); }
  [[nodiscard]] const std::vector<failure>& failures() const noexcept { return failures_; }

private:
  struct runnable {
    virtual ~runnable() = default;
    virtual bool resume() = 0; // false once finished
  };
  template <class C> struct holder final : runnable {
    explicit holder(C c) : coroutine(std::move(c)) {}
    bool resume() override {
      if constexpr (requires { coroutine.begin(); })
        return coroutine.next().has_value(); // a generator: the value is dropped, as in the article
      else
        return coroutine.next().is_yield();
    }
    C coroutine;
  };
  struct entry {
    std::unique_ptr<runnable> coroutine;
    std::string name;
  };

  void push(std::unique_ptr<runnable> r, std::string name);

  std::deque<entry> queue_;
  std::vector<failure> failures_;
  std::size_t added_ = 0;
};

} // namespace corio
