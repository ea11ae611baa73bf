// corio::context_var, corio::context, copy_context(): asyncio's contextvars — values that follow a task
// and the tasks it spawns (a request id for logging, a deadline, a tracing span), without globals.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "corio/errors.hpp"

namespace corio {

template <class T> class context_var;

namespace detail {

struct task_state;

/// An immutable set of (variable id, value) pairs: a context's state. Shared between the contexts that
/// copied it; a set() makes a new one (copy on write).
struct context_data;
using context_ptr = std::shared_ptr<const context_data>;

/// True once any context_var was set anywhere: until then spawning skips the context copy entirely.
inline std::atomic<bool> contexts_used{false};

/// Where set() writes and get() reads now: the context a context::run() entered on this thread, else the
/// running task's, else this thread's own.
context_ptr& current_context_slot();
[[nodiscard]] const context_ptr& current_context() noexcept;
/// The value of variable `id` in `c`; null if it has none.
[[nodiscard]] const std::shared_ptr<const void>* context_find(const context_ptr& c, std::uint64_t id) noexcept;
/// `c` with variable `id` set to `value` (null: removed).
[[nodiscard]] context_ptr context_with(const context_ptr& c, std::uint64_t id, std::shared_ptr<const void> value);
/// The slot a context::run() entered on this thread, if it applies to the task running now `t` (null
/// outside tasks): a task that runs inside that run(), such as an eager child, keeps to its own.
[[nodiscard]] context_ptr* entered_context_slot(const task_state* t) noexcept;
/// Who owns the slot current_context_slot() gives: a task's id, or 0 with this thread's context (for
/// checking tokens).
[[nodiscard]] std::uint64_t context_owner() noexcept;
[[nodiscard]] std::uint64_t new_context_var_id() noexcept;
/// A new task starts with a copy of the current context (spawn calls it once a variable was ever set).
void inherit_context(task_state& t);

} // namespace detail

/// contextvars' LookupError: context_var::get() of a variable with no value and no default.
class lookup_error : public std::out_of_range {
public:
  using std::out_of_range::out_of_range;
};

/// A snapshot of every context variable (contextvars.Context): copy_context() takes one; run(fn) calls fn
/// with it as the current context, so fn's get() reads it, its set() changes it and the tasks fn spawns
/// start from it. Copyable (copies are independent, and a copy is not entered); empty by default.
class context {
public:
  context() noexcept = default;
  context(const context& other) noexcept : data_(other.data_) {}
  /// Not into a context that is entered (run() under way): its fn would see its values change.
  context& operator=(const context& other) noexcept {
    data_ = other.data_;
    return *this;
  }

  /// Calls fn() with this context current on this thread (Context.run), and returns what fn returns.
  /// What fn sets stays in this context, not in the caller's. Not for coroutines: a task spawned inside
  /// gets a copy of this context, but awaiting inside fn is not possible (fn is an ordinary call).
  /// One run() at a time: invalid_state_error if the context is already entered, by a run() on this
  /// thread (nested) or on another one (Python's RuntimeError "cannot enter context: ... is already
  /// entered"); give each thread a copy of its own instead.
  template <class F> decltype(auto) run(F&& fn) {
    if (entered_.exchange(true, std::memory_order_acquire))
      throw invalid_state_error("corio: context::run(): cannot enter the context: it is already entered (by a "
                                "run() on this or another thread; each thread needs a copy of its own)");
    struct enter {
      context& ctx;
      entered previous;
      explicit enter(context& c) noexcept : ctx(c), previous(std::exchange(now(), entered{&c.data_, running_task()})) {}
      ~enter() {
        now() = previous;
        ctx.entered_.store(false, std::memory_order_release); // what fn set is seen by the next run()
      }
    } guard(*this);
    return std::forward<F>(fn)();
  }

  /// The context's value of `var`; nullopt if it has none (Context.get(var)).
  template <class T> [[nodiscard]] std::optional<T> get(const context_var<T>& var) const;

private:
  friend context copy_context();
  friend detail::context_ptr* detail::entered_context_slot(const detail::task_state* t) noexcept;
  /// The context run() entered on this thread, and the task running then (a task that runs inside fn,
  /// such as one spawn_eager starts, keeps to its own context).
  struct entered {
    detail::context_ptr* slot = nullptr;
    const detail::task_state* task = nullptr;
  };
  static entered& now() noexcept;
  static const detail::task_state* running_task() noexcept;

