// corio::gather: run several tasks concurrently and collect their results (asyncio.gather).
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "corio/event_loop.hpp"
#include "corio/none.hpp"
#include "corio/outcome.hpp"
#include "corio/spawn.hpp"
#include "corio/task.hpp"
#include "corio/wait.hpp"

namespace corio {

/// The tag of gather(return_exceptions, ...): exceptions become results instead of being raised.
struct return_exceptions_t {
  explicit constexpr return_exceptions_t() = default;
};
inline constexpr return_exceptions_t return_exceptions{};

namespace detail {

template <class A> struct gather_arg {};
template <class T> struct gather_arg<task<T>> { using type = T; };
template <class T> struct gather_arg<join_handle<T>> { using type = T; };
/// What gather() accepts: a task<T> (spawned when the gather is awaited) or a join_handle<T>.
template <class A>
concept gatherable = requires {
  typename gather_arg<std::remove_cvref_t<A>>::type;
};
template <class A> using gather_arg_t = typename gather_arg<std::remove_cvref_t<A>>::type;

/// One element of a gather's result: void becomes none_t; T& stays T& (in a tuple).
template <class T> using gather_value_t = void_to_none_t<T>;
/// The same in a std::vector, which cannot hold references.
template <class T> using gather_element_t =
    std::conditional_t<std::is_reference_v<T>, std::reference_wrapper<std::remove_reference_t<T>>, gather_value_t<T>>;

/// One awaitable of a gather: a task not spawned yet, and then the handle of its task.
template <class T> struct gather_child {
  using value_type = T;
  task<T> pending;
  join_handle<T> handle;

  explicit gather_child(task<T> t) noexcept : pending(std::move(t)) {}
  explicit gather_child(join_handle<T> h) noexcept : handle(std::move(h)) {}
  /// A join_handle passed in must be of `loop`'s task, or done (checked for all before any is started).
  void check(const event_loop& loop) const {
    if (handle.valid())
      check_loop(handle, &loop, "gather()");
  }
  void start(event_loop& loop) {
    if (handle.valid())
      return;
    if (!pending.valid())
      throw invalid_state_error("corio: gather() of an empty task or join_handle");
    handle = spawn(loop, std::move(pending));
  }
  /// The value for gather's result (the task succeeded).
  gather_value_t<T> value() {
    if constexpr (std::is_void_v<T>) {
      handle.result();
      return none;
    } else {
      return handle.result();
    }
  }
  /// The outcome for gather(return_exceptions, ...)'s result.
  template <class R> outcome<R> get_outcome() {
    if (std::exception_ptr e = handle.exception())
      return outcome<R>::failure(std::move(e));
    return outcome<R>::success(value());
  }
};

/// What the tuple and the vector forms of gather share: counting the children as they finish, the
/// first exception, and cancellation. Children are watched with done callbacks (see wait.hpp).
class gather_base : public multi_wait {
public:
  /// The awaiting task was cancelled: cancel every child not known to be finished, and keep waiting
  /// until all of them are (asyncio's gather; corio's `co_await handle` does the same). await_resume
  /// then raises cancelled_error.
  bool on_cancel() noexcept override {
    cancelling_ = true;
    for (std::size_t i = 0; i < reported_.size(); ++i)
      if (reported_[i] == 0)
        cancel_child(i); // with the awaiting task's cancel message, if it has one (asyncio)
    return false;
  }
  void on_completion(std::size_t index) override {
    record(index);
    if (settled())
      finish();
  }
  [[nodiscard]] const char* what() const noexcept override { return "gather()"; }

protected:
  gather_base(std::size_t n, bool return_exceptions) : reported_(n, 0), remaining_(n), collect_(return_exceptions) {}
  ~gather_base() = default;

  [[nodiscard]] virtual bool child_done(std::size_t i) = 0;
  [[nodiscard]] virtual std::exception_ptr child_exception(std::size_t i) = 0;
  virtual void watch_child(std::size_t i) = 0;
  virtual void cancel_child(std::size_t i) noexcept = 0;

