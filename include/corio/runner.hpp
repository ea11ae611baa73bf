// corio::runner: one event loop for several run() calls, closed at the end (asyncio.Runner).
#pragma once

#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <utility>

#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/signals.hpp"
#include "corio/spawn.hpp"
#include "corio/task.hpp"

namespace corio {

namespace detail {
/// Runs `loop` until the task of `h` is done (then true) or the loop is stopped otherwise (false: the
/// task goes on the next time the loop runs). The stop callback acts during this call only: neither a
/// task that goes on after an early stop, nor a callback that was scheduled but had not run when
/// something else stopped the loop, stops a later run. (asyncio's run_until_complete has the second hole.)
template <class T> bool run_until_done(event_loop& loop, join_handle<T>& h) {
  auto running = std::make_shared<bool>(true);
  const std::uint64_t stopper = h.add_done_callback([&loop, running] {
    if (*running)
      loop.stop();
  });
  struct end_of_run {
    bool& running;
    ~end_of_run() { running = false; }
  } on_exit{*running};
  loop.run_forever();
  if (h.done())
    return true;
  h.remove_done_callback(stopper); // the task goes on; let go of the callback now
  return false;
}
} // namespace detail

/// asyncio.Runner: runs tasks one after another on one event loop, which it creates on first use (run()
/// or get_loop()) and keeps between run() calls, so that tasks a run() started and left alive go on in
/// the next one; close() (or the destructor) cancels those, runs them until they finish and closes the
/// loop. corio::run(main, options) is `runner r(options); auto x = r.run(main); r.close(); return x;`.
/// Use it on one thread; not copyable, not movable.
class runner {
public:
  /// The loop will be made with `options` (a mock clock, debug mode, the backend...).
  explicit runner(event_loop::options options = {}) noexcept : options_(options) {}
  /// close(). Never throws: an error of close() is printed on stderr (event_loop::default_exception_handler).
  /// Destroyed by a task of its own running loop (the last owner let go inside run()): run() returns (or
  /// raises) as usual and then closes the loop as close() would.
  ~runner() {
    if (loop_ != nullptr && event_loop::current() == loop_.get()) {
      // Destroyed by a task of its own loop, which is running: the loop cannot go now. A run() under way
      // takes it and closes it once the loop stops (as close() would); otherwise (the caller runs the
      // loop itself) it is left alive, with a message, rather than destroyed under its own feet.
      closed_ = true;
      if (running_ != nullptr) {
        running_->orphan = std::move(loop_);
        return;
      }
      std::fputs("corio: runner destroyed by a task of its own loop outside run(): its loop is left open\n", stderr);
      (void)loop_.release();
      return;
    }
    try {
      close();
    } catch (...) {
      try {
        event_loop::default_exception_handler(
            exception_context{"exception in runner::close() (from ~runner)", std::current_exception(), {}});
      } catch (...) {
        std::fputs("corio: runner::close() failed in ~runner\n", stderr);
      }
    }
  }

  runner(const runner&) = delete;
  runner& operator=(const runner&) = delete;

  /// The runner's loop, created now if it does not exist yet (asyncio's Runner.get_loop). loop_error after
  /// close().
  event_loop& get_loop() {
    if (closed_)
      throw loop_error("corio: the runner is closed");
    if (loop_ == nullptr)
      loop_ = std::make_unique<event_loop>(options_);
    return *loop_;
  }

  /// Spawns `main` on the loop (task name "main"), runs the loop until it finishes, and returns its result
  /// or rethrows its exception (asyncio's Runner.run). Other tasks stay as they are: those still alive go
  /// on in the next run() or are cancelled by close().
  ///
  /// Ctrl-C as corio::run(): while `main` runs, the first SIGINT cancels it and a second one gets the
  /// default action; if `main` then ends cancelled, run() throws keyboard_interrupt (see
  /// detail::sigint_guard for where the handler is installed).
  ///
  /// Throws loop_error if an event loop is running on this thread (a task cannot run() a runner), after
  /// close(), or if the loop was stopped (loop.stop()) before `main` finished — then `main` stays alive,
  /// and goes on in the next run(). invalid_state_error for an empty task (moved from). In those cases
  /// nothing was spawned (except for the stopped loop) and the runner stays usable.
  template <class T> T run(task<T> main) {
    if (closed_)
      throw loop_error("corio: run() on a closed runner");
    if (event_loop::current() != nullptr)
      throw loop_error("corio: run() cannot be called from a running event loop");
    if (!main.valid())
      throw invalid_state_error("corio: run() of an empty task (moved from or already spawned)");
    event_loop& loop = get_loop();
    run_frame frame; // before h: a loop closed at the end outlives the handle
    running_ = &frame;
    struct end_of_run {
      run_frame& frame;
      runner* self;
      ~end_of_run() {
        if (frame.orphan == nullptr)
          self->running_ = nullptr;
        else
          close_orphan(std::move(frame.orphan)); // the runner is gone: do not touch it
      }
    } on_exit{frame, this};
    join_handle<T> h;
    bool interrupted = false;
    {
      // Before the spawn: if installing it fails, no task is left behind.
      detail::sigint_guard sigint(loop, [&h, &interrupted] {
        interrupted = true;
        h.cancel();
      });
      h = spawn(loop, std::move(main), "main");
      if (!detail::run_until_done(loop, h))
        throw loop_error("corio: run(): the loop stopped before the main task finished");
    }
    if (interrupted && h.cancelled()) {
      (void)h.exception(); // retrieved: it becomes keyboard_interrupt
      throw keyboard_interrupt();
    }
    return h.result();
  }

  /// Cancels the tasks still alive and runs the loop until they have finished (loop.shutdown_tasks()),
  /// then closes the loop, which joins its default thread pool (asyncio's Runner.close). Idempotent; a
  /// runner that never made its loop closes without making one. The runner is closed even if this throws
  /// (the loop is then destroyed, abandoning what was left). loop_error, and nothing done, if an event
  /// loop is running on this thread and the runner has a loop.
  void close() {
    if (closed_)
      return;
    if (loop_ != nullptr && event_loop::current() != nullptr)
      throw loop_error("corio: runner::close() cannot be called from a running event loop");
    closed_ = true;
    std::unique_ptr<event_loop> loop = std::move(loop_); // destroyed on the way out, also if this throws
    if (loop == nullptr)
      return;
    loop->shutdown_tasks();
    loop->close();
  }

  /// True once close() has run, also if it threw while shutting the loop down.
  [[nodiscard]] bool is_closed() const noexcept { return closed_; }

private:
  /// What a run() in progress shares with the runner: the loop, if the runner was destroyed meanwhile
  /// (by a task of that loop).
  struct run_frame {
    std::unique_ptr<event_loop> orphan;
  };
  /// Closes the loop of a runner destroyed during run(), as close() does; never throws (as ~runner).
  static void close_orphan(std::unique_ptr<event_loop> loop) noexcept {
    try {
      loop->shutdown_tasks();
      loop->close();
    } catch (...) {
      try {
        event_loop::default_exception_handler(exception_context{
            "exception closing the loop of a runner destroyed during run()", std::current_exception(), {}});
      } catch (...) {
        std::fputs("corio: closing the loop of a runner destroyed during run() failed\n", stderr);
      }
    }
  }

  event_loop::options options_;
  run_frame* running_ = nullptr; // set during run()
  std::unique_ptr<event_loop> loop_;
  bool closed_ = false;
};

} // namespace corio
