// corio::event_loop: the article's Event Loop — poll for I/O, run what is due, run what is ready.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "corio/clock.hpp"
#include "corio/detail/io_waiter.hpp"
#include "corio/detail/timer_slot.hpp"
#include "corio/detail/unique_function.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/errors.hpp"

namespace corio {

class event_loop;

namespace detail {
class backend;
struct task_state;
struct timer_node;
struct timer_testing;
struct file_job;
} // namespace detail

/// A scheduled callback (asyncio.Handle / TimerHandle). Copyable; cancel() is safe at any time, also
/// after the callback ran, the loop recycled its slot, or the loop was destroyed (then pending() is
/// false and cancel() does nothing: the callback was dropped with the loop).
class timer_handle {
public:
  timer_handle() noexcept = default;
  /// Cancels the callback if it has not run yet. Returns true if this call cancelled it.
  bool cancel() noexcept;
  /// True while the callback is scheduled and not cancelled.
  [[nodiscard]] bool pending() const noexcept;

private:
  friend event_loop;
  friend detail::timer_testing;
  timer_handle(detail::timer_node* n, std::uint64_t gen) noexcept : node_(n), gen_(gen) {}
  detail::timer_node* node_ = nullptr;
  std::uint64_t gen_ = 0; // the node's generation when scheduled, bit 0 set (src/core/timer_node.hpp)
};

/// An error nobody could catch, as a loop's exception handler sees it (asyncio's context dict).
struct exception_context {
  /// What happened: "exception in callback", "exception in a close callback", "task 'name' (or #id)
  /// exception was never retrieved", "protocol data_received() raised (connection with ...)"... Never
  /// prefixed with "corio: " (the default handler adds it).
  std::string message;
  std::exception_ptr exception;
  /// The task's label ('name' or #id) for a task's exception, else empty.
  std::string task;
};

/// Which I/O backend a loop polls with. `from_env` reads CORIO_BACKEND (epoll, io_uring or auto;
/// unset means auto). `automatic` uses io_uring when the kernel allows it (Linux 5.11+, not blocked by
/// seccomp or io_uring_disabled) and falls back to epoll with one line on stderr. Asking for io_uring
/// where it cannot be had makes the loop's constructor throw loop_error saying why.
enum class backend_kind : unsigned char { from_env, automatic, epoll, io_uring };

/// A single-threaded event loop. Each iteration: poll the backend for I/O (blocking only until the
/// next timer, or not at all if something is ready), move due timers to the ready queue, then run
/// every item that was ready at the start of the iteration (asyncio's order). Equal deadlines fire in
/// the order they were scheduled.
class event_loop {
public:
  struct options {
    clock_source* clock = nullptr; // null: the real monotonic clock
    bool shuffle = false;          // run each batch of ready items in a random order (test builds)
    std::uint64_t seed = 0;        // for shuffle; 0: random, printed to stderr
    bool debug = false;            // asyncio's debug mode: slow-callback and never-awaited warnings
    duration slow_callback = std::chrono::milliseconds(100);
    backend_kind backend = backend_kind::from_env;
    /// spawn(), create_task(), task_group::spawn(), gather() and shield() start tasks eagerly (see
    /// set_eager_tasks()).
    bool eager_tasks = false;
  };

  event_loop();
  explicit event_loop(options opts);
  ~event_loop();
  event_loop(const event_loop&) = delete;
  event_loop& operator=(const event_loop&) = delete;

  /// The loop running on this thread, or null.
  [[nodiscard]] static event_loop* current() noexcept;

  /// Runs fn in the next iteration (call_soon), once `delay` of loop time has passed (call_later), or at
  /// loop time `when` (call_at). Loop thread only. An exception escaping fn goes to the exception handler
  /// (stderr by default) and the loop goes on. A time past the end of loop time (`duration::max()`,
  /// `time_point::max()`) never comes: fn never runs (a mock clock does not jump there); a time long
  /// past (`time_point::min()`) runs fn in the next iteration.
  timer_handle call_soon(detail::unique_function fn);
  timer_handle call_later(duration delay, detail::unique_function fn);
  timer_handle call_at(time_point when, detail::unique_function fn);
  /// Schedules fn from any thread (wakes the loop through the backend). Safe after close(): dropped.
  void call_soon_threadsafe(detail::unique_function fn);

  /// Loop time: the clock's now() (monotonic; virtual with a mock clock).
  [[nodiscard]] time_point time() const noexcept;

