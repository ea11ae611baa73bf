#include "corio/runtime.hpp"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <latch>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "corio/errors.hpp"
#include "corio/signals.hpp"

namespace corio {

namespace detail {

/// One runtime::run(): shared by the caller and every loop's main, freed by whoever lets go last.
struct parallel_run {
  explicit parallel_run(std::size_t n, std::function<task<>(std::size_t)> m)
      : make(std::move(m)), remaining(n), mains(n) {}
  std::function<task<>(std::size_t)> make; // called on each loop's thread
  std::atomic<std::size_t> remaining;      // mains not finished yet
  std::atomic<bool> cancelling{false};     // cancel_all() ran: cancellations from now on are ours
  std::atomic<bool> interrupted{false};    // ... because of Ctrl-C
  struct slot {                            // slot i: loop i's thread only
    join_handle<> handle;
    bool cancel_requested = false; // a cancel arrived before the main was spawned
  };
  std::vector<slot> mains;
  std::mutex mutex;
  std::exception_ptr error; // guarded by mutex: the first exception that was not our cancellation
  bool ended_cancelled = false;
};

} // namespace detail

namespace {

std::string cpu_list(const cpu_set_t& set) {
  std::string out;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set))
      out.append(out.empty() ? "" : ",").append(std::to_string(c));
  return out;
}

/// The CPUs loop i goes on, checked against what this process may use.
std::vector<unsigned> checked_cpus(const runtime::options& o, std::size_t n) {
  if (!o.pin)
    return {};
  std::vector<unsigned> cpus = o.cpus;
  if (cpus.empty())
    for (std::size_t i = 0; i < n; ++i)
      cpus.push_back(static_cast<unsigned>(i));
  if (cpus.size() < n)
    throw std::invalid_argument(std::string("corio: runtime: ") + std::to_string(n) + " loops but only " +
                                std::to_string(cpus.size()) + " CPUs given to pin them to");
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0)
    throw std::system_error(errno, std::generic_category(), "corio: runtime: sched_getaffinity");
  for (std::size_t i = 0; i < n; ++i)
    if (cpus[i] >= CPU_SETSIZE || !CPU_ISSET(cpus[i], &allowed))
      throw std::invalid_argument(std::string("corio: runtime: cannot pin loop ") + std::to_string(i) + " to CPU " +
                                  std::to_string(cpus[i]) + ": no such CPU for this process (it may use " +
                                  cpu_list(allowed) + ")");
  return cpus;
}

void pin_thread(pthread_t t, unsigned cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  if (const int err = ::pthread_setaffinity_np(t, sizeof one, &one); err != 0)
    throw std::system_error(err, std::generic_category(), "corio: runtime: pthread_setaffinity_np");
}

// The index of the runtime loop on this thread (read through a barrier: HAZARDS.md §3).
thread_local const runtime* this_runtime = nullptr;
thread_local std::size_t this_index = 0;

[[gnu::noinline]] std::optional<std::size_t> index_on(const runtime* rt) noexcept {
  const runtime** p = &this_runtime;
  asm volatile("" : "+r"(p)::"memory");
  if (*p != rt)
    return std::nullopt;
  return this_index;
}

} // namespace

/// A loop thread: makes its loop, runs it until told to quit, then tears it down in two phases with
/// the others (shutdown, then close), so a task finishing in phase one may still post to any loop.
struct runtime::worker {
  std::thread thread;
  bool quit = false; // worker's thread only (set by a posted callback)
};

/// Phase one ends when every loop is idle at once — no task, nothing ready, nothing queued, no timer
/// due — and stays so: a loop with nothing left to do checks in as quiet, then waits for a post (or its
/// I/O readying a callback, or its next timer) and checks out again to run it. Timers not yet due and
/// I/O in flight do not count: phase one does not wait for them (what is left goes with the loop, as
/// asyncio's close() drops it). Code runs on a loop only while it is checked out, so whatever it posted is queued
/// before it checks in; the loop that makes the count complete sees every queue, and ends phase one only if they are
/// all empty (else the loop with a post wakes for it and checks in again later).
struct runtime::teardown_state {
  explicit teardown_state(std::size_t n) : loops(n), stuck(n, false) {}
  std::mutex mutex;
  std::condition_variable ended; // over is true (for a loop that cannot run; the others wait for work)
  std::size_t loops;             // guarded by mutex: loops taking part (threads that never started are not)
  std::size_t quiet = 0;         // guarded by mutex: loops checked in
  std::vector<bool> stuck;       // guarded by mutex: loop i cannot run (it threw): its queue is not waited for
  bool over = false;             // guarded by mutex
};

