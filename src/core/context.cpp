// Context variables: the current context (a task's, this thread's, or one context::run entered), and
// the immutable sets of values behind it.
#include <algorithm>
#include <vector>

#include "corio/context_var.hpp"
#include "corio/detail/task_state.hpp"
#include "corio/event_loop.hpp"

namespace corio::detail {

/// Sorted by id; never changed once made (set() makes a new one), so it can be shared by contexts and
/// threads.
struct context_data {
  std::vector<std::pair<std::uint64_t, std::shared_ptr<const void>>> values;
};

namespace {

task_state* current_task_here() noexcept {
  event_loop* loop = event_loop::current();
  return loop != nullptr ? loop->current_task() : nullptr;
}

context_ptr& thread_context() noexcept {
  thread_local context_ptr mine;
  return mine;
}

const context_ptr empty_context;

/// Where `id` is, or goes, in the sorted values.
template <class Values> auto position(Values& v, std::uint64_t id) {
  return std::lower_bound(v.begin(), v.end(), id,
                          [](const auto& entry, std::uint64_t key) { return entry.first < key; });
}

} // namespace

context_ptr* entered_context_slot(const task_state* t) noexcept {
  const context::entered& e = context::now();
  return e.slot != nullptr && e.task == t ? e.slot : nullptr;
}

context_ptr& current_context_slot() {
  task_state* t = current_task_here();
  if (context_ptr* entered = entered_context_slot(t))
    return *entered;
  if (t != nullptr)
    return t->extra().context;
  return thread_context();
}

const context_ptr& current_context() noexcept {
  task_state* t = current_task_here();
  if (context_ptr* entered = entered_context_slot(t))
    return *entered;
  if (t != nullptr)
    return t->extras ? t->extras->context : empty_context;
  return thread_context();
}

std::uint64_t context_owner() noexcept {
  task_state* t = current_task_here();
  if (entered_context_slot(t) != nullptr)
    return 0; // the slot's address tells contexts entered with run() apart
  return t != nullptr ? t->id : 0;
}

const std::shared_ptr<const void>* context_find(const context_ptr& c, std::uint64_t id) noexcept {
  if (!c)
    return nullptr;
  auto it = position(c->values, id);
  return it != c->values.end() && it->first == id ? &it->second : nullptr;
}

context_ptr context_with(const context_ptr& c, std::uint64_t id, std::shared_ptr<const void> value) {
  auto next = std::make_shared<context_data>();
  if (c)
    next->values = c->values;
  auto& v = next->values;
  auto it = position(v, id);
  const bool found = it != v.end() && it->first == id;
  if (value == nullptr) {
    if (found)
      v.erase(it);
  } else if (found) {
    it->second = std::move(value);
  } else {
    v.insert(it, {id, std::move(value)});
  }
  if (v.empty())
    return nullptr;
  return next;
}

std::uint64_t new_context_var_id() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void inherit_context(task_state& t) {
  const context_ptr& c = current_context();
  if (c)
    t.extra().context = c;
}

} // namespace corio::detail

namespace corio {

context::entered& context::now() noexcept {
  thread_local entered e;
  return e;
}

const detail::task_state* context::running_task() noexcept { return detail::current_task_here(); }

context copy_context() {
  context c;
  c.data_ = detail::current_context();
  return c;
}

} // namespace corio