  /// Runs until stop(). Throws loop_error if this thread already runs a loop or this one is closed.
  void run_forever();
  /// Makes run_forever() return after the current iteration. Called while the loop is not running, the
  /// next run_forever() runs one iteration (the callbacks ready by then) and returns, as asyncio's does.
  void stop() noexcept;
  [[nodiscard]] bool is_running() const noexcept { return running_; }
  [[nodiscard]] bool is_closed() const noexcept { return closed_; }
  /// Cancels every live task and runs the loop until all of them have finished (what corio::run()
  /// does after the main task). A task spawned meanwhile (by a timer, a call_soon_threadsafe callback
  /// such as run_coroutine_threadsafe's, a cleanup) gets one more loop iteration, then is cancelled in
  /// turn, until no task is left. It returns early only if the loop is stopped (stop()) while tasks it
  /// cancelled are still alive. Throws loop_error if the loop is running. A closed loop has no tasks
  /// (close() refuses while any is alive, spawn() on it throws): nothing to do, it returns.
  void shutdown_tasks();
  /// Closes the loop. Throws loop_error if it is running or tasks are still pending (cancel them and
  /// let them finish first — corio::run() does). Then runs the on_close() callbacks.
  void close();
  /// Runs fn once when the loop closes — in close(), or in the destructor of a loop never closed, after
  /// its tasks are gone — newest first. How services tied to a loop (its default thread pool, its signal
  /// handlers) shut down with it. An exception escaping fn goes to the exception handler.
  void on_close(detail::unique_function fn);

  /// What the loop does with an error nobody can catch (loop.set_exception_handler): an exception escaping
  /// a callback or a close callback, a task's exception never retrieved (its last join_handle dropped while
  /// the loop runs; dropped later, it goes to the default). An empty handler restores the default, which prints
  /// "corio: <message>: <exception>" on stderr. The loop goes on either way. An exception escaping the
  /// handler is printed, with the context, by the default. Loop thread only.
  using exception_handler = std::function<void(event_loop&, const exception_context&)>;
  void set_exception_handler(exception_handler handler) { exception_handler_ = std::move(handler); }
  [[nodiscard]] const exception_handler& get_exception_handler() const noexcept { return exception_handler_; }
  /// Hands c to the handler, or to the default (loop.call_exception_handler).
  void call_exception_handler(const exception_context& c) noexcept;
  /// Prints c on stderr (loop.default_exception_handler).
  static void default_exception_handler(const exception_context& c) noexcept;

  /// Live tasks, timers still scheduled (not cancelled), and fds with a waiter: for leak checks.
  [[nodiscard]] std::size_t task_count() const noexcept { return task_count_; }
  [[nodiscard]] std::size_t timer_count() const noexcept;
  [[nodiscard]] std::size_t io_waiter_count() const noexcept;
  /// The seed of the shuffled ready queue (0 when shuffle is off).
  [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }
  [[nodiscard]] const options& config() const noexcept { return opts_; }
  /// asyncio's loop.set_task_factory(asyncio.eager_task_factory) (on) and set_task_factory(None) (off):
  /// with it on, spawn(), create_task(), task_group::spawn(), gather() and shield() of a task start the
  /// task at once, inside the call, up to its first suspension, as spawn_eager() does, when called on
  /// this loop's running thread. corio's own tasks (a server's handlers, transports, run_on...) start at
  /// the next iteration either way. Loop thread only.
  void set_eager_tasks(bool on) noexcept { opts_.eager_tasks = on; }
  [[nodiscard]] bool eager_tasks() const noexcept { return opts_.eager_tasks; }
  /// The backend this loop polls with: backend_kind::epoll or backend_kind::io_uring.
  [[nodiscard]] backend_kind backend() const noexcept { return backend_kind_; }
  /// "epoll" or "io_uring".
  [[nodiscard]] const char* backend_name() const noexcept;

  /// A number no other loop of this process had: with the loop's address it tells this loop from one
  /// made later at the same address.
  [[nodiscard]] std::uint64_t serial() const noexcept { return serial_; }
  /// True while the loop at `l` whose serial() was `serial` still exists (any thread may ask). For
  /// objects that may outlive the loop they registered with (a stream kept past corio::run()).
  [[nodiscard]] static bool exists(const event_loop* l, std::uint64_t serial) noexcept;

