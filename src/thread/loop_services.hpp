// What the toolkit keeps per event loop, created on first use and destroyed when the loop closes (internal).
#pragma once

#include <memory>
#include <vector>

#include "corio/event_loop.hpp"
#include "corio/thread_pool.hpp"

namespace corio::detail {

/// The loop's default thread pool (to_thread), and the ones set_default_thread_pool() replaced: all are
/// shut down (joined) when the loop closes, also one the caller still holds (asyncio's loop.close shuts
/// its default executor down).
struct default_pools {
  std::shared_ptr<thread_pool> current;
  std::vector<std::shared_ptr<thread_pool>> retired; // kept alive: work may still run on them
  default_pools() = default;
  default_pools(const default_pools&) = delete;
  default_pools& operator=(const default_pools&) = delete;
  ~default_pools();
};

struct loop_services {
  // Destroyed in reverse order: the child watcher first (children still running go to a background
  // reaper), then the signal handlers (masks restored), then the pools are shut down (joined).
  default_pools pools;
  std::shared_ptr<void> signals;    // a signal_set (src/thread/signals.cpp), type-erased
  std::shared_ptr<void> children;   // a child_watcher (src/process/child_watcher.cpp), type-erased
  std::shared_ptr<void> fd_watches; // add_reader / add_writer's (src/thread/fd_watch.cpp), type-erased
  ~loop_services();
};

/// The services of `loop`, created (with an on_close hook that destroys them) on first use; loop_error if
/// the loop is closed. Call on the loop's thread; the lookup itself is thread-safe.
loop_services& services_of(event_loop& loop);
/// The services of `loop`, or null if none were created.
loop_services* find_services(event_loop& loop) noexcept;

/// A SIGCHLD was taken from the process's pending signals by `by`'s signalfd, or discarded when a
/// SIGCHLD handler was removed (by null). SIGCHLD is process-directed, so it may stand for a child that
/// another loop watches without a pidfd: those loops are told to poll their children (defined in
/// src/process/child_watcher.cpp). Any thread.
void sigchld_taken(const event_loop* by) noexcept;

/// loop_error "corio: <what> must be called on the loop's thread<why>" when `loop` runs on another thread
/// (a loop not running may be set up from any thread).
void check_loop_thread(event_loop& loop, const char* what, const char* why = "");

} // namespace corio::detail
