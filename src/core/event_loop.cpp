#include "corio/event_loop.hpp"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>

#include "../backend/backend.hpp"
#include "corio/detail/task_state.hpp"
#include "corio/detail/timer_testing.hpp"
#include "timer_node.hpp"

namespace corio {

namespace {

// The running loop of this thread. Read through a noinline accessor with a compiler barrier: clang may
// cache the address of a thread_local across a suspension point (HAZARDS.md §3).
thread_local event_loop* running_loop = nullptr;

[[gnu::noinline]] event_loop** running_loop_slot() noexcept {
  event_loop** p = &running_loop;
  asm volatile("" : "+r"(p)::"memory");
  return p;
}

std::uint64_t splitmix(std::uint64_t& s) noexcept {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Ready items that are not a task's step carry one of these in place of a task pointer; they are never
// dereferenced. [0]: a callback (the target is a timer_node). [1]: a spawned task's first step (the target
// is its task_state). Adjacent, so that the step of a task, the hot path, is told from both by one test.
alignas(16) char tag_markers[2];
detail::task_state* callback_tag() noexcept { return reinterpret_cast<detail::task_state*>(&tag_markers[0]); }
detail::task_state* start_tag() noexcept { return reinterpret_cast<detail::task_state*>(&tag_markers[1]); }
bool is_tag(const detail::task_state* t) noexcept {
  return (reinterpret_cast<std::uintptr_t>(t) & ~std::uintptr_t{1}) ==
         reinterpret_cast<std::uintptr_t>(&tag_markers[0]);
}

detail::timer_slot* slot_of(std::uintptr_t s) noexcept {
  return reinterpret_cast<detail::timer_slot*>(s & ~std::uintptr_t{1});
}

} // namespace

// ---- the ready queue: a growable ring buffer -----------------------------------------------------

class event_loop::ring {
public:
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  void push(const ready_item& item) {
    if (size_ == buf_.size()) [[unlikely]]
      grow();
    buf_[(head_ + size_) & (buf_.size() - 1)] = item;
    ++size_;
  }
  ready_item pop() noexcept {
    ready_item item = buf_[head_];
    head_ = (head_ + 1) & (buf_.size() - 1);
    --size_;
    return item;
  }
  ready_item& at(std::size_t i) noexcept { return buf_[(head_ + i) & (buf_.size() - 1)]; }

private:
  [[gnu::noinline]] void grow() {
    std::vector<ready_item> bigger(buf_.empty() ? 64 : buf_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i)
      bigger[i] = at(i);
    buf_ = std::move(bigger);
    head_ = 0;
  }
  std::vector<ready_item> buf_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

// ---- timer_handle -----------------------------------------------------------------------------------

bool timer_handle::cancel() noexcept {
  if (!pending())
    return false;
  node_->loop->cancel_timer(node_);
  return true;
}

// The node outlives every loop (timer_node.hpp), so this reads live memory even after the loop is gone;
// its generation then differs from gen_'s (gen_ is the node's stamp when it was scheduled: the
// generation, and bit 0 set for pending), and the node's loop is not looked at.
bool timer_handle::pending() const noexcept { return node_ != nullptr && node_->current_stamp() == gen_; }

// ---- detail::timer_testing (include/corio/detail/timer_testing.hpp) ------------------------------------

const void* detail::timer_testing::node(const timer_handle& h) noexcept { return h.node_; }

timer_handle detail::timer_testing::age(const timer_handle& h, std::uint64_t reuses) noexcept {
  detail::timer_node* n = h.node_;
  n->stamp.store(n->current_stamp() + (reuses << 1), std::memory_order_relaxed);
  return {n, n->current_stamp()};
}

// ---- timer node chunks ------------------------------------------------------------------------------

// Chunks of timer nodes no loop holds: a loop being destroyed puts its chunks here and a loop that needs
// nodes takes one. Chunks are never freed, so a timer_handle never dangles (timer_node.hpp). Locked only
// when a loop grows its nodes by a chunk and when a loop is destroyed, never on the timer hot path.
namespace {
constexpr std::size_t node_chunk_size = 256;
// One allocation whose address is its first node's (no new[] cookie before it: leak checkers see the
// pool's pointers as pointing at the start of its blocks, still reachable).
struct node_chunk {
  detail::timer_node nodes[node_chunk_size];
};
struct node_pool {
  std::mutex mutex;
  std::vector<detail::timer_node*> chunks; // every node free: no callback, not pending
};
node_pool& nodes_pool() noexcept {
  static auto* p = new node_pool(); // never destroyed: a loop may go during static destruction, or on a
  return *p;                        // thread still running after main() returned
}
detail::timer_node* take_chunk() {
  node_pool& p = nodes_pool();
  {
    std::lock_guard lock(p.mutex);
    if (!p.chunks.empty()) {
      detail::timer_node* c = p.chunks.back();
      p.chunks.pop_back();
      return c;
    }
  }
  return (new node_chunk)->nodes;
}
} // namespace

event_loop::node_chunks::~node_chunks() {
  // First every handle goes stale, so that a capture's destructor below that cancels a handle of this loop
  // finds nothing pending; then the captures of callbacks never run are destroyed.
  for (detail::timer_node* c : chunks)
    for (std::size_t i = 0; i < node_chunk_size; ++i) {
      c[i].next_generation(); // and not pending
    }
  for (detail::timer_node* c : chunks)
    for (std::size_t i = 0; i < node_chunk_size; ++i) {
      detail::unique_function fn = std::move(c[i].fn);
      c[i].index = detail::timer_slot::not_scheduled;
      c[i].loop = nullptr;
      c[i].next_free = nullptr;
    }
  node_pool& p = nodes_pool();
  std::lock_guard lock(p.mutex);
  try {
    p.chunks.insert(p.chunks.end(), chunks.begin(), chunks.end());
  } catch (...) {
    // Out of memory: the chunks stay allocated, unused (a handle on them must still find them).
  }
}

// ---- construction -----------------------------------------------------------------------------------

// The loops that exist, for event_loop::exists(): a handful per process, looked up only by objects that
// outlived a loop or might have.
namespace {
struct loop_registry {
  std::mutex mutex;
  std::vector<std::pair<const event_loop*, std::uint64_t>> loops;
  std::uint64_t next_serial = 1;
};
loop_registry& registry() noexcept {
  static auto* r = new loop_registry(); // never destroyed: a loop may go during static destruction, or
  return *r;                            // on a thread still running after main() returned
}
} // namespace

bool event_loop::exists(const event_loop* l, std::uint64_t serial) noexcept {
  loop_registry& r = registry();
  std::lock_guard lock(r.mutex);
  return std::find(r.loops.begin(), r.loops.end(), std::pair{l, serial}) != r.loops.end();
}

event_loop::event_loop() : event_loop(options{}) {}

event_loop::event_loop(options opts)
    : opts_(opts), clock_(opts.clock), backend_(detail::make_backend(opts.backend, backend_kind_)),
      ready_(std::make_unique<ring>()) {
  can_recv_ = backend_->can_recv();
  can_accept_ = backend_->can_accept();
  can_file_io_ = backend_->can_file_io();
  if (clock_ == nullptr) {
    own_clock_ = std::make_unique<steady_clock_source>();
    clock_ = own_clock_.get();
  } else {
    // A clock that jumps to deadlines is virtual: blocking on it for real would hang.
    virtual_clock_ = clock_->advance_to(clock_->now());
  }
  if (opts_.shuffle) {
    seed_ = opts_.seed != 0 ? opts_.seed : std::random_device{}() | 1;
    rng_ = seed_;
    std::fprintf(stderr, "corio: shuffled ready queue, seed %llu\n", static_cast<unsigned long long>(seed_));
  }
  loop_registry& r = registry();
  std::lock_guard lock(r.mutex);
  serial_ = r.next_serial++;
  r.loops.emplace_back(this, serial_);
}

const char* event_loop::backend_name() const noexcept {
  return backend_kind_ == backend_kind::io_uring ? "io_uring" : "epoll";
}

event_loop::~event_loop() {
  // Tasks still alive are abandoned: their frames are destroyed without running any more of them,
  // newest first — a child's locals may refer to objects in the frame of the task that spawned it.
  while (tasks_tail_ != nullptr) {
    detail::task_state* t = tasks_tail_;
    remove_task(t);
    t->abandon();
  }
  // Callbacks still queued are dropped; their captures are destroyed with the nodes.
  while (!ready_->empty()) {
    ready_item item = ready_->pop();
    if (item.task == callback_tag())
      free_node(static_cast<detail::timer_node*>(item.target));
  }
  if (!closed_) {
    {
      std::lock_guard lock(threadsafe_mutex_);
      closed_ = true;
    }
    run_close_callbacks();
  }
  // Last: what the teardown above destroyed could still tell this loop it closes a file descriptor.
  loop_registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::erase(r.loops, std::pair<const event_loop*, std::uint64_t>{this, serial_});
}

event_loop* event_loop::current() noexcept { return *running_loop_slot(); }

void event_loop::check_open() const {
  if (closed_)
    throw loop_error("corio: the event loop is closed");
}

// ---- scheduling -------------------------------------------------------------------------------------

[[gnu::noinline]] void event_loop::add_node_chunk() {
  std::vector<detail::timer_node*>& chunks = node_chunks_.chunks;
  if (chunks.size() == chunks.capacity())
    chunks.reserve(chunks.empty() ? 16 : chunks.size() * 2); // before taking a chunk: none is ever lost
  detail::timer_node* nodes = take_chunk();
  chunks.push_back(nodes);
  for (std::size_t i = 0; i < node_chunk_size; ++i) {
    nodes[i].loop = this;
    nodes[i].next_free = i + 1 < node_chunk_size ? &nodes[i + 1] : nullptr;
  }
  free_nodes_ = nodes;
}

detail::timer_node* event_loop::new_node() {
  if (free_nodes_ == nullptr) [[unlikely]]
    add_node_chunk();
  detail::timer_node* n = free_nodes_;
  free_nodes_ = n->next_free;
  n->next_free = nullptr;
  n->set_pending();
  return n;
}

void event_loop::free_node(detail::timer_node* n) noexcept {
  n->fn = {};
  n->index = detail::timer_slot::not_scheduled;
  n->next_generation(); // and not pending
  n->next_free = free_nodes_;
  free_nodes_ = n;
}

void event_loop::push_ready(const ready_item& item) { ready_->push(item); }

timer_handle event_loop::call_soon(detail::unique_function fn) {
  check_open();
  detail::timer_node* n = new_node();
  n->fn = std::move(fn);
  push_ready({n, callback_tag()});
  return {n, n->current_stamp()};
}

timer_handle event_loop::call_later(duration delay, detail::unique_function fn) {
  return call_at(detail::saturating_add(time(), delay), std::move(fn)); // max: never
}

timer_handle event_loop::call_at(time_point when, detail::unique_function fn) {
  check_open();
  detail::timer_node* n = new_node();
  n->fn = std::move(fn);
  push_timer(when, n, false);
  return {n, n->current_stamp()};
}

void event_loop::call_soon_threadsafe(detail::unique_function fn) {
  bool wake_needed;
  {
    std::lock_guard lock(threadsafe_mutex_);
    if (closed_)
      return;
    threadsafe_.push_back(std::move(fn));
    wake_needed = !threadsafe_pending_.exchange(true);
  }
  if (wake_needed)
    backend_->wake();
}

time_point event_loop::time() const noexcept { return clock_->now(); }

void event_loop::schedule(std::coroutine_handle<> h, detail::task_state* t) { push_ready({h.address(), t}); }

void event_loop::schedule_start(detail::task_state* t) { push_ready({t, start_tag()}); }

void event_loop::wake(detail::wait_node* w) {
  if (w->task != nullptr && w->task->waiting == w)
    w->task->waiting = nullptr;
  push_ready({w->handle.address(), w->task});
}

void detail::wait_node::forget_wait(wait_node* w) noexcept {
  if (w->task != nullptr && w->task->waiting == w)
    w->task->waiting = nullptr;
}

void event_loop::begin_wait(detail::wait_node* w) noexcept {
  if (w->task != nullptr)
    w->task->waiting = w;
}

bool event_loop::cancel_task(detail::task_state* t) noexcept {
  if (t == nullptr || t->done)
    return false;
  ++t->cancel_requests;
  if (t->waiting == nullptr) // running, about to run or not started: no await point takes it now
    t->cancel_unraised = true;
  interrupt(t);
  return true;
}

void event_loop::interrupt(detail::task_state* t) noexcept {
  detail::wait_node* w = t->waiting;
  if (w == nullptr || !w->on_cancel())
    return;
  t->waiting = nullptr;
  push_ready({w->handle.address(), t}); // may allocate: the ring only grows, and has room in practice
}

// ---- timers -----------------------------------------------------------------------------------------
//
// A 4-ary min-heap of (deadline, slot) ordered by (deadline, seq). It is half as deep as a binary heap,
// and every move writes the entry's new index into its slot (a write to the waiting frame or node), so
// fewer levels means fewer of those scattered writes. Cancellation removes the entry at its index.

namespace {
bool earlier(const auto& a, const auto& b) noexcept {
  if (a.when != b.when)
    return a.when < b.when;
  return static_cast<std::int32_t>(slot_of(a.slot)->seq - slot_of(b.slot)->seq) < 0; // wrap-around order
}
} // namespace

void event_loop::sift_up(std::uint32_t i, timer_entry e) noexcept {
  while (i > 0) {
    const std::uint32_t parent = (i - 1) / 4;
    if (!earlier(e, timers_[parent]))
      break;
    timers_[i] = timers_[parent];
    slot_of(timers_[i].slot)->index = i;
    i = parent;
  }
  timers_[i] = e;
  slot_of(e.slot)->index = i;
}

void event_loop::sift_down(std::uint32_t i, timer_entry e) noexcept {
  const auto n = static_cast<std::uint32_t>(timers_.size());
  for (;;) {
    const std::uint32_t first = 4 * i + 1;
    if (first >= n)
      break;
    std::uint32_t best = first;
    const std::uint32_t last = std::min(first + 4, n);
    for (std::uint32_t c = first + 1; c < last; ++c)
      if (earlier(timers_[c], timers_[best]))
        best = c;
    if (!earlier(timers_[best], e))
      break;
    timers_[i] = timers_[best];
    slot_of(timers_[i].slot)->index = i;
    i = best;
  }
  timers_[i] = e;
  slot_of(e.slot)->index = i;
}

void event_loop::push_timer(time_point when, detail::timer_slot* s, bool is_wait) {
  if (timers_.size() >= detail::timer_slot::not_scheduled - 1) [[unlikely]]
    throw loop_error("corio: too many timers scheduled");
  s->seq = timer_seq_++;
  timers_.push_back({}); // may throw: nothing changed yet
  sift_up(static_cast<std::uint32_t>(timers_.size() - 1),
          {when, reinterpret_cast<std::uintptr_t>(s) | static_cast<std::uintptr_t>(is_wait)});
}

void event_loop::remove_entry(std::uint32_t i) noexcept {
  slot_of(timers_[i].slot)->index = detail::timer_slot::not_scheduled;
  const timer_entry last = timers_.back();
  timers_.pop_back();
  if (i == timers_.size())
    return; // it was the last entry
  if (i > 0 && earlier(last, timers_[(i - 1) / 4]))
    sift_up(i, last);
  else
    sift_down(i, last);
}

void event_loop::add_timer(time_point when, detail::timed_wait* w) { push_timer(when, w, true); }

void event_loop::remove_timer(detail::timed_wait* w) noexcept {
  if (w->scheduled())
    remove_entry(w->index);
}

void event_loop::cancel_timer(detail::timer_node* n) noexcept {
  if (!n->pending())
    return;
  n->clear_pending();
  if (n->scheduled()) {
    remove_entry(n->index);
    free_node(n);
  } else {
    n->fn = {}; // in the ready queue, which frees it when it gets there; release the captures now
  }
}

std::size_t event_loop::timer_count() const noexcept { return timers_.size(); }

std::size_t event_loop::io_waiter_count() const noexcept { return backend_->armed(); }

void event_loop::run_due_timers() {
  if (timers_.empty())
    return; // no clock read
  const time_point now = time();
  while (!timers_.empty() && timers_.front().when <= now) {
    const std::uintptr_t s = timers_.front().slot;
    remove_entry(0);
    if ((s & 1) != 0)
      wake(static_cast<detail::timed_wait*>(slot_of(s)));
    else
      push_ready({static_cast<detail::timer_node*>(slot_of(s)), callback_tag()}); // runs in this batch
  }
}

// ---- I/O --------------------------------------------------------------------------------------------

void event_loop::arm(int fd, detail::io_dir d, detail::io_waiter* w, bool kept) {
  check_open();
  backend_->arm(fd, d, w, kept);
}

void event_loop::disarm(int fd, detail::io_dir d) noexcept { backend_->disarm(fd, d); }

void event_loop::forget_fd(int fd) noexcept { backend_->forget(fd); }

void event_loop::start_recv(int fd, std::size_t max, detail::io_completion* c, bool keep) {
  backend_->recv(fd, max, c, keep);
}
void event_loop::abandon_recv(int fd) noexcept { backend_->abandon_recv(fd); }
bool event_loop::keeps_recv() const noexcept { return backend_->keeps_recv(); }
void event_loop::end_recv(int fd) noexcept { backend_->end_recv(fd); }
void event_loop::start_accept(int fd, detail::net_completion* c, bool keep) { backend_->accept(fd, c, keep); }
void event_loop::abandon_accept(int fd) noexcept { backend_->abandon_accept(fd); }
int event_loop::take_accepted(int fd, void* addr, unsigned& len) noexcept {
  return can_accept_ ? backend_->take_accepted(fd, addr, len) : -1;
}
void event_loop::start_connect(int fd, const void* addr, unsigned len, detail::net_completion* c) {
  backend_->connect(fd, addr, len, c);
}
void event_loop::abandon_connect(int fd) noexcept { backend_->abandon_connect(fd); }
void event_loop::start_file_job(detail::file_job* job) { backend_->start_file_job(job); }
void event_loop::abandon_file_job(detail::file_job* job) noexcept { backend_->abandon_file_job(job); }
long event_loop::take_stashed(int fd, char* p, std::size_t n, int& err) noexcept {
  return can_recv_ ? backend_->take_stashed(fd, p, n, err) : -1;
}
bool event_loop::cancel_recv(int fd) noexcept { return backend_->cancel_recv(fd); }
bool event_loop::backend_has_stashed(int fd) const noexcept { return backend_->has_stashed(fd); }
std::size_t event_loop::release_fd(int fd) {
  if (can_recv_) {
    if (std::size_t held = backend_->settle_recv(fd); held > 0)
      return held;
  }
  backend_->forget(fd);
  return 0;
}

// ---- tasks ------------------------------------------------------------------------------------------

void event_loop::add_task(detail::task_state* t) noexcept {
  t->loop = this;
  t->id = next_task_id_++;
  t->prev_task = tasks_tail_;
  t->next_task = nullptr;
  (tasks_tail_ != nullptr ? tasks_tail_->next_task : tasks_head_) = t;
  tasks_tail_ = t;
  ++task_count_;
}

void event_loop::remove_task(detail::task_state* t) noexcept {
  (t->prev_task != nullptr ? t->prev_task->next_task : tasks_head_) = t->next_task;
  (t->next_task != nullptr ? t->next_task->prev_task : tasks_tail_) = t->prev_task;
  t->prev_task = t->next_task = nullptr;
  --task_count_;
  if (task_count_ == 0 && stop_when_idle_)
    stopping_ = true;
}

std::vector<const detail::task_state*> event_loop::tasks() const {
  std::vector<const detail::task_state*> out;
  for (const detail::task_state* t = tasks_head_; t != nullptr; t = t->next_task)
    out.push_back(t);
  return out;
}

// ---- running ----------------------------------------------------------------------------------------

/// The loop runs on this thread for the scope: is_running() and event_loop::current() say so (what a
/// waiter's ready() may rely on, as a stream re-arming its write does). Reset however the scope ends.
class event_loop::running_scope {
public:
  running_scope(event_loop& loop, event_loop** slot) noexcept : loop_(loop), slot_(slot) {
    *slot_ = &loop_;
    loop_.running_ = true;
  }
  running_scope(const running_scope&) = delete;
  running_scope& operator=(const running_scope&) = delete;
  ~running_scope() {
    loop_.running_ = false;
    loop_.stopping_ = false;
    *slot_ = nullptr;
  }

private:
  event_loop& loop_;
  event_loop** slot_;
};

void event_loop::run_forever() {
  check_open();
  event_loop** slot = running_loop_slot();
  if (*slot != nullptr)
    throw loop_error(*slot == this ? "corio: this event loop is already running"
                                   : "corio: cannot run an event loop while another loop is running in this thread");
  running_scope scope(*this, slot);
  do // a stop() made before the call still runs one iteration (asyncio: callbacks scheduled so far run)
    run_once();
  while (!stopping_);
}

void event_loop::stop() noexcept { stopping_ = true; }

namespace {
/// Runs `loop` with `until_idle` (its stop_when_idle_) set: run_forever() returns once the last task is
/// gone. The flag is reset however that ends.
void run_while(event_loop& loop, bool& until_idle) {
  until_idle = true;
  struct reset {
    bool& flag;
    ~reset() { flag = false; }
  } guard{until_idle};
  loop.run_forever();
}
} // namespace

void event_loop::shutdown_tasks() {
  if (running_)
    throw loop_error("corio: shutdown_tasks() on a running event loop");
  // Rounds: a task can be spawned while the cancelled ones finish (by a due timer, a
  // call_soon_threadsafe callback, a task's cleanup), also after the last of them ended, in the same
  // batch. Such a task first gets one iteration — the callbacks queued so far run, its first step among
  // them (asyncio lets it run until its shutdown ends) — then it is cancelled in the next round. Tasks
  // are listed in spawn order, so those of a round are the ones with an id from `first_new` on; an
  // earlier round's task is never cancelled twice. A task of an earlier round still alive means the loop
  // was stopped (loop.stop()) before they all ended: that ends the shutdown, as in asyncio (close()
  // then refuses: tasks still pending).
  std::uint64_t first_new = 0; // 0: the first round, nothing cancelled yet
  while (task_count_ != 0) {
    if (first_new != 0) {
      if (tasks_head_->id < first_new)
        return;
      stop();
      run_forever();
      if (task_count_ == 0)
        break;
    }
    for (detail::task_state* t = tasks_head_; t != nullptr; t = t->next_task)
      if (t->id >= first_new)
        cancel_task(t);
    first_new = next_task_id_;
    run_while(*this, stop_when_idle_);
  }
}

void event_loop::run_until_idle() {
  while (task_count_ != 0 || !ready_->empty() || threadsafe_queued() || timer_due()) {
    if (task_count_ == 0) {
      stop(); // one iteration: the callbacks queued so far run
      run_forever();
      continue;
    }
    run_while(*this, stop_when_idle_);
  }
}

void event_loop::wait_for_work() {
  event_loop** slot = running_loop_slot();
  if (*slot != nullptr)
    throw loop_error(*slot == this ? "corio: wait_for_work() on a running event loop"
                                   : "corio: wait_for_work() while another loop is running in this thread");
  // I/O is delivered here as run() delivers it: a stream flushing in the background (closed, no task
  // left) re-arms its write on event_loop::current(), and a socket closed in ready() tells its loop
  // (forget_fd). Outside a running_scope the first found no loop and failed its flush with EBADF.
  running_scope scope(*this, slot);
  while (!threadsafe_queued() && ready_->empty()) {
    // call_soon_threadsafe wakes the poll; a timer that falls due ends the wait too.
    if (timers_.empty() || timers_.front().when == time_point::max()) {
      backend_->poll(duration(-1));
      continue;
    }
    const duration left = detail::saturating_sub(timers_.front().when, time());
    if (left <= duration::zero())
      return;
    backend_->poll(left);
  }
}

bool event_loop::timer_due() const noexcept {
  return !timers_.empty() && timers_.front().when != time_point::max() && timers_.front().when <= time();
}

bool event_loop::threadsafe_queued() const noexcept { return threadsafe_pending_.load(std::memory_order_acquire); }

void event_loop::close() {
  if (running_)
    throw loop_error("corio: cannot close a running event loop");
  if (closed_)
    return;
  if (task_count_ != 0)
    throw loop_error(std::string("corio: cannot close the event loop: ") + std::to_string(task_count_) +
                     " task(s) still pending; cancel them and let them finish first (corio::run() does)");
  std::vector<detail::unique_function> dropped; // queued by call_soon_threadsafe: never run now
  {
    std::lock_guard lock(threadsafe_mutex_);
    closed_ = true;
    dropped.swap(threadsafe_);
    threadsafe_pending_.store(false, std::memory_order_relaxed);
  }
  dropped.clear(); // outside the lock: what they own learns now (a run_coroutine_threadsafe() future fails)
  run_close_callbacks();
}

void event_loop::on_close(detail::unique_function fn) {
  check_open();
  close_callbacks_.push_back(std::move(fn));
}

void event_loop::default_exception_handler(const exception_context& c) noexcept {
  try {
    std::fprintf(stderr, "corio: %s: %s\n", c.message.c_str(),
                 c.exception ? describe(c.exception).c_str() : "(no exception)");
  } catch (...) {
    std::fprintf(stderr, "corio: %s\n", c.message.c_str()); // out of memory describing it
  }
}

void event_loop::call_exception_handler(const exception_context& c) noexcept {
  if (!exception_handler_) {
    default_exception_handler(c);
    return;
  }
  try {
    exception_handler_(*this, c);
  } catch (...) {
    default_exception_handler({"exception in the exception handler", std::current_exception(), {}});
    default_exception_handler(c);
  }
}

void event_loop::run_close_callbacks() noexcept {
  // The loop is closed already, so no callback can register another.
  while (!close_callbacks_.empty()) {
    detail::unique_function fn = std::move(close_callbacks_.back());
    close_callbacks_.pop_back();
    try {
      fn();
    } catch (...) {
      call_exception_handler({"exception in a close callback", std::current_exception(), {}});
    }
  }
}

duration event_loop::poll_timeout() {
  if (!ready_->empty() || stopping_)
    return duration::zero();
  if (threadsafe_pending_.load(std::memory_order_acquire))
    return duration::zero();
  // While a thread works for a task, virtual time stands still: block until its result arrives (timers
  // already due still fire).
  const bool hold_time = virtual_clock_ && external_waits_ > 0;
  // A timer at the end of time (call_later(duration::max())) never fires: a virtual clock does not jump there.
  if (timers_.empty() || timers_.front().when == time_point::max()) {
    if (virtual_clock_ && backend_->armed() == 0 && !hold_time)
      throw loop_error("corio: deadlock: every task waits, and no timer, I/O or other thread can wake them");
    return duration(-1);
  }
  const time_point deadline = timers_.front().when;
  if (hold_time)
    return deadline <= time() ? duration::zero() : duration(-1);
  if (clock_->advance_to(deadline))
    return duration::zero();                                                   // a virtual clock jumped to the deadline
  return std::max(detail::saturating_sub(deadline, time()), duration::zero()); // call_at(time_point::min())
}

void event_loop::take_threadsafe() {
  if (!threadsafe_pending_.load(std::memory_order_acquire))
    return; // the common case: one atomic load, nothing else
  std::vector<detail::unique_function> batch;
  {
    std::lock_guard lock(threadsafe_mutex_);
    batch.swap(threadsafe_);
    threadsafe_pending_.store(false, std::memory_order_relaxed);
  }
  for (auto& fn : batch)
    call_soon(std::move(fn));
}

void event_loop::run_once() {
  // While tasks keep each other busy, poll for I/O only every 61st iteration (tokio's interval): a
  // zero-timeout epoll_wait per iteration would cost more than the tasks' own work. Otherwise poll,
  // blocking until the next timer.
  if (ready_->empty() || stopping_ || ++busy_iterations_ >= 61) {
    busy_iterations_ = 0;
    // A virtual clock jumps to the next timer when nothing is ready, but I/O the kernel already has is
    // not "blocked": collect it first, so a timeout never beats a socket that is readable now.
    if (virtual_clock_ && ready_->empty() && !stopping_ && backend_->armed() > 0 && !timers_.empty() &&
        backend_->poll(duration::zero()) > 0) {
      // delivered: the woken tasks run now, at the same virtual time
    } else {
      backend_->poll(poll_timeout());
    }
  }
  run_due_timers();
  take_threadsafe();
  run_ready();
}

void event_loop::run_ready() {
  // Only what was ready when the batch began: what it schedules runs in the next iteration, after
  // the next poll, so I/O is never starved.
  std::size_t n = ready_->size();
  if (opts_.shuffle) {
    for (std::size_t i = n; i > 1; --i)
      std::swap(ready_->at(i - 1), ready_->at(splitmix(rng_) % i));
  }
  while (n-- > 0)
    run_item(ready_->pop());
}

void event_loop::run_eagerly(std::coroutine_handle<> h, detail::task_state* t) {
  detail::task_state* outer = std::exchange(current_task_, t);
  h.resume(); // a task's exceptions end in its promise: nothing escapes
  current_task_ = outer;
}

void event_loop::run_item(const ready_item& item) {
  const auto started = opts_.debug ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  if (!is_tag(item.task)) {
    current_task_ = item.task;
    std::coroutine_handle<>::from_address(item.target).resume();
    current_task_ = nullptr;
  } else if (item.task == start_tag()) {
    auto* t = static_cast<detail::task_state*>(item.target);
    current_task_ = t;
    t->start(); // its first step; or, cancelled before it, its end without running its body
    current_task_ = nullptr;
  } else {
    auto* n = static_cast<detail::timer_node*>(item.target);
    if (n->pending()) {
      detail::unique_function fn = std::move(n->fn);
      free_node(n); // running: no longer cancellable
      try {
        fn();
      } catch (...) {
        // Report, and keep the loop running (asyncio).
        call_exception_handler({"exception in callback", std::current_exception(), {}});
      }
    } else {
      free_node(n);
    }
  }
  if (opts_.debug) {
    auto took = std::chrono::steady_clock::now() - started;
    if (took > opts_.slow_callback)
      std::fprintf(stderr, "corio: slow %s took %.3f s (debug threshold %.3f s)\n",
                   item.task == callback_tag() ? "callback" : "task step", std::chrono::duration<double>(took).count(),
                   std::chrono::duration<double>(opts_.slow_callback).count());
  }
}

} // namespace corio
