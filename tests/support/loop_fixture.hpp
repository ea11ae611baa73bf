// A test fixture that runs each test on a mock-clock loop, once with the ready queue in order and then
// shuffled with fixed seeds: no test may depend on the order in which tasks that are ready at the same
// time happen to run. Frames are freed for real (not recycled) so ASan sees any use of a destroyed frame,
// and leak_check verifies nothing is left.
#pragma once

#include <corio/detail/frame_pool.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/testing/mock_clock.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "leak_check.hpp"

namespace corio::testing {

class ordered_and_shuffled : public ::testing::TestWithParam<std::uint64_t> {
protected:
  template <class F> void run(F body) {
    mock_clock clock;
    corio::run(body(), {.clock = &clock, .shuffle = GetParam() != 0, .seed = GetParam()});
  }
  bool recycling_ = detail::set_frame_recycling(false);
  leak_check leaks_;
  ~ordered_and_shuffled() override { detail::set_frame_recycling(recycling_); }
};

/// Seed 0 (in order), then three shuffled orders.
inline auto ready_orders() { return ::testing::Values(0u, 1u, 7u, 2024u); }

/// Runs `body` on a loop that is then destroyed without cancelling the tasks still alive: their frames
/// are destroyed where they wait (loop teardown), so their waiters must unlink themselves.
template <class F> void run_then_abandon(F body) {
  mock_clock clock;
  event_loop loop({.clock = &clock});
  run_until_complete(loop, body());
}

/// Awaits a task that may have been cancelled; true if it was.
template <class T> task<bool> was_cancelled(join_handle<T> h) {
  try {
    co_await h;
  } catch (const cancelled_error&) {
  }
  co_return h.cancelled();
}

inline void expect_no_other_task() { EXPECT_EQ(event_loop::current()->task_count(), 1u); }

} // namespace corio::testing

namespace corio::testing {

/// Runs body(&clock) on a mock-clock loop (shuffled when seed != 0) and returns its result.
template <class F> auto run_mock(F body, std::uint64_t seed = 0) {
  mock_clock clock;
  return corio::run(body(&clock), {.clock = &clock, .shuffle = seed != 0, .seed = seed});
}

/// Returns v after d of loop time.
inline task<int> after(duration d, int v) {
  co_await sleep(d);
  co_return v;
}

/// Raises std::runtime_error(what) after d of loop time.
inline task<int> fail_after(duration d, std::string what) {
  co_await sleep(d);
  throw std::runtime_error(what);
}

} // namespace corio::testing