runtime::runtime(options opts) : opts_(std::move(opts)) {
  std::size_t n = opts_.threads != 0 ? opts_.threads : std::max(1u, std::thread::hardware_concurrency());
  const std::vector<unsigned> cpus = checked_cpus(opts_, n);
  opts_.cpus = cpus;
  loop0_ = std::make_unique<event_loop>();
  loops_.assign(n, nullptr);
  loops_[0] = loop0_.get();
  teardown_ = std::make_unique<teardown_state>(n);
  workers_.reserve(n - 1);
  // Threads inherit the signal mask: block every asynchronous signal while starting them.
  sigset_t all, old;
  ::sigfillset(&all);
  for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS})
    ::sigdelset(&all, s);
  ::pthread_sigmask(SIG_BLOCK, &all, &old);
  std::latch started(static_cast<std::ptrdiff_t>(n - 1));
  try {
    for (std::size_t i = 1; i < n; ++i) {
      auto w = std::make_unique<worker>();
      worker& ref = *w;
      ref.thread = std::thread([this, i, &ref, &started] { worker_main(i, ref, started); });
      workers_.push_back(std::move(w)); // reserved below: cannot throw
      if (!cpus.empty())
        pin_thread(ref.thread.native_handle(), cpus[i]);
    }
  } catch (...) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    started.count_down(static_cast<std::ptrdiff_t>(n - 1 - workers_.size())); // those never started
    started.wait(); // the threads that did start are in their loops: stop them
    shutdown();
    throw;
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  started.wait();
}

void runtime::worker_main(std::size_t i, worker& w, std::latch& started) {
  event_loop loop;
  this_runtime = this;
  this_index = i;
  loops_[i] = &loop; // read by others only after `started` (or the destructor's join)
  started.count_down();
  while (!w.quit) {
    try {
      loop.run_forever();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "corio: runtime loop %zu: %s\n", i, e.what());
      break;
    }
  }
  finish_phase_one(loop, i); // then phase two: no loop runs tasks any more
  try {
    loop.close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corio: runtime loop %zu: close: %s\n", i, e.what());
  }
  this_runtime = nullptr;
}

runtime::~runtime() { shutdown(); }

void runtime::shutdown() noexcept {
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    worker* w = workers_[i].get();
    event_loop* l = loops_[i + 1];
    try {
      l->call_soon_threadsafe([w, l] {
        w->quit = true;
        l->stop();
      });
    } catch (...) {
      std::terminate(); // cannot tell the thread to stop: joining it would hang
    }
  }
  {
    std::lock_guard lock(teardown_->mutex);
    teardown_->loops = 1 + workers_.size(); // threads that never started take no part
  }
  try {
    // What was posted to loop 0 since run() returned runs now, as the quit callback above lets the other
    // loops run what was posted to them first.
    loop0_->stop();
    loop0_->run_forever();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corio: runtime loop 0: %s\n", e.what());
  }
  finish_phase_one(*loop0_, 0);
  for (auto& w : workers_)
    w->thread.join();
  try {
    loop0_->close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corio: runtime loop 0: close: %s\n", e.what());
  }
}

/// Phase one on loop i: cancels its tasks and lets them finish, then serves the other loops' posts (a
/// run_on's call, a spawn_on; the tasks they spawn are not cancelled), its own I/O and its timers as they
/// fall due, until every loop is idle at once.
/// A loop that cannot run (it throws) checks in for good, and its queue is left for close() to drop.
void runtime::finish_phase_one(event_loop& loop, std::size_t i) noexcept {
  teardown_state& td = *teardown_;
  try {
    loop.shutdown_tasks();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corio: runtime loop %zu: shutdown: %s\n", i, e.what());
  }
  bool serving = true;
  std::unique_lock lock(td.mutex, std::defer_lock);
  for (;;) {
    try {
      if (serving)
        loop.run_until_idle();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "corio: runtime loop %zu: shutdown: %s\n", i, e.what());
      serving = false;
    }
    lock.lock();
    td.stuck[i] = !serving;
    if (++td.quiet == td.loops && !queued_anywhere()) {
      end_phase_one(loop);
      return;
    }
    if (!serving) {
      td.ended.wait(lock, [&] { return td.over; });
      return;
    }
    lock.unlock();
    try {
      loop.wait_for_work(); // a post, or end_phase_one()'s wake-up
    } catch (const std::exception& e) {
      std::fprintf(stderr, "corio: runtime loop %zu: shutdown: %s\n", i, e.what());
      serving = false;
    }
    lock.lock();
    if (td.over)
      return;
    --td.quiet;
    lock.unlock();
  }
}

/// Whether a loop that can still run has a post it has not taken (teardown_->mutex held).
bool runtime::queued_anywhere() const noexcept {
  for (std::size_t j = 0; j < loops_.size(); ++j)
    if (loops_[j] != nullptr && !teardown_->stuck[j] && loops_[j]->threadsafe_queued())
      return true;
  return false;
}

