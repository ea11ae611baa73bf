// Delegation chains: the machinery shared by generator<T> and coroutine<Y, S, R> (PEP 380 `yield from`).
//
// A chain is a root frame plus the frames it delegates to, innermost last. The driver (next/send/throw_/
// close, an iterator) only talks to the root. The root remembers the innermost frame (`active`) and the
// driver resumes that frame directly, so a yield, a send or a throw costs O(1) at any depth.
//
// No frame ever resumes another one. Starting a sub-coroutine, finishing one and yielding all suspend back
// to the driver's trampoline (`drive`), which resumes `active` again until something was yielded or the
// root finished. The stack therefore stays flat however deep the chain is — symmetric transfer is not a
// tail call on g++ 12 (HAZARDS.md §1), so we do not rely on it.
#pragma once

#include <atomic>
#include <concepts>
#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "corio/errors.hpp"

namespace corio::detail {

// Where a frame is. The per-element path does not read it: on a root, `value` is set exactly when the
// chain waits at a yield, so "may I resume?" and "did it yield?" are one test of `value` each, and the
// only store the driver makes before resuming (clearing `value`) also marks the chain as running.
enum class chain_state : unsigned char {
  initial,   // created; the body has not started (Python: gi_frame.f_lasti == -1)
  started,   // waiting at a co_yield if `value` is set, else running (Python: gi_running)
  finished,  // the root reached its final suspend, or the delegation to this frame ended
  delegated, // a non-root frame of another chain: only that chain's driver resumes it
};

/// throw_() and close() raise their exception at the innermost frame's co_yield. Instead of a field of
/// the frame that every resumed co_yield would have to load and test, the exception waits in a
/// thread-local slot, and this process-wide count says whether any thread has one waiting: the
/// per-element path tests one global word. The count is non-zero only between throw_()/close() setting
/// the slot and the resumed co_yield taking it — the first code that runs after the driver resumes the
/// frame — so other threads see it set for a moment at most, and then only take the slow path.
extern std::atomic<unsigned> throws_waiting;
/// throw_()/close(): `e` is raised by the next co_yield this thread resumes.
void set_pending_throw(std::exception_ptr e) noexcept;
/// After the resumption: forgets the exception if no co_yield took it (a defensive no-op).
void clear_pending_throw() noexcept;
/// A co_yield that saw throws_waiting set: raises this thread's waiting exception, if any.
[[gnu::cold]] void raise_pending_throw();

/// Every co_yield does this when it resumes.
[[gnu::always_inline]] inline void raise_if_thrown() {
  if (throws_waiting.load(std::memory_order_relaxed) != 0) [[unlikely]]
    raise_pending_throw();
}

/// One frame of a chain. Every generator/coroutine promise derives from it; it never moves.
struct chain_link {
  chain_link() = default;
  chain_link(const chain_link&) = delete;
  chain_link& operator=(const chain_link&) = delete;

  // Root only, used by the driver on every element: kept first, next to each other.
  std::coroutine_handle<> leaf;             // the innermost frame's handle: the one the driver resumes
  void* value = nullptr;                    // the object the leaf yielded (typed by chain_promise), alive
                                            // until the leaf resumes; null unless waiting at a yield
  chain_state state = chain_state::initial; // on a non-root frame: only `delegated` or `finished` matter
  bool closing = false; // this frame was in the chain when close() began: PEP 380 re-raises generator_exit
                        // in its delegator when it finishes without raising (a frame that close()'s
                        // handling delegates to afterwards finishes normally)
  bool taken = false;   // generator root only: next() moved the current element out, so begin() moves on

  std::coroutine_handle<> self;             // this frame
  chain_link* root = this;                  // the outermost frame of our chain
  chain_link* active = this;                // root only: the innermost frame (`leaf` is its handle)
  chain_link* parent = nullptr;             // the frame delegating to us, null unless delegated to
  std::coroutine_handle<>* owner = nullptr; // the handle slot owning us while delegated to (see destroy_chain)
  std::exception_ptr exception;             // escaped this frame: the parent or the driver rethrows it

