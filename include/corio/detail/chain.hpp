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

#include <concepts>
#include <coroutine>
#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

#include "corio/errors.hpp"

namespace corio::detail {

enum class chain_state : unsigned char {
  running,  // the driver is resuming frames
  yielded,  // the leaf yielded: the root's value pointer is set
  finished, // the root frame reached its final suspend
};

/// One frame of a chain. Every generator/coroutine promise derives from it; it never moves.
struct chain_link {
  chain_link() = default;
  chain_link(const chain_link&) = delete;
  chain_link& operator=(const chain_link&) = delete;

  std::coroutine_handle<> self;              // this frame
  chain_link* parent = nullptr;              // the frame delegating to us, null unless delegated to
  chain_link* root = this;                   // the outermost frame of our chain
  std::coroutine_handle<>* owner = nullptr;  // the handle slot owning us while delegated to (see destroy_chain)
  std::exception_ptr exception;              // escaped this frame: the parent or the driver rethrows it

  // The fields below are used on the root only.
  chain_link* active = this;                 // innermost frame: the one the driver resumes
  std::exception_ptr pending;                // raised at the leaf's suspension point on resumption
  chain_state state = chain_state::running;
  bool started = false;                      // resumed at least once (Python: gi_frame.f_lasti != -1)
  bool executing = false;                    // the driver is inside drive() (Python: gi_running)
  bool closing = false;                      // close() is in progress: PEP 380 re-raises generator_exit

  [[nodiscard]] bool delegated() const noexcept { return parent != nullptr; }

  void unhandled_exception() noexcept { exception = std::current_exception(); }

  struct final_awaiter {
    static constexpr bool await_ready() noexcept { return false; }
    template <class P> static void await_suspend(std::coroutine_handle<P> h) noexcept {
      chain_link& f = h.promise();
      if (f.parent != nullptr)
        f.root->active = f.parent; // the trampoline resumes the parent next
      else
        f.state = chain_state::finished;
    }
    static constexpr void await_resume() noexcept {}
  };
  static final_awaiter final_suspend() noexcept { return {}; }
  static std::suspend_always initial_suspend() noexcept { return {}; }
};

/// Throws if the chain rooted at `root` may not be resumed now (it is running, or delegated to).
inline void check_not_executing(const chain_link& root) {
  if (root.executing || root.delegated())
    throw already_executing_error();
}

/// The trampoline: resume the innermost frame until the chain yields or the root finishes.
inline void drive(chain_link& root) {
  root.state = chain_state::running;
  root.started = true;
  root.executing = true;
  do
    root.active->self.resume();
  while (root.state == chain_state::running);
  root.executing = false;
}

/// Destroys a suspended chain from the leaf up to the root in a loop, so a 100k-deep chain does not
/// recurse (HAZARDS.md §5). Each frame's owner slot is cleared first, so destroying the parent frame —
/// which holds the child's generator object — does not destroy the child a second time.
inline void destroy_chain(chain_link& root) noexcept {
  chain_link* f = root.active;
  while (f != &root) {
    chain_link* parent = f->parent;
    *f->owner = nullptr;
    f->self.destroy();
    f = parent;
  }
  root.self.destroy();
}

/// Rethrows and clears `e` if it is set.
inline void rethrow_if(std::exception_ptr& e) {
  if (e)
    std::rethrow_exception(std::exchange(e, nullptr));
}

/// The awaiter of a `co_yield`: it publishes the yielded object on the root and, on resumption, raises
/// what throw_()/close() asked for, or hands over the sent value. Root is the chain_promise type.
template <class Root> struct yield_awaiter {
  Root* root;
  decltype(Root::value) value;

  static constexpr bool await_ready() noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) noexcept {
    root->value = value;
    root->state = chain_state::yielded;
  }
  decltype(auto) await_resume() {
    rethrow_if(root->pending);
    if constexpr (requires { root->send; })
      return std::remove_pointer_t<decltype(root->send)>(std::move(*root->send));
  }
};