  // ---- used by corio's awaitables ---------------------------------------------------------------
  /// The task whose code is running now (null in a plain callback).
  [[nodiscard]] detail::task_state* current_task() const noexcept { return current_task_; }
  /// Resumes h (as task t) in a later iteration.
  void schedule(std::coroutine_handle<> h, detail::task_state* t);
  /// Takes the first step of spawned task t in a later iteration (t->start(): a task cancelled by then
  /// ends without running its body, as in asyncio).
  void schedule_start(detail::task_state* t);
  /// Resumes h as task t now, inside the caller (spawn_eager), until it suspends or ends; then the task
  /// that was running before is the current one again. Only on the loop's own thread while it runs.
  void run_eagerly(std::coroutine_handle<> h, detail::task_state* t);
  /// Completes a wait: clears it as its task's current wait and schedules its coroutine.
  void wake(detail::wait_node* w);
  /// Registers w as the current, cancellable wait of its task.
  static void begin_wait(detail::wait_node* w) noexcept;
  /// Cancels a task: level-triggered, delivered at its current or next await point.
  bool cancel_task(detail::task_state* t) noexcept;
  /// Resumes a task that is waiting, so that it sees a cancellation raised by a timeout scope.
  void interrupt(detail::task_state* t) noexcept;
  /// Wakes w at `when` (as wake(w) does). w must not be scheduled already.
  void add_timer(time_point when, detail::timed_wait* w);
  /// Withdraws w's timer if it is still scheduled (O(log n)); a no-op once it fired.
  void remove_timer(detail::timed_wait* w) noexcept;
  void cancel_timer(detail::timer_node* n) noexcept;
  /// `kept`: the caller calls forget_fd() before closing fd, so the backend may keep its registration
  /// between waits (see backend::arm).
  void arm(int fd, detail::io_dir d, detail::io_waiter* w, bool kept = false);
  void disarm(int fd, detail::io_dir d) noexcept;
  /// Call before closing an fd the loop may have watched (corio::socket does): wakes the tasks still
  /// waiting on it (they must check for the close themselves) and drops the backend's state, so a new fd
  /// that reuses the number is watched correctly. Without it, a reused number can wait forever.
  void forget_fd(int fd) noexcept;
  /// Completion-based receiving (io_uring): see src/backend/backend.hpp. can_recv() is false on epoll.
  [[nodiscard]] bool can_recv() const noexcept { return can_recv_; }
  void start_recv(int fd, std::size_t max, detail::io_completion* c, bool keep = false);
  void abandon_recv(int fd) noexcept;
  void end_recv(int fd) noexcept;
  /// Whether a kept recv (start_recv's `keep`) stays in flight between reads: io_uring's multishot recv,
  /// used only with CORIO_URING_MULTISHOT_RECV=1 (one-shot recvs measured faster; docs/design.md).
  [[nodiscard]] bool keeps_recv() const noexcept;
  /// Bytes an abandoned recv of fd took: >0 copied, 0 with err 0 at end of file, 0 with err set for an
  /// error, -1 when nothing waits, -2 when its recv is still in flight (wait: start_recv adopts it).
  long take_stashed(int fd, char* p, std::size_t n, int& err) noexcept;
  /// The task waiting on fd's recv was cancelled: the recv is cancelled in the kernel, and its completion
  /// still comes, with the bytes the kernel took first or -ECANCELED (so none is lost). False if it could
  /// not be asked (abandon_recv instead).
  bool cancel_recv(int fd) noexcept;
  /// Whether take_stashed(fd) has something at once: fd then reads without blocking, whatever the
  /// kernel's buffer holds (readable() completes at once). Always false on epoll.
  [[nodiscard]] bool has_stashed(int fd) const noexcept { return can_recv_ && backend_has_stashed(fd); }
  /// Before fd is handed to code that reads it without the loop (socket::release): a recv of fd still
  /// in flight is cancelled and waited for. Returns how many bytes of fd the loop then holds (taken from
  /// the kernel, not yet read: take_stashed hands them out), leaving everything as it is; 0 after
  /// forget_fd(fd).
  [[nodiscard]] std::size_t release_fd(int fd);
  /// Completion-based accept and connect (io_uring): see src/backend/backend.hpp. False on epoll, or
  /// with CORIO_URING_ACCEPT=0.
  [[nodiscard]] bool can_accept() const noexcept { return can_accept_; }
  void start_accept(int fd, detail::net_completion* c, bool keep = false);
  void abandon_accept(int fd) noexcept;
  /// A connection an abandoned or kept accept of fd took: its fd (the caller owns it) and the peer's
  /// address in [addr, addr+len) (len: in, the room; out, the size); -1 if none waits.
  int take_accepted(int fd, void* addr, unsigned& len) noexcept;
  void start_connect(int fd, const void* addr, unsigned len, detail::net_completion* c);
  void abandon_connect(int fd) noexcept;
  /// Whole-file jobs run by the backend (io_uring; src/backend/backend.hpp). False on epoll.
  [[nodiscard]] bool can_file_io() const noexcept { return can_file_io_; }
  void start_file_job(detail::file_job* job);
  void abandon_file_job(detail::file_job* job) noexcept;
  /// A task waits for work outside the loop (a thread pool job) that will come back through
  /// call_soon_threadsafe. While any such wait is pending, a virtual clock does not jump ahead (time
  /// stands still while the thread works, as in tokio's paused time) and an idle loop is not a deadlock.
  void begin_external_wait() noexcept { ++external_waits_; }
  void end_external_wait() noexcept { --external_waits_; }
  void add_task(detail::task_state* t) noexcept;
  void remove_task(detail::task_state* t) noexcept;
  /// Every live task, oldest first (for dump_tasks).
  [[nodiscard]] std::vector<const detail::task_state*> tasks() const;

private:
  struct ready_item {         // 16 bytes: a million of these queue up when a million tasks are spawned at once
    void* target;             // a coroutine frame to resume; a timer_node when task is callback_tag(); the
                              // task_state to start when task is start_tag()
    detail::task_state* task; // the task to resume it as (null: not inside a task), or one of the tags
  };
  struct timer_entry { // 16 bytes: the sequence number and the heap index live in the slot
    time_point when;
    std::uintptr_t slot; // a timer_slot*, bit 0 set when it is a timed_wait's (else a timer_node's)
  };
  class ring;
  class running_scope;
  /// The chunks of timer nodes this loop took from the process-wide pool (src/core/timer_node.hpp). Its
  /// destructor makes every handle on them stale, destroys the captures of callbacks never run, and gives
  /// the chunks back to the pool: a timer_handle may outlive its loop.
  struct node_chunks {
    std::vector<detail::timer_node*> chunks;
    node_chunks() = default;
    node_chunks(const node_chunks&) = delete;
    node_chunks& operator=(const node_chunks&) = delete;
    ~node_chunks();
  };

