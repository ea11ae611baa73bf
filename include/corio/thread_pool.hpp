// corio::thread_pool: threads that run blocking calls for the loop (concurrent.futures.ThreadPoolExecutor).
#pragma once

#include <cstddef>
#include <memory>

#include "corio/detail/unique_function.hpp"

namespace corio {

namespace detail {
/// A unit of work queued in a thread_pool (intrusive, so to_thread's operation is its own job and costs
/// no allocation to queue). run() is called exactly once, on a pool thread, and owns the job from then on.
class pool_job {
public:
  virtual void run() noexcept = 0;
  pool_job* next_job = nullptr;

protected:
  pool_job() = default;
  ~pool_job() = default;
};
} // namespace detail

/// A pool of threads for blocking calls. Threads are started lazily — a new one only when work is
/// submitted and no started thread is idle, up to max_threads — and block every asynchronous signal,
/// so a process-directed signal (Ctrl-C) goes to the loop thread's handler, never to a pool thread.
/// shutdown() (and the destructor) stops accepting work, lets the threads finish what was queued, and
/// joins them. The pool runs plain callables only: corio coroutines (task frames) must not be created
/// or destroyed on its threads. Thread-safe: submit() from any thread.
///
///     corio::thread_pool pool({.max_threads = 4});
///     std::string text = co_await corio::run_in_executor(pool, [] { return slow_call(); });
class thread_pool {
public:
  struct options {
    unsigned max_threads = 0; // 0: min(32, hardware threads + 4), asyncio's default
  };

  thread_pool();
  explicit thread_pool(options opts);
  /// shutdown(); must not run on one of the pool's own threads.
  ~thread_pool();
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  /// Runs fn on a pool thread (fire and forget: an exception escaping it is reported on stderr).
  /// invalid_state_error after shutdown(). When the system refuses a new thread (EAGAIN: RLIMIT_NPROC,
  /// a cgroup's pids limit), fn waits for one of the threads already started; if there is none,
  /// std::system_error "corio: thread_pool: cannot start a worker thread: ..." and fn is not run.
  void submit(detail::unique_function fn);
  /// Queues a job (to_thread's operations). invalid_state_error after shutdown(), std::system_error when no
  /// thread exists and none can start (as submit(fn)); the job is then not queued and not run.
  void submit(detail::pool_job* job);

  /// Stops accepting work, runs everything already queued, and joins the threads (waiting for running
  /// work to finish). Idempotent, and every caller waits: one made while another thread's shutdown() is in
  /// progress returns once the threads are joined (as concurrent.futures' shutdown(wait=True) does).
  /// invalid_state_error when called from one of the pool's threads.
  void shutdown();

  [[nodiscard]] unsigned max_threads() const noexcept;
  /// Threads started so far (they are started on demand and kept until shutdown).
  [[nodiscard]] std::size_t thread_count() const;
  [[nodiscard]] bool is_shutdown() const;
  /// min(32, std::thread::hardware_concurrency() + 4).
  [[nodiscard]] static unsigned default_max_threads() noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace corio
