#include "corio/debug.hpp"

#include <unordered_map>
#include <vector>

#include "corio/detail/task_state.hpp"

namespace corio {
namespace {

std::string describe_task(const event_loop& loop, const detail::task_state* t) {
  std::string line = "#";
  line += std::to_string(t->id);
  if (!t->task_name().empty())
    line.append(" '").append(t->task_name()).append("'");
  if (t == loop.current_task())
    line += " running";
  else if (t->waiting != nullptr)
    line += std::string(" waiting: ") + t->waiting->what();
  else
    line += " ready";
  if (t->cancel_requests > 0)
    line += " (cancelling)";
  else if (t->timeouts_fired > 0)
    line += " (timed out)";
  return line;
}

void print_tree(const event_loop& loop, const detail::task_state* t,
                const std::unordered_multimap<const detail::task_state*, const detail::task_state*>& children,
                int depth, std::string& out) {
  out.append(static_cast<std::size_t>(depth) * 2, ' ');
  out += describe_task(loop, t);
  out += '\n';
  if (depth > 64)
    return; // a cycle of tasks awaiting each other: stop
  auto [first, last] = children.equal_range(t);
  for (auto it = first; it != last; ++it)
    print_tree(loop, it->second, children, depth + 1, out);
}

} // namespace

std::string format_tasks(const event_loop& loop) {
  std::vector<const detail::task_state*> all = loop.tasks();
  std::unordered_multimap<const detail::task_state*, const detail::task_state*> children; // awaiter -> awaited
  std::unordered_map<const detail::task_state*, bool> awaited;
  for (const detail::task_state* t : all)
    if (t->waiting != nullptr)
      if (const detail::task_state* target = t->waiting->awaited_task()) {
        children.emplace(t, target);
        awaited[target] = true;
      }
  std::string out = std::to_string(all.size()) + " task(s)\n";
  for (const detail::task_state* t : all)
    if (!awaited.count(t))
      print_tree(loop, t, children, 1, out);
  return out;
}

void dump_tasks(const event_loop& loop, std::FILE* out) { std::fputs(format_tasks(loop).c_str(), out); }

void dump_tasks(std::FILE* out) {
  if (const event_loop* loop = event_loop::current())
    dump_tasks(*loop, out);
  else
    std::fputs("corio: no event loop is running\n", out);
}

} // namespace corio

#include "corio/task.hpp"

namespace corio::detail {
void warn_if_never_awaited(const task_promise_base& p) noexcept {
  if (p.claimed())
    return;
  const event_loop* loop = event_loop::current();
  if (loop != nullptr && loop->config().debug)
    std::fputs("corio: a task was destroyed without being awaited or spawned\n", stderr);
}
} // namespace corio::detail
