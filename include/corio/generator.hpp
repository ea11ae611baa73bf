// corio::generator<T>: a lazy, synchronous generator (PEP 255) with O(1) delegation (PEP 380).
#pragma once

#include <coroutine>
#include <cstddef>
#include <iterator>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>

#include "corio/detail/chain.hpp"
#include "corio/errors.hpp"
#include "corio/none.hpp"
#include "corio/yield_from.hpp"

namespace corio {

/// A generator of T. The body starts at the first `begin()` or `next()`, runs to its next `co_yield`,
/// and stops there until asked for the next value.
///
/// - `generator<T>` hands out `T&` to the yielded object: a yielded rvalue is handed out in place (no
///   copy; the consumer may move from it), a yielded lvalue is copied first so the body's own variable
///   is never changed behind its back. `generator<const T&>` / `generator<T&>` hand out lvalues as they are.
/// - `generator<>` (or `generator<void>`) yields `corio::none`: the article's bare `yield`.
/// - `co_yield corio::yield_from(g)` yields everything `g` (another generator<T>, or any range) yields,
///   at O(1) per element whatever the nesting depth, and with a flat stack at any depth.
/// - An exception escaping the body is rethrown to the consumer by `begin()`, `++it` or `next()`; the
///   generator is finished afterwards. Destroying an unfinished generator runs the destructors of the
///   body's live locals (innermost delegated generator first) and nothing else.
template <class T = none_t> class [[nodiscard]] generator {
  static constexpr bool by_ref = std::is_reference_v<T>;
  using object = std::conditional_t<by_ref, std::remove_reference_t<T>, detail::void_to_none_t<T>>;
  using chain = detail::chain_promise<object, void, by_ref>;

public:
  using value_type = std::remove_cv_t<object>;
  using reference = object&;

  class promise_type : public chain {
  public:
    promise_type() noexcept { this->attach(std::coroutine_handle<promise_type>::from_promise(*this)); }
    generator get_return_object() noexcept { return generator(this->self); }
    static void return_void() noexcept {}

    using chain::yield_value;
    /// `co_yield yield_from(sub)`: sub is a generator<T> or a coroutine<T, void, R> (lvalue or rvalue),
    /// or any input range.
    template <class Source> auto yield_value(yield_from_t<Source> request) {
      if constexpr (detail::chain_source<Source, chain>)
        return detail::delegate_awaiter<Source, chain>{std::forward<Source>(request.source), this};
      else
        return detail::delegate_awaiter<generator, chain>{from_range<Source>(std::forward<Source>(request.source)),
                                                          this};
    }
    /// Generators cannot await: only `co_yield` suspends them.
    template <class U> void await_transform(U&&) = delete;
  };

  class iterator {
  public:
    using value_type = generator::value_type;
    using difference_type = std::ptrdiff_t;
    using reference = generator::reference;

    iterator() = default;
    reference operator*() const noexcept { return *root_->element(); }
    [[gnu::always_inline]] iterator& operator++() {
      advance(*root_);
      return *this;
    }
    void operator++(int) { ++*this; }
    /// At the end once the generator finished. "Not at a yield" is the test — it also holds while the
    /// body runs or is delegated to, when this iterator cannot get another element either (begin()
    /// reports those as already_executing_error) — since it is the test advance() makes anyway.
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return it.root_ == nullptr || it.root_->value == nullptr;
    }

  private:
    friend generator;
    explicit iterator(chain* root) noexcept : root_(root) {}
    chain* root_ = nullptr;
  };

  generator() noexcept = default;
  generator(generator&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  generator& operator=(generator other) noexcept {
    std::swap(handle_, other.handle_);
    return *this;
  }
  ~generator() {
    if (handle_)
      detail::destroy_chain(promise());
  }

  /// Starts the body on the first call; later calls return an iterator at the current element, or at
  /// the one after it if next() took the current one (as in Python, `next(g)` then `for x in g` goes on
  /// with the following element). Throws already_executing_error from inside the body, or while the
  /// generator is delegated to.
  iterator begin() {
    if (!handle_)
      return iterator{};
    chain& p = promise();
    if (p.value == nullptr)
      advance_slow(p); // starts it, or throws, or nothing if finished
    else if (p.taken) [[unlikely]]
      after_next(p);
    return iterator{&p};
  }
  static std::default_sentinel_t end() noexcept { return {}; }

  /// Python's next(): the next value (moved out of a by-value generator), or nullopt once exhausted.
  std::optional<value_type> next() {
    if (done())
      return std::nullopt;
    chain& p = promise();
    advance(p);
    if (p.value == nullptr)
      return std::nullopt;
    p.taken = true;
    if constexpr (by_ref)
      return std::optional<value_type>(*p.element());
    else
      return std::optional<value_type>(std::move(*p.element()));
  }

  /// True once the body has finished (or for an empty, moved-from generator).
  [[nodiscard]] bool done() const noexcept { return !handle_ || promise().state == detail::chain_state::finished; }

private:
  friend detail::chain_access;
  explicit generator(std::coroutine_handle<> h) noexcept : handle_(h) {}

  promise_type& promise() const noexcept {
    return std::coroutine_handle<promise_type>::from_address(handle_.address()).promise();
  }
  static void take_result() noexcept {}

  /// Resumes the chain to its next yield. The per-element path — the innermost frame yields again —
  /// is a test, a store, an indirect call and a test; it is inlined into the consumer's loop. Starting,
  /// finishing, delegating and misuse take the out-of-line paths.
  [[gnu::always_inline]] static void advance(chain& root) {
    if (root.value == nullptr) [[unlikely]]
      return advance_slow(root);
    root.value = nullptr; // the chain runs (see chain_state)
    root.leaf.resume();
    if (root.value == nullptr) [[unlikely]]
      after_resume(root);
  }
  /// advance() on a chain that does not wait at a yield: not started yet, finished, or misused.
  [[gnu::noinline]] static void advance_slow(chain& root) {
    if (root.state == detail::chain_state::finished)
      return;
    detail::check_not_executing(root);
    root.state = detail::chain_state::started;
    detail::drive(root);
    if (root.value == nullptr)
      detail::rethrow_if(root.exception);
  }
  /// begin() after next() took the current element: move past it.
  [[gnu::noinline]] static void after_next(chain& root) {
    root.taken = false;
    advance(root);
  }
  /// The resumption did not end at a yield: run the trampoline on, then report what escaped the root.
  [[gnu::noinline]] static void after_resume(chain& root) {
    detail::drive_on(root);
    if (root.value == nullptr)
      detail::rethrow_if(root.exception);
  }

  /// Adapts a range for yield_from: an owned range is consumed (elements are moved out), a borrowed one
  /// is iterated in place.
  template <class Range> static generator from_range(Range range) {
    if constexpr (std::is_reference_v<Range>) {
      for (auto&& element : range)
        co_yield element;
    } else {
      for (auto&& element : range)
        co_yield std::move(element);
    }
  }

  std::coroutine_handle<> handle_;
};

/// Python's next(g): the next value, or corio::stop_iteration once the generator is exhausted.
template <class T> typename generator<T>::value_type next(generator<T>& g) {
  auto value = g.next();
  if (!value)
    throw stop_iteration();
  return std::move(*value);
}

} // namespace corio

namespace std::ranges {
/// A generator is a move-only view, so it can be piped into range adaptors.
template <class T> inline constexpr bool enable_view<corio::generator<T>> = true;
} // namespace std::ranges
