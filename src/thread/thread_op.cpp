#include "corio/detail/thread_op.hpp"

#include "corio/event_loop.hpp"

namespace corio::detail {

namespace {

/// The completion posted to the loop: holds a reference, so the operation lives until it ran or the
/// loop dropped it (closed meanwhile).
class completion {
public:
  explicit completion(thread_op* op) noexcept : op_(op) { op_->retain(); }
  completion(completion&& o) noexcept : op_(std::exchange(o.op_, nullptr)) {}
  completion(const completion&) = delete;
  completion& operator=(const completion&) = delete;
  ~completion() {
    if (op_ != nullptr)
      op_->release();
  }
  void operator()() const noexcept {
    if (op_->waiter != nullptr) // null: the awaiter was cancelled or destroyed after we were posted
      op_->waiter->complete();
  }

private:
  thread_op* op_;
};

} // namespace

void thread_op::run() noexcept {
  bool wanted;
  {
    std::lock_guard lock(mutex_);
    wanted = loop_ != nullptr;
  }
  if (wanted) // else: cancelled before it started, as a concurrent.futures.Future that is cancelled
    invoke();
  {
    // Held while posting: abandon() waits for it, so the loop cannot go away under call_soon_threadsafe.
    std::lock_guard lock(mutex_);
    if (loop_ != nullptr)
      loop_->call_soon_threadsafe(completion(this));
  }
  release(); // the pool's reference
}

} // namespace corio::detail
