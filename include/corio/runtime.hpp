// corio::runtime and corio::run_parallel: n event loops, one per thread, and messages between them.
#pragma once

#include <cstddef>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "corio/detail/remote_call.hpp"
#include "corio/detail/unique_function.hpp"
#include "corio/event_loop.hpp"
#include "corio/spawn.hpp"
#include "corio/task.hpp"

namespace corio {

class runtime;

/// What each copy of a runtime's main function is given: which loop it runs on, and the runtime.
struct runtime_context {
  std::size_t index;
  runtime& rt;
};

namespace detail {
struct parallel_run;
}

/// n event loops, each on a thread of its own: loop 0 on the thread that calls run(), loops 1..n-1 on
/// threads the runtime starts (with every asynchronous signal blocked, as thread_pool's are, so that a
/// process-directed signal goes to the caller's thread), optionally pinned to CPUs. The typical use is a
/// server per core, each listening on the same port with SO_REUSEPORT:
///
///     corio::run_parallel(2, [](std::size_t i) -> corio::task<> { co_await serve(i); });
///
/// Loops talk through post() (call_soon_threadsafe), run_on() (await a result computed on another
/// loop) and corio::channel. Objects of one loop (tasks, sockets, sync primitives, join_handles) belong
/// to its thread: hand them over through those, never touch them from another loop.
/// The destructor cancels every task still alive on every loop, lets them finish, then closes the loops
/// and joins the threads (in two phases, so that no loop is destroyed while another may still post to
/// it). In phase one a loop whose own tasks are gone keeps running what the others post to it (a cleanup's
/// run_on or spawn_on; tasks started then are not cancelled and must end by themselves) until every loop
/// is idle at once; meanwhile it still runs its timer callbacks as they fall due and its I/O (a stream
/// closed without wait_closed() keeps flushing). Phase one waits for neither: timer callbacks still
/// scheduled when it ends (a call_later of an hour) are dropped, as asyncio's close() drops them — never
/// run, their captures destroyed on their loop's thread when the loop is destroyed, after phase one (those
/// destructors must not post to other loops) — and a stream still flushing is closed when its last
/// handle goes. Destroy the runtime on the thread that created it, and only after other threads stopped
/// posting.
class runtime {
public:
  struct options {
    std::size_t threads = 0;      // loops (and threads); 0: std::thread::hardware_concurrency()
    bool pin = false;             // pin loop i's thread to a CPU (loop 0: while run() runs)
    std::vector<unsigned> cpus{}; // with pin: the CPU of each loop; empty: loop i on CPU i
  };

  /// Starts the loops' threads (their loops exist when the constructor returns). std::invalid_argument
  /// when pinning asks for a CPU that does not exist or that this process may not use (the message lists
  /// the ones it may), or when cpus has fewer entries than threads.
  explicit runtime(options opts);
  runtime() : runtime(options{}) {}
  /// Cancels the tasks left on every loop and lets them finish, then closes the loops and joins the threads.
  ~runtime();

  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// The number of loops.
  [[nodiscard]] std::size_t size() const noexcept { return loops_.size(); }
  /// Loop i (0 <= i < size(); std::out_of_range otherwise). Use it from its own thread only, except for
  /// call_soon_threadsafe.
  [[nodiscard]] event_loop& loop(std::size_t i) const;
  /// The index of the runtime's loop running on this thread, or nullopt.
  [[nodiscard]] std::optional<std::size_t> current_index() const noexcept;

