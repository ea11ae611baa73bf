// corio::run and run_until_complete: run a task on an event loop (asyncio.run).
#pragma once

#include <utility>

#include "corio/event_loop.hpp"
#include "corio/spawn.hpp"
#include "corio/task.hpp"

namespace corio {

/// Spawns `t` on `loop`, runs the loop until it finishes, and returns its result or rethrows its
/// exception. Other tasks stay as they are. loop_error if the loop was stopped before `t` finished.
template <class T> T run_until_complete(event_loop& loop, task<T> t) {
  join_handle<T> h = spawn(loop, std::move(t));
  h.add_done_callback([&loop] { loop.stop(); });
  loop.run_forever();
  if (!h.done())
    throw loop_error("corio: run_until_complete(): the loop stopped before the task finished");
  return h.result();
}

/// asyncio.run(): creates a loop, runs `main` to completion, cancels the tasks still alive and runs
/// them until they finish, closes the loop, and returns main's result (or rethrows its exception).
template <class T> T run(task<T> main, event_loop::options options = {}) {
  event_loop loop(options);
  join_handle<T> h = spawn(loop, std::move(main), "main");
  h.add_done_callback([&loop] { loop.stop(); });
  loop.run_forever();
  const bool finished = h.done();
  loop.shutdown_tasks();
  loop.close();
  if (!finished)
    throw loop_error("corio: run(): the loop stopped before the main task finished");
  return h.result();
}

} // namespace corio