  // A runtime's teardown (runtime.cpp): a loop done with its own tasks keeps serving what the runtime's
  // other loops post to it until every loop is idle at once.
  friend class runtime;
  /// Runs (cancelling nothing) until idle: no task alive, no callback ready, none queued by
  /// call_soon_threadsafe, no timer due. Timers not yet due are left as they are. Returns at once when
  /// idle already.
  void run_until_idle();
  /// The loop not running: blocks until call_soon_threadsafe queues a callback, I/O delivered to its
  /// waiters readies a callback, or a timer falls due (each then waits for the next run). The loop is
  /// running (event_loop::current()) while it waits: waiters are told of I/O as in run(), so a stream
  /// flushing in the background keeps flushing.
  void wait_for_work();
  /// A timer (other than one at the end of time) is due now.
  [[nodiscard]] bool timer_due() const noexcept;
  /// Any thread: a callback queued by call_soon_threadsafe is not taken yet.
  [[nodiscard]] bool threadsafe_queued() const noexcept;

  void run_once();
  duration poll_timeout();
  void run_due_timers();
  void take_threadsafe();
  void run_ready();
  void run_item(const ready_item& item);
  void push_ready(const ready_item& item);
  detail::timer_node* new_node();
  void add_node_chunk();
  void free_node(detail::timer_node* n) noexcept;
  void push_timer(time_point when, detail::timer_slot* s, bool is_wait);
  void remove_entry(std::uint32_t i) noexcept;
  void sift_up(std::uint32_t i, timer_entry e) noexcept;
  void sift_down(std::uint32_t i, timer_entry e) noexcept;
  void fire(const timer_entry& e);
  void check_open() const;
  [[nodiscard]] bool backend_has_stashed(int fd) const noexcept;
  void run_close_callbacks() noexcept;

  options opts_;
  std::unique_ptr<clock_source> own_clock_;
  clock_source* clock_;
  bool virtual_clock_ = false;
  backend_kind backend_kind_ = backend_kind::epoll; // before backend_: make_backend() sets it
  std::unique_ptr<detail::backend> backend_;
  bool can_recv_ = false;
  bool can_accept_ = false;
  bool can_file_io_ = false;
  std::unique_ptr<ring> ready_;
  std::vector<timer_entry> timers_; // a 4-ary min-heap on (when, seq); each slot knows its index
  std::uint32_t timer_seq_ = 0;
  node_chunks node_chunks_; // a callback's captures are destroyed here if it never ran
  detail::timer_node* free_nodes_ = nullptr;
  std::mutex threadsafe_mutex_;
  std::vector<detail::unique_function> threadsafe_;
  // Set under threadsafe_mutex_; read without it by the loop to skip the lock when nothing is queued.
  std::atomic<bool> threadsafe_pending_{false};
  unsigned busy_iterations_ = 0; // iterations since the last I/O poll, while tasks kept being ready
  detail::task_state* current_task_ = nullptr;
  detail::task_state* tasks_head_ = nullptr;
  detail::task_state* tasks_tail_ = nullptr;
  std::size_t task_count_ = 0;
  std::size_t external_waits_ = 0; // begin_external_wait() minus end_external_wait()
  std::vector<detail::unique_function> close_callbacks_;
  exception_handler exception_handler_;
  std::uint64_t next_task_id_ = 1;
  std::uint64_t serial_ = 0;
  std::uint64_t seed_ = 0;
  std::uint64_t rng_ = 0;
  bool running_ = false;
  bool stopping_ = false;
  bool stop_when_idle_ = false; // shutdown_tasks(): stop once the last task is gone
  bool closed_ = false;
};

} // namespace corio