  /// Any thread: runs fn on loop i as a callback (call_soon_threadsafe). Loop 0's callbacks run while
  /// run() runs (or at destruction's shutdown).
  void post(std::size_t i, detail::unique_function fn) { loop(i).call_soon_threadsafe(std::move(fn)); }
  /// Any thread: spawns make() — a callable returning task<T>, called on loop i's thread, so that the
  /// frame is made where it runs — as a task of its own on loop i (fire and forget: its exception is
  /// reported as never retrieved). make is kept alive until that task ends, so it may be a lambda
  /// coroutine with captures.
  template <class F> void spawn_on(std::size_t i, F make) {
    event_loop& l = loop(i);
    post(i, [&l, make = std::move(make)]() mutable { (void)detail::spawn_lazy(l, hold_and_await(std::move(make))); });
  }
  /// In a task on any loop: `T r = co_await rt.run_on(i, fn)` calls fn() on loop i — as a task of its own
  /// there, awaited if fn returns a task<T> — and resumes the caller on its own loop with the result, or
  /// rethrows fn's exception there. fn is moved to loop i and destroyed there. Cancelling the caller
  /// resumes it at once with cancelled_error and cancels the task on loop i.
  template <class F> [[nodiscard]] auto run_on(std::size_t i, F fn) {
    return detail::remote_awaiter<detail::remote_result_t<F>, F>(&loop(i), std::move(fn));
  }

  /// Runs main on every loop — main(runtime_context) or main(std::size_t index), returning task<> —
  /// and returns when every copy finished. Each copy's frame is made on its own loop's thread, from a copy
  /// of main kept alive until its task ends. The first exception of a copy cancels the others (as a
  /// task_group does) and is rethrown here, after all have finished. Ctrl-C (SIGINT, as corio::run
  /// handles it: main thread, default disposition) and stop() cancel every copy; then run() returns
  /// normally, except that after Ctrl-C it throws keyboard_interrupt if a copy ended cancelled. Other
  /// tasks are left as they are (the destructor cancels them). loop_error if run() is already running.
  template <class F> void run(F main) {
    std::vector<std::optional<F>> copies(size());
    // A default capture: clang warns about an explicit `this` that only a discarded branch uses.
    run_mains([&](std::size_t i) -> task<> {
      F& f = copies[i].emplace(main);
      if constexpr (std::is_invocable_v<F&, runtime_context>)
        return f(runtime_context{i, *this});
      else
        return f(i);
    });
  }
  /// Any thread: cancels every copy of the running run()'s main (once; a no-op when none runs).
  void stop();

private:
  /// Keeps make alive in this frame while the task it made runs: a lambda coroutine's captures live in the
  /// lambda object, not in its frame.
  template <class F> static std::invoke_result_t<F&> hold_and_await(F make) { co_return co_await make(); }
  void run_mains(std::function<task<>(std::size_t)> make);
  void start_main(const std::shared_ptr<detail::parallel_run>& st, std::size_t i);
  void finish_main(const std::shared_ptr<detail::parallel_run>& st, std::exception_ptr e);
  void cancel_all(const std::shared_ptr<detail::parallel_run>& st);
  static task<> main_wrapper(runtime* rt, std::shared_ptr<detail::parallel_run> st, std::size_t i, task<> t);

  struct worker;
  struct teardown_state;
  void worker_main(std::size_t i, worker& w, std::latch& started);
  void shutdown() noexcept;
  void finish_phase_one(event_loop& loop, std::size_t i) noexcept;
  [[nodiscard]] bool queued_anywhere() const noexcept;
  void end_phase_one(const event_loop& self) noexcept;

  options opts_;
  std::vector<event_loop*> loops_;
  std::unique_ptr<event_loop> loop0_;
  std::vector<std::unique_ptr<worker>> workers_;
  std::unique_ptr<teardown_state> teardown_; // when phase one (tasks shut down) is over on every loop
  std::mutex run_mutex_;
  std::shared_ptr<detail::parallel_run> current_run_; // guarded by run_mutex_
};

/// Makes a runtime of n loops (options.threads is set to n) and runs main on each: runtime::run().
template <class F> void run_parallel(std::size_t n, F main, runtime::options opts = {}) {
  opts.threads = n;
  runtime rt(std::move(opts));
  rt.run(std::move(main));
}

} // namespace corio
