// A move-only `void()` callable (std::function needs copyable targets; loop callbacks need not be).
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace corio::detail {

class unique_function {
public:
  unique_function() noexcept = default;
  template <class F>
  requires(!std::is_same_v<std::decay_t<F>, unique_function> && std::is_invocable_v<std::decay_t<F>&>)
      unique_function(F&& f)
      : impl_(std::make_unique<model<std::decay_t<F>>>(std::forward<F>(f))) {}

  explicit operator bool() const noexcept { return impl_ != nullptr; }
  void operator()() { impl_->call(); }

private:
  struct concept_t {
    virtual ~concept_t() = default;
    virtual void call() = 0;
  };
  template <class F> struct model final : concept_t {
    explicit model(F&& f) : fn(std::move(f)) {}
    explicit model(const F& f) : fn(f) {}
    void call() override { fn(); }
    F fn;
  };
  std::unique_ptr<concept_t> impl_;
};

} // namespace corio::detail