/// Every loop is idle, and nothing is queued: phase one is over (teardown_->mutex held). The others wait
/// for work, and a no-op post wakes each (close() drops it); posted under the mutex, before any of them
/// can see `over`, close its loop and destroy it.
void runtime::end_phase_one(const event_loop& self) noexcept {
  teardown_->over = true;
  for (event_loop* l : loops_)
    if (l != nullptr && l != &self)
      l->call_soon_threadsafe([] {});
  teardown_->ended.notify_all();
}

event_loop& runtime::loop(std::size_t i) const {
  if (i >= loops_.size())
    throw std::out_of_range(std::string("corio: runtime::loop(") + std::to_string(i) + "): the runtime has " +
                            std::to_string(loops_.size()) + " loops");
  return *loops_[i];
}

std::optional<std::size_t> runtime::current_index() const noexcept {
  if (event_loop::current() == loop0_.get() && loop0_ != nullptr)
    return 0;
  return index_on(this);
}

// ---- run() --------------------------------------------------------------------------------------------

void runtime::run_mains(std::function<task<>(std::size_t)> make) {
  auto st = std::make_shared<detail::parallel_run>(size(), std::move(make));
  {
    std::lock_guard lock(run_mutex_);
    if (current_run_ != nullptr)
      throw loop_error("corio: runtime::run() is already running");
    current_run_ = st;
  }
  struct clear {
    runtime* rt;
    ~clear() {
      std::lock_guard lock(rt->run_mutex_);
      rt->current_run_ = nullptr;
    }
  } clear_guard{this};
  cpu_set_t old_affinity;
  const bool pin0 =
      !opts_.cpus.empty() && ::pthread_getaffinity_np(::pthread_self(), sizeof old_affinity, &old_affinity) == 0;
  if (pin0)
    pin_thread(::pthread_self(), opts_.cpus[0]);
  for (std::size_t i = 1; i < size(); ++i)
    post(i, [this, st, i] { start_main(st, i); });
  start_main(st, 0);
  {
    detail::sigint_guard sigint(*loop0_, [this, st] {
      st->interrupted.store(true);
      cancel_all(st);
    });
    while (st->remaining.load(std::memory_order_acquire) != 0)
      loop0_->run_forever();
  }
  if (pin0)
    ::pthread_setaffinity_np(::pthread_self(), sizeof old_affinity, &old_affinity);
  std::exception_ptr error;
  bool cancelled = false;
  {
    std::lock_guard lock(st->mutex);
    error = std::exchange(st->error, nullptr);
    cancelled = st->ended_cancelled;
  }
  if (error)
    std::rethrow_exception(error);
  if (cancelled && st->interrupted.load())
    throw keyboard_interrupt();
}

void runtime::start_main(const std::shared_ptr<detail::parallel_run>& st, std::size_t i) {
  task<> t;
  try {
    t = st->make(i);
  } catch (...) {
    finish_main(st, std::current_exception());
    return;
  }
  auto& slot = st->mains[i];
  // Started even if cancelled first: the wrapper reports the end (main itself then never runs).
  slot.handle =
      detail::spawn_lazy(loop(i), main_wrapper(this, st, i, std::move(t)), "main", detail::start_policy::always);
  if (slot.cancel_requested)
    slot.handle.cancel();
}

task<> runtime::main_wrapper(runtime* rt, std::shared_ptr<detail::parallel_run> st, std::size_t i, task<> t) {
  std::exception_ptr e;
  try {
    // Cancelled before it started (stop(), Ctrl-C, another copy failed): main never runs, as asyncio
    // never starts a task cancelled before its first step; the copy is reported as cancelled.
    detail::running_task("runtime::run()").check_cancel();
    co_await t;
  } catch (...) {
    e = std::current_exception();
  }
  st->mains[i].handle = {}; // a join_handle belongs to its loop's thread: drop it here
  rt->finish_main(st, std::move(e));
}

void runtime::finish_main(const std::shared_ptr<detail::parallel_run>& st, std::exception_ptr e) {
  bool failed = false;
  if (e) {
    const bool ours = is_cancellation(e) && st->cancelling.load();
    std::lock_guard lock(st->mutex);
    if (ours) {
      st->ended_cancelled = true;
    } else if (!st->error) {
      st->error = std::move(e);
      failed = true;
    }
  }
  if (failed)
    cancel_all(st);
  if (st->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1)
    post(0, [this] { loop0_->stop(); });
}

void runtime::cancel_all(const std::shared_ptr<detail::parallel_run>& st) {
  if (st->cancelling.exchange(true))
    return;
  for (std::size_t i = 0; i < size(); ++i)
    post(i, [st, i] {
      auto& slot = st->mains[i];
      if (slot.handle.valid())
        slot.handle.cancel();
      else
        slot.cancel_requested = true;
    });
}

void runtime::stop() {
  std::shared_ptr<detail::parallel_run> st;
  {
    std::lock_guard lock(run_mutex_);
    st = current_run_;
  }
  if (st != nullptr)
    cancel_all(st);
}

} // namespace corio
