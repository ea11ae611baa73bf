// corio::run and run_until_complete: run a task on an event loop (asyncio.run).
#pragma once

#include <type_traits>
#include <utility>

#include "corio/event_loop.hpp"
#include "corio/runner.hpp"
#include "corio/signals.hpp"
#include "corio/spawn.hpp"
#include "corio/task.hpp"

namespace corio {

/// Spawns `t` on `loop`, runs the loop until it finishes, and returns its result or rethrows its
/// exception. Other tasks stay as they are. loop_error if the loop was stopped before `t` finished (`t`
/// then goes on the next time the loop runs).
template <class T> T run_until_complete(event_loop& loop, task<T> t) {
  join_handle<T> h = spawn(loop, std::move(t));
  if (!detail::run_until_done(loop, h))
    throw loop_error("corio: run_until_complete(): the loop stopped before the task finished");
  return h.result();
}

/// asyncio.run(): creates a loop, runs `main` to completion, cancels the tasks still alive and runs
/// them until they finish, closes the loop (which shuts its default thread pool down), and returns
/// main's result (or rethrows its exception). A runner used once: `runner r(options); auto x =
/// r.run(main); r.close(); return x;` (asyncio.run is `with Runner() as r: return r.run(main)`).
///
/// Ctrl-C, as asyncio.run: while `main` runs, the first SIGINT cancels it (cancelled_error at its await
/// point); a second one gets the default action (the process ends). If `main` then ends cancelled,
/// run() throws corio::keyboard_interrupt (a cancelled_error); if it caught the cancellation and
/// returned, run() returns its result. Installed only on the main thread, with SIGINT at its default
/// disposition, and without a virtual clock; it works whichever thread the kernel delivers SIGINT to
/// (threads started before run() need not block it); see detail::sigint_guard.
template <class T> T run(task<T> main, event_loop::options options = {}) {
  runner r(options);
  if constexpr (std::is_void_v<T>) {
    r.run(std::move(main));
    r.close(); // its exceptions propagate; when main failed, ~runner closes and reports them instead
  } else {
    T result = r.run(std::move(main));
    r.close();
    return result;
  }
}

} // namespace corio