  /// After the children were spawned: counts those already done, watches the others. True if there is
  /// nothing to wait for.
  bool begin() {
    if (std::exchange(begun_, true))
      throw invalid_state_error("corio: a gather can be awaited only once");
    for (std::size_t i = 0; i < reported_.size(); ++i)
      if (child_done(i))
        record(i);
    if (settled())
      return true;
    for (std::size_t i = 0; i < reported_.size(); ++i)
      if (reported_[i] == 0)
        watch_child(i);
    return false;
  }
  /// await_resume's first step: cancelled_error if the awaiting task is being cancelled, else the first
  /// exception of a child (unless collecting them).
  void check() const {
    check_cancel();
    if (!collect_ && first_error_)
      std::rethrow_exception(first_error_);
  }

private:
  void record(std::size_t i) {
    reported_[i] = 1;
    --remaining_;
    // The exception of every child that finishes while the gather waits is looked at (so it is not
    // reported as never retrieved, as in asyncio); the first one is the one gather raises.
    if (std::exception_ptr e = child_exception(i); e && !first_error_)
      first_error_ = std::move(e);
  }
  [[nodiscard]] bool settled() const noexcept { return remaining_ == 0 || (!collect_ && first_error_ && !cancelling_); }

  std::vector<char> reported_; // child i finished and was counted
  std::size_t remaining_;
  std::exception_ptr first_error_;
  bool collect_;
  bool cancelling_ = false;
  bool begun_ = false;
};

/// gather(aw...): a tuple of results.
template <bool Collect, class... Ts> class [[nodiscard]] gather_awaitable final : public gather_base {
public:
  using result_type =
      std::conditional_t<Collect, std::tuple<outcome<gather_value_t<Ts>>...>, std::tuple<gather_value_t<Ts>...>>;

  template <class... As> explicit gather_awaitable(As&&... as)
      : gather_base(sizeof...(Ts), Collect), children_(std::forward<As>(as)...) {}

  bool await_ready() {
    event_loop& loop = enter("gather()");
    std::apply([&loop](const auto&... c) { (c.check(loop), ...); }, children_);
    std::apply([&loop](auto&... c) { (c.start(loop), ...); }, children_);
    return begin();
  }
  void await_suspend(std::coroutine_handle<> h) { suspend(h); }
  result_type await_resume() {
    check();
    return std::apply(
        [](auto&... c) {
          if constexpr (Collect)
            return result_type(
                c.template get_outcome<gather_value_t<typename std::remove_reference_t<decltype(c)>::value_type>>()...);
          else
            return result_type(c.value()...);
        },
        children_);
  }

private:
  bool child_done(std::size_t i) override {
    bool r = false;
    visit(i, [&r](auto& c) { r = c.handle.done(); });
    return r;
  }
  std::exception_ptr child_exception(std::size_t i) override {
    std::exception_ptr r;
    visit(i, [&r](auto& c) { r = c.handle.exception(); });
    return r;
  }
  void watch_child(std::size_t i) override {
    visit(i, [this, i](auto& c) { watch_completion(c.handle, hub(), i); });
  }
  void cancel_child(std::size_t i) noexcept override {
    visit(i, [this](auto& c) noexcept { c.handle.cancel_for_waiter(task); });
  }
  template <class F> void visit(std::size_t i, F&& f) { visit_at(i, f, std::index_sequence_for<Ts...>{}); }
  template <class F, std::size_t... I> void visit_at(std::size_t i, F& f, std::index_sequence<I...>) {
    ((i == I ? f(std::get<I>(children_)) : void()), ...);
  }

  std::tuple<gather_child<Ts>...> children_;
};

/// gather(std::vector<...>): a vector of results.
template <bool Collect, class T> class [[nodiscard]] gather_range_awaitable final : public gather_base {
public:
  using result_type =
      std::conditional_t<Collect, std::vector<outcome<gather_value_t<T>>>, std::vector<gather_element_t<T>>>;

  template <class A> explicit gather_range_awaitable(std::vector<A> items) : gather_base(items.size(), Collect) {
    children_.reserve(items.size());
    for (auto& a : items)
      children_.emplace_back(std::move(a));
  }

  bool await_ready() {
    event_loop& loop = enter("gather()");
    for (const auto& c : children_)
      c.check(loop);
    for (auto& c : children_)
      c.start(loop);
    return begin();
  }
  void await_suspend(std::coroutine_handle<> h) { suspend(h); }
  result_type await_resume() {
    check();
    result_type out;
    out.reserve(children_.size());
    for (auto& c : children_) {
      if constexpr (Collect)
        out.push_back(c.template get_outcome<gather_value_t<T>>());
      else
        out.push_back(c.value());
    }
    return out;
  }

private:
  bool child_done(std::size_t i) override { return children_[i].handle.done(); }
  std::exception_ptr child_exception(std::size_t i) override { return children_[i].handle.exception(); }
  void watch_child(std::size_t i) override { watch_completion(children_[i].handle, hub(), i); }
  void cancel_child(std::size_t i) noexcept override { children_[i].handle.cancel_for_waiter(task); }

  std::vector<gather_child<T>> children_;
};

} // namespace detail

/// Runs the awaitables concurrently and gives their results in argument order (asyncio.gather).
/// Each argument is a task<T> or a join_handle<T>; the result is a std::tuple with one element per
/// argument (a task<void>'s is corio::none).
///
///     auto [a, b] = co_await corio::gather(fetch(1), fetch(2));   // std::tuple<int, int>
///
/// - Lazy, like task: the tasks are spawned (in argument order) when the gather is awaited, so they run
///   as tasks of their own; the awaiting task waits for them. Awaiting it is an await point: if the task
///   is being cancelled, cancelled_error is raised at once, the tasks are never started, and
///   join_handles passed in are left alone (as `co_await handle` does).
/// - The first exception (in the order the children finish) is raised as soon as it happens, and the
///   other children are NOT cancelled: they keep running, as in asyncio, and their results are lost
///   (an exception one of them raises later is reported as never retrieved). Pass join_handles instead
///   of tasks to keep a hold on them, or use gather(return_exceptions, ...).
/// - Cancelling the awaiting task cancels every child and waits until all of them finished; then the
///   awaiter gets cancelled_error (asyncio's rule; wrap a child in shield() to keep it running).
/// - Results are taken with join_handle::result(): copied when copyable, moved out when move-only (so
///   do not pass two handles of the same move-only task).
/// - A join_handle whose task belongs to another loop and is not done raises loop_error when the gather
///   is awaited, before any task is spawned or watched (asyncio: ValueError "The future belonged to a
///   different loop"); a done one is accepted, as by `co_await handle`.
/// - With no arguments it completes at once with std::tuple<>.
template <class... As>
requires(detail::gatherable<As>&&...)
    [[nodiscard]] detail::gather_awaitable<false, detail::gather_arg_t<As>...> gather(As... aws) {
  return detail::gather_awaitable<false, detail::gather_arg_t<As>...>(std::move(aws)...);
}

/// gather(corio::return_exceptions, aw...): waits until every awaitable finished and gives a tuple of
/// corio::outcome<T> — the value, or the exception the task raised (asyncio's return_exceptions=True).
/// Never raises a child's exception; cancelling the awaiting task still cancels the children, waits for
/// them, and raises cancelled_error.
template <class... As>
requires(detail::gatherable<As>&&...)
    [[nodiscard]] detail::gather_awaitable<true, detail::gather_arg_t<As>...> gather(return_exceptions_t, As... aws) {
  return detail::gather_awaitable<true, detail::gather_arg_t<As>...>(std::move(aws)...);
}

/// gather over a vector of tasks or join_handles: a std::vector of the results, in the same order
/// (void → none_t; T& → std::reference_wrapper<T>). Same rules as the variadic form; an empty vector
/// gives an empty vector at once.
template <class T> [[nodiscard]] detail::gather_range_awaitable<false, T> gather(std::vector<task<T>> tasks) {
  return detail::gather_range_awaitable<false, T>(std::move(tasks));
}
template <class T> [[nodiscard]] detail::gather_range_awaitable<false, T> gather(std::vector<join_handle<T>> handles) {
  return detail::gather_range_awaitable<false, T>(std::move(handles));
}
/// The vector forms with return_exceptions: a std::vector<outcome<T>> (void → outcome<none_t>).
template <class T>
[[nodiscard]] detail::gather_range_awaitable<true, T> gather(return_exceptions_t, std::vector<task<T>> tasks) {
  return detail::gather_range_awaitable<true, T>(std::move(tasks));
}
template <class T>
[[nodiscard]] detail::gather_range_awaitable<true, T> gather(return_exceptions_t, std::vector<join_handle<T>> handles) {
  return detail::gather_range_awaitable<true, T>(std::move(handles));
}

} // namespace corio