/// A yield of an lvalue into a chain that hands out mutable references: the awaiter keeps a copy, so the
/// consumer can modify or move the object without touching the coroutine's own variable.
template <class Root> struct copy_yield_awaiter : yield_awaiter<Root> {
  std::remove_cv_t<std::remove_pointer_t<decltype(Root::value)>> copy;

  template <class U>
  copy_yield_awaiter(Root* r, U&& u) : yield_awaiter<Root>{r, nullptr}, copy(std::forward<U>(u)) {}
  void await_suspend(std::coroutine_handle<> h) noexcept {
    this->value = &copy;
    yield_awaiter<Root>::await_suspend(h);
  }
};

/// The sent value slot of a root: a pointer to the driver's argument, valid during the resumption.
template <class S> struct send_slot {
  S* send = nullptr;
};
template <> struct send_slot<void> {};

/// The part of a promise that depends on the yielded type Y (an object type, possibly const) and the
/// sent type S. All frames of one chain derive from the same chain_promise<Y, S, ByRef>. ByRef chains
/// (generator<T&>, generator<const T&>) hand out references to lvalues as they are; the others hand
/// out mutable references, so an lvalue is copied first.
template <class Y, class S, bool ByRef> struct chain_promise : chain_link, send_slot<S> {
  using root_type = chain_promise;
  Y* value = nullptr; // root only: the object yielded by the leaf, alive until the leaf resumes

  [[nodiscard]] chain_promise& root_promise() noexcept { return static_cast<chain_promise&>(*root); }

  /// Yielding an rvalue hands out its address (the temporary lives until the leaf resumes): no copy.
  yield_awaiter<chain_promise> yield_value(Y&& v) noexcept { return {&root_promise(), std::addressof(v)}; }
  yield_awaiter<chain_promise> yield_value(Y& v) noexcept
    requires ByRef
  {
    return {&root_promise(), std::addressof(v)};
  }
  copy_yield_awaiter<chain_promise> yield_value(const Y& v)
    requires(!ByRef && std::is_copy_constructible_v<Y>)
  {
    return {&root_promise(), v};
  }
  /// Yielding anything else converts it to Y first.
  template <class U>
    requires(!std::is_same_v<std::remove_cvref_t<U>, std::remove_cv_t<Y>> &&
             std::is_constructible_v<std::remove_cv_t<Y>, U>)
  copy_yield_awaiter<chain_promise> yield_value(U&& u) {
    return {&root_promise(), std::forward<U>(u)};
  }
};

/// True when `Source` (a generator or coroutine, or a reference to one) can join a chain of `Chain`.
template <class Source, class Chain>
concept chain_source = requires { typename std::remove_cvref_t<Source>::promise_type; } &&
                       std::derived_from<typename std::remove_cvref_t<Source>::promise_type, Chain>;

/// Grants the delegation awaiter access to the internals of generator and coroutine objects.
struct chain_access {
  template <class C> static std::coroutine_handle<>& handle(C& c) noexcept { return c.handle_; }
  template <class C> static chain_link& link(C& c) noexcept { return c.promise(); }
  template <class C> static decltype(auto) take_result(C& c) { return c.take_result(); }
};

/// `co_await yield_from(child)` / `co_yield yield_from(child)`: makes `child` the innermost frame of the
/// parent's chain and, once it finishes, evaluates to its return value (or rethrows its exception).
/// `Child` is the child object (owned by the awaiter) or a reference to it.
template <class Child> struct delegate_awaiter {
  Child child;
  chain_link* parent;

  [[nodiscard]] bool await_ready() {
    std::coroutine_handle<>& h = chain_access::handle(child);
    if (!h)
      return true; // a coroutine that already finished (its frame is gone)
    chain_link& c = chain_access::link(child);
    if (c.executing || c.delegated() || &c == parent->root)
      throw already_executing_error();
    return h.done();
  }
  void await_suspend(std::coroutine_handle<>) noexcept {
    chain_link& c = chain_access::link(child);
    c.parent = parent;
    c.root = parent->root;
    c.owner = &chain_access::handle(child);
    c.started = true;
    parent->root->active = &c; // the trampoline resumes the child next
  }
  decltype(auto) await_resume() {
    if (chain_access::handle(child)) {
      chain_link& c = chain_access::link(child);
      c.parent = nullptr;
      c.root = &c;
      c.owner = nullptr;
      rethrow_if(c.exception);
      // PEP 380: if close() made the child finish without raising, generator_exit is re-raised here.
      if (parent->root->closing)
        throw generator_exit{};
    }
    return chain_access::take_result(child);
  }
};

} // namespace corio::detail