  /// Called by the promise's constructor: a frame starts as the only frame of its own chain.
  void attach(std::coroutine_handle<> h) noexcept { self = leaf = h; }
  /// Root only: makes `f` the frame the driver resumes next.
  void set_active(chain_link* f) noexcept {
    active = f;
    leaf = f->self;
  }

  // Out of line: inlined, its exception_ptr temporaries give every frame a stack frame of its own,
  // set up and torn down on each resumption.
  [[gnu::noinline, gnu::cold]] void unhandled_exception() noexcept { exception = std::current_exception(); }

  struct final_awaiter {
    static constexpr bool await_ready() noexcept { return false; }
    template <class P> static void await_suspend(std::coroutine_handle<P> h) noexcept {
      chain_link& f = h.promise();
      if (f.parent != nullptr)
        f.root->set_active(f.parent); // the trampoline resumes the parent next
      else
        f.state = chain_state::finished; // `value` is null: it was cleared before this resumption
    }
    static constexpr void await_resume() noexcept {}
  };
  static final_awaiter final_suspend() noexcept { return {}; }
  static std::suspend_always initial_suspend() noexcept { return {}; }
};

[[noreturn]] void throw_already_executing();

/// True while the frame's chain runs, or while it is delegated to (it then belongs to its delegator's
/// chain): it may not be driven then.
[[nodiscard]] inline bool executing(const chain_link& f) noexcept {
  return f.state == chain_state::delegated || (f.state == chain_state::started && f.value == nullptr);
}
/// close(): marks (or unmarks) every frame of root's chain, innermost to root: O(depth), once per close.
inline void mark_closing(chain_link& root, bool on) noexcept {
  for (chain_link* f = root.active; f != nullptr; f = f->parent)
    f->closing = on;
}
/// After a close() or throw_(generator_exit) left the chain at a yield: true if a frame below the root
/// that was asked to close answered with that yield (Python: "generator ignored GeneratorExit").
[[nodiscard]] inline bool delegate_closing(const chain_link& root) noexcept {
  for (const chain_link* f = root.active; f != &root; f = f->parent)
    if (f->closing)
      return true;
  return false;
}
inline void check_not_executing(const chain_link& f) {
  if (executing(f)) [[unlikely]]
    throw_already_executing();
}

/// The rest of the trampoline, after a resumption that did not yield: a frame started or finished a
/// delegation (resume the new innermost frame), or the root finished.
[[gnu::noinline]] inline void drive_on(chain_link& root) {
  while (root.value == nullptr && root.state != chain_state::finished)
    root.leaf.resume();
}

/// The trampoline: resume the innermost frame until the chain yields (`value` set) or the root
/// finishes. The common case — the innermost frame yields — is a single resume. Frames never throw out
/// of resume(): unhandled_exception() stores the exception in the frame. The caller made sure the chain
/// waits at a yield, or has not started and is now `started`.
inline void drive(chain_link& root) {
  root.value = nullptr;
  root.leaf.resume();
  if (root.value == nullptr) [[unlikely]]
    drive_on(root);
}

/// Destroys a suspended chain from the leaf up to the root in a loop, so a 100k-deep chain does not
/// recurse (HAZARDS.md §5). Each frame's owner slot is cleared first, so destroying the parent frame —
/// which holds the child's generator object — does not destroy the child a second time. Out of line:
/// inlined into the destroy path of every frame that delegates, it costs those frames registers saved
/// and restored on each resumption.
[[gnu::noinline]] inline void destroy_chain(chain_link& root) noexcept {
  chain_link* f = root.active;
  while (f != &root) {
    chain_link* parent = f->parent;
    *f->owner = nullptr;
    f->self.destroy();
    f = parent;
  }
  root.self.destroy();
}

/// Rethrows and clears `e`. Out of line: it keeps the exception_ptr temporaries off the hot paths.
[[noreturn, gnu::noinline, gnu::cold]] inline void rethrow_now(std::exception_ptr& e) {
  std::rethrow_exception(std::exchange(e, nullptr));
}
/// Rethrows and clears `e` if it is set.
inline void rethrow_if(std::exception_ptr& e) {
  if (e) [[unlikely]]
    rethrow_now(e);
}

/// The awaiter of a `co_yield` (the yielded object is already published on the root). On resumption it
/// raises what throw_()/close() asked for and, in a chain with a sent type S, hands over the sent value.
template <class Root, class S> struct yield_awaiter {
  Root* frame; // the yielding frame; its root is looked up again on resumption, since a suspended
               // coroutine may be delegated to (re-rooted) before it resumes

  explicit yield_awaiter(Root* r) noexcept : frame(r) {}
  static constexpr bool await_ready() noexcept { return false; }
  static constexpr void await_suspend(std::coroutine_handle<>) noexcept {}
  S await_resume() {
    raise_if_thrown();
    return S(std::move(*frame->root_promise().send));
  }
};
/// Without a sent type the awaiter needs nothing from the frame: resuming a generator's co_yield is a
/// single test of throws_waiting.
template <class Root> struct yield_awaiter<Root, void> {
  explicit yield_awaiter(Root*) noexcept {}
  static constexpr bool await_ready() noexcept { return false; }
  static constexpr void await_suspend(std::coroutine_handle<>) noexcept {}
  static void await_resume() { raise_if_thrown(); }
};

/// A yield of an lvalue into a chain that hands out mutable references: the awaiter keeps a copy, so the
/// consumer can modify or move the object without touching the coroutine's own variable.
template <class Root, class S> struct copy_yield_awaiter : yield_awaiter<Root, S> {
  std::remove_cv_t<typename Root::yield_type> copy;

  // yield_value() returns the awaiter as a prvalue, so it is constructed in place in the frame (it is not
  // movable, which guarantees it): `copy` is at its final address here.
  template <class U> copy_yield_awaiter(Root* r, U&& u) : yield_awaiter<Root, S>(r), copy(std::forward<U>(u)) {
    r->publish(&copy);
  }
  copy_yield_awaiter(const copy_yield_awaiter&) = delete;
  copy_yield_awaiter& operator=(const copy_yield_awaiter&) = delete;
};

/// The sent value slot of a root: a pointer to the driver's argument, valid during the resumption.
template <class S> struct send_slot { S* send = nullptr; };
template <> struct send_slot<void> {};

/// The part of a promise that depends on the yielded type Y (an object type, possibly const) and the
/// sent type S. All frames of one chain derive from the same chain_promise<Y, S, ByRef>. ByRef chains
/// (generator<T&>, generator<const T&>) hand out references to lvalues as they are; the others hand
/// out mutable references, so an lvalue is copied first.
template <class Y, class S, bool ByRef> struct chain_promise : chain_link, send_slot<S> {
  using send_type = S;
  using yield_type = Y;

  /// Root only: the object the leaf yielded (null unless the chain waits at a yield).
  [[nodiscard]] Y* element() const noexcept { return static_cast<Y*>(value); }

  [[nodiscard]] chain_promise& root_promise() noexcept { return static_cast<chain_promise&>(*root); }

  /// Publishes a yielded object on the root. Called just before the frame suspends.
  void publish(Y* v) noexcept { root->value = const_cast<std::remove_cv_t<Y>*>(v); }

  /// Yielding an rvalue hands out its address (the temporary lives until the leaf resumes): no copy.
  yield_awaiter<chain_promise, S> yield_value(Y&& v) noexcept {
    publish(std::addressof(v));
    return yield_awaiter<chain_promise, S>(this);
  }
  yield_awaiter<chain_promise, S> yield_value(Y& v) noexcept requires ByRef {
    publish(std::addressof(v));
    return yield_awaiter<chain_promise, S>(this);
  }
  copy_yield_awaiter<chain_promise, S> yield_value(const Y& v) requires(!ByRef && std::is_copy_constructible_v<Y>) {
    return {this, v};
  }
  /// Yielding anything else converts it to Y first.
  template <class U>
  requires(!std::is_same_v<std::remove_cvref_t<U>, std::remove_cv_t<Y>> &&
           std::is_constructible_v<std::remove_cv_t<Y>, U>) copy_yield_awaiter<chain_promise, S> yield_value(U&& u) {
    return {this, std::forward<U>(u)};
  }
};

/// True when `Source` (a generator or coroutine, or a reference to one) can join a chain of `Chain`.
template <class Source, class Chain>
concept chain_source = requires {
  typename std::remove_cvref_t<Source>::promise_type;
}
&&std::derived_from<typename std::remove_cvref_t<Source>::promise_type, Chain>;

/// Grants the delegation awaiter access to the internals of generator and coroutine objects.
struct chain_access {
  template <class C> static std::coroutine_handle<>& handle(C& c) noexcept { return c.handle_; }
  template <class C> static chain_link& link(C& c) noexcept { return c.promise(); }
  template <class C> static decltype(auto) take_result(C& c) { return c.take_result(); }
};

/// Python's "None" for a delegation that resumes a sub-coroutine already suspended at a yield: PEP 380
/// starts with next(sub), so the sub's pending `co_yield` evaluates to S{}.
template <class S> struct resume_value {
  std::optional<S> nothing;
  void prime(send_slot<S>& root) {
    if constexpr (std::default_initializable<S>)
      root.send = &nothing.emplace();
    else
      throw coroutine_error("yield_from: the coroutine waits at a yield for a value, and S has no default");
  }
};
template <> struct resume_value<void> {
  static void prime(send_slot<void>&) noexcept {}
};

/// `co_await yield_from(child)` / `co_yield yield_from(child)`: makes `child` the innermost frame of the
/// parent's chain and, once it finishes, evaluates to its return value (or rethrows its exception).
/// `Child` is the child object (owned by the awaiter) or a reference to it; `Chain` is the parent's
/// chain_promise type, which the child's promise derives from too.
template <class Child, class Chain> struct delegate_awaiter : resume_value<typename Chain::send_type> {
  Child child;
  Chain* parent;

  delegate_awaiter(Child&& c, Chain* p) : child(std::forward<Child>(c)), parent(p) {}

  [[nodiscard]] bool await_ready() {
    std::coroutine_handle<>& h = chain_access::handle(child);
    if (!h)
      return true; // a coroutine that already finished (its frame is gone)
    chain_link& c = chain_access::link(child);
    check_not_executing(c);
    return h.done();
  }
  void await_suspend(std::coroutine_handle<>) {
    chain_link& c = chain_access::link(child);
    Chain& root = parent->root_promise();
    if (c.state == chain_state::started)
      this->prime(root); // the child sits at a yield: resume it with "nothing"
    // The child may itself delegate (a coroutine driven on its own first): its whole chain joins ours,
    // and the driver resumes its innermost frame.
    chain_link* leaf = c.active;
    for (chain_link* f = leaf; f != &c; f = f->parent)
      f->root = &root;
    c.parent = parent;
    c.state = chain_state::delegated;
    c.value = nullptr; // it no longer waits at a yield of its own
    c.root = &root;
    c.owner = &chain_access::handle(child);
    root.set_active(leaf); // the trampoline resumes the child next
  }
  decltype(auto) await_resume() {
    if (chain_access::handle(child)) {
      chain_link& c = chain_access::link(child);
      c.parent = nullptr;
      c.root = &c;
      c.active = &c;
      c.leaf = c.self;
      c.owner = nullptr;
      c.state = chain_state::finished; // so that driving it afterwards (an lvalue source) is a no-op
      // Taken, not read: a named source delegated to again later must not raise it a second time.
      const bool closed_by_close = std::exchange(c.closing, false);
      rethrow_if(c.exception);
      // PEP 380: if close() made the child finish without raising, generator_exit is re-raised here.
      if (closed_by_close)
        throw generator_exit{};
    }
    return chain_access::take_result(child);
  }
};

} // namespace corio::detail
