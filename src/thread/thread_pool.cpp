#include "corio/thread_pool.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "corio/errors.hpp"

namespace corio {

namespace {

/// A fire-and-forget callable queued with submit(fn).
class function_job final : public detail::pool_job {
public:
  explicit function_job(detail::unique_function fn) noexcept : fn_(std::move(fn)) {}
  void run() noexcept override {
    try {
      fn_();
    } catch (...) {
      std::fprintf(stderr, "corio: exception in a thread_pool job: %s\n", describe(std::current_exception()).c_str());
    }
    delete this;
  }

private:
  detail::unique_function fn_;
};

/// Starts a thread with every asynchronous signal blocked (it inherits the mask current at creation,
/// so there is no window in which it could take a process-directed signal). The synchronous ones stay
/// open: blocking SIGSEGV & co. and then raising them by a fault is undefined.
std::thread start_blocking_signals(void (*body)(void*), void* arg) {
  sigset_t all, old;
  ::sigfillset(&all);
  for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS})
    ::sigdelset(&all, s);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  struct restore {
    sigset_t* mask;
    ~restore() { ::pthread_sigmask(SIG_SETMASK, mask, nullptr); }
  } guard{&old};
  return std::thread([body, arg] {
    ::pthread_setname_np(::pthread_self(), "corio-pool");
    body(arg);
  });
}

/// The pool whose thread this is (null on other threads): shutdown() from a pool's own thread is refused
/// even after another caller took the threads out to join them.
thread_local const void* this_pool = nullptr;

} // namespace

struct thread_pool::impl {
  unsigned max_threads;
  mutable std::mutex mutex;
  std::condition_variable work_ready;
  detail::pool_job* head = nullptr; // FIFO of queued jobs
  detail::pool_job* tail = nullptr;
  std::size_t queued = 0;
  std::size_t idle = 0; // threads waiting for work
  std::size_t started = 0;
  bool stopping = false;
  bool joining = false; // a shutdown() took `threads` and joins them
  bool joined = false;  // ... and they are joined: every shutdown() may return
  std::condition_variable all_joined;
  std::vector<std::thread> threads;

  static void worker(void* self) {
    this_pool = self;
    static_cast<impl*>(self)->work();
  }

  void work() {
    std::unique_lock lock(mutex);
    for (;;) {
      ++idle;
      work_ready.wait(lock, [this] { return head != nullptr || stopping; });
      --idle;
      if (head == nullptr)
        return; // stopping, and the queue is drained
      detail::pool_job* job = head;
      head = job->next_job;
      if (head == nullptr)
        tail = nullptr;
      --queued;
      lock.unlock();
      job->run();
      lock.lock();
    }
  }

  void push(detail::pool_job* job) {
    std::unique_lock lock(mutex);
    if (stopping)
      throw invalid_state_error("corio: thread_pool: work submitted after shutdown()");
    if (threads.size() == threads.capacity() && threads.size() < max_threads) // before the job is linked
      threads.reserve(std::min<std::size_t>(max_threads, threads.size() * 2 + 4));
    job->next_job = nullptr;
    (tail != nullptr ? tail->next_job : head) = job;
    tail = job;
    ++queued;
    // asyncio's rule: a new thread only when no started one is free to take the job.
    if (idle < queued && threads.size() < max_threads)
      start_thread(job);
    lock.unlock();
    work_ready.notify_one();
  }

  /// Starts one more thread for `job`, just queued (mutex held). When the system refuses (EAGAIN:
  /// RLIMIT_NPROC, a cgroup's pids.max), the threads already started run the job later; with none, the
  /// job is unlinked again (the caller still owns it) and std::system_error names what failed.
  void start_thread(detail::pool_job* job) {
    try {
      threads.push_back(start_blocking_signals(&impl::worker, this)); // reserved: only the start can throw
    } catch (const std::system_error& e) {
      if (give_back(job))
        throw std::system_error(e.code(), "corio: thread_pool: cannot start a worker thread");
      return;
    } catch (...) { // std::bad_alloc
      if (give_back(job))
        throw;
      return;
    }
    ++started;
  }

  /// A thread could not start for `job`: true (and the job unlinked) when no thread at all would run it.
  bool give_back(detail::pool_job* job) noexcept {
    if (!threads.empty())
      return false;
    unlink(job);
    return true;
  }

  /// Takes a queued job out of the queue (mutex held).
  void unlink(detail::pool_job* job) noexcept {
    detail::pool_job** link = &head;
    detail::pool_job* before = nullptr;
    while (*link != nullptr && *link != job) {
      before = *link;
      link = &before->next_job;
    }
    if (*link == nullptr)
      return;
    *link = job->next_job;
    if (tail == job)
      tail = before;
    job->next_job = nullptr;
    --queued;
  }
};

unsigned thread_pool::default_max_threads() noexcept { return std::min(32u, std::thread::hardware_concurrency() + 4); }

thread_pool::thread_pool() : thread_pool(options{}) {}

thread_pool::thread_pool(options opts) : impl_(std::make_unique<impl>()) {
  impl_->max_threads = opts.max_threads != 0 ? opts.max_threads : default_max_threads();
}

thread_pool::~thread_pool() { shutdown(); }

void thread_pool::submit(detail::unique_function fn) {
  if (!fn)
    throw invalid_state_error("corio: thread_pool::submit() of an empty function");
  auto* job = new function_job(std::move(fn));
  try {
    impl_->push(job);
  } catch (...) {
    delete job;
    throw;
  }
}

void thread_pool::submit(detail::pool_job* job) { impl_->push(job); }

void thread_pool::shutdown() {
  impl& p = *impl_;
  std::vector<std::thread> threads;
  {
    std::unique_lock lock(p.mutex);
    if (this_pool == &p)
      throw invalid_state_error("corio: thread_pool::shutdown() from one of the pool's own threads");
    p.stopping = true;
    if (p.joining) { // another caller joins the threads: return once it has (concurrent.futures waits in both)
      p.all_joined.wait(lock, [&] { return p.joined; });
      return;
    }
    p.joining = true;
    threads.swap(p.threads);
  }
  p.work_ready.notify_all();
  for (std::thread& t : threads)
    t.join();
  std::lock_guard lock(p.mutex);
  p.joined = true;
  p.all_joined.notify_all(); // under the lock: a waiter woken by `joined` may destroy the pool at once
}

unsigned thread_pool::max_threads() const noexcept { return impl_->max_threads; }

std::size_t thread_pool::thread_count() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->started;
}

bool thread_pool::is_shutdown() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->stopping;
}

} // namespace corio