  detail::context_ptr data_;
  std::atomic<bool> entered_{false}; // a run() is under way (on any thread)
};

/// The current context, copied (contextvars.copy_context()).
[[nodiscard]] context copy_context();

/// A context variable (contextvars.ContextVar): get() gives the value set in the current context —
/// the running task's — or inherited from the task that spawned it, else the default. Every task starts
/// with a copy of its spawner's context, as asyncio's tasks do: what a child sets is not seen by its
/// parent, nor by tasks already spawned. `co_await f()` runs f in the caller's task, hence in its
/// context. Outside any task, each thread has its own context; to_thread() and run_in_executor() run
/// the call in a copy of the caller's (asyncio.to_thread); other threads start empty (hand them a
/// copy_context() and call context::run there). Use a variable on the threads of its loops; the values are
/// immutable once set (get() returns a copy), so several threads may hold copies of one context (copying
/// shares the values, not the object). One context object is entered by one context::run() at a time:
/// another run() of it, on any thread, raises invalid_state_error.
///
///     inline corio::context_var<std::string> request_id("request_id", "-");
///     request_id.set("r-42");                   // in this task and the tasks it spawns from now on
///     log(request_id.get());                    // "r-42"
template <class T> class context_var {
  static_assert(std::is_copy_constructible_v<T>, "corio: a context_var's type must be copyable");

public:
  /// What set() returns, for reset() (contextvars.Token): the value before, to put back.
  class token {
  public:
    [[nodiscard]] const context_var& var() const noexcept { return *var_; }
    /// The value before set(), nullopt if there was none (Token.old_value / Token.MISSING).
    [[nodiscard]] std::optional<T> old_value() const {
      return old_ ? std::optional<T>(*std::static_pointer_cast<const T>(old_)) : std::nullopt;
    }

  private:
    friend context_var;
    const context_var* var_ = nullptr;
    std::shared_ptr<const void> old_;
    std::uint64_t owner_ = 0;
    const void* slot_ = nullptr;
    bool used_ = false;
  };

  explicit context_var(std::string name) : name_(std::move(name)) {}
  context_var(std::string name, T default_value)
      : name_(std::move(name)), default_(std::make_shared<const T>(std::move(default_value))) {}
  context_var(const context_var&) = delete;
  context_var& operator=(const context_var&) = delete;

  [[nodiscard]] const std::string& name() const noexcept { return name_; }

  /// The value in the current context, else the default; lookup_error naming the variable if neither.
  [[nodiscard]] T get() const {
    if (const std::shared_ptr<const void>* v = detail::context_find(detail::current_context(), id_))
      return *std::static_pointer_cast<const T>(*v);
    if (default_)
      return *default_;
    throw lookup_error("corio: context_var '" + name_ + "' has no value in this context and no default");
  }
  /// The value in the current context, else `fallback` (ContextVar.get(default)).
  [[nodiscard]] T get(T fallback) const {
    if (const std::shared_ptr<const void>* v = detail::context_find(detail::current_context(), id_))
      return *std::static_pointer_cast<const T>(*v);
    return fallback;
  }
  /// True if the current context has a value for it (the default does not count).
  [[nodiscard]] bool has_value() const noexcept { return detail::context_find(detail::current_context(), id_); }

  /// Sets the value in the current context (ContextVar.set); the token puts the old one back.
  token set(T value) {
    detail::context_ptr& slot = detail::current_context_slot();
    token t;
    t.var_ = this;
    if (const std::shared_ptr<const void>* old = detail::context_find(slot, id_))
      t.old_ = *old;
    t.owner_ = detail::context_owner();
    t.slot_ = &slot;
    slot = detail::context_with(slot, id_, std::make_shared<const T>(std::move(value)));
    detail::contexts_used.store(true, std::memory_order_relaxed);
    return t;
  }

  /// Puts back the value from before `t`'s set() (ContextVar.reset). std::invalid_argument if `t` came
  /// from another variable or another context (task); invalid_state_error if it was used already.
  void reset(token& t) {
    if (t.var_ != this)
      throw std::invalid_argument("corio: context_var '" + name_ + "'.reset() with a token of another variable");
    if (t.used_)
      throw invalid_state_error("corio: context_var '" + name_ + "'.reset(): the token was used already");
    detail::context_ptr& slot = detail::current_context_slot();
    if (t.slot_ != &slot || t.owner_ != detail::context_owner())
      throw std::invalid_argument("corio: context_var '" + name_ +
                                  "'.reset(): the token was made in another context (task)");
    slot = detail::context_with(slot, id_, t.old_);
    t.used_ = true;
  }

private:
  friend class context;
  std::string name_;
  std::shared_ptr<const T> default_;
  std::uint64_t id_ = detail::new_context_var_id();
};

template <class T> std::optional<T> context::get(const context_var<T>& var) const {
  if (const std::shared_ptr<const void>* v = detail::context_find(data_, var.id_))
    return *std::static_pointer_cast<const T>(*v);
  return std::nullopt;
}

} // namespace corio
