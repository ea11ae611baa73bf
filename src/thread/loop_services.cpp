#include "loop_services.hpp"

#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "corio/errors.hpp"
#include "corio/to_thread.hpp"

namespace corio {
namespace detail {

namespace {

// Keyed by loop address. An entry is erased by its loop's on_close hook, which runs before the loop's
// memory is freed, so a later loop at the same address never finds a stale entry.
std::mutex registry_mutex;
std::unordered_map<const event_loop*, std::unique_ptr<loop_services>>& registry() {
  static auto* map = new std::unordered_map<const event_loop*, std::unique_ptr<loop_services>>();
  return *map; // never destroyed: a loop may close during static destruction
}

} // namespace

loop_services::~loop_services() = default;

default_pools::~default_pools() {
  if (current)
    current->shutdown();
  for (const std::shared_ptr<thread_pool>& p : retired)
    p->shutdown();
}

void check_loop_thread(event_loop& loop, const char* what, const char* why) {
  if (loop.is_running() && event_loop::current() != &loop)
    throw loop_error(std::string("corio: ") + what + " must be called on the loop's thread" + why);
}

loop_services* find_services(event_loop& loop) noexcept {
  std::lock_guard lock(registry_mutex);
  auto it = registry().find(&loop);
  return it != registry().end() ? it->second.get() : nullptr;
}

loop_services& services_of(event_loop& loop) {
  if (loop_services* s = find_services(loop))
    return *s;
  if (loop.is_closed())
    throw loop_error("corio: the event loop is closed");
  auto owned = std::make_unique<loop_services>();
  loop_services* s = owned.get();
  loop.on_close([key = &loop] {
    std::unique_ptr<loop_services> gone;
    {
      std::lock_guard lock(registry_mutex);
      auto it = registry().find(key);
      if (it == registry().end())
        return;
      gone = std::move(it->second);
      registry().erase(it);
    }
    gone.reset(); // outside the lock: joining the pool may take a while
  });
  std::lock_guard lock(registry_mutex);
  registry().emplace(&loop, std::move(owned));
  return *s;
}

} // namespace detail

thread_pool& default_thread_pool(event_loop& loop) {
  detail::loop_services& s = detail::services_of(loop);
  if (!s.pools.current)
    s.pools.current = std::make_shared<thread_pool>();
  return *s.pools.current;
}

void set_default_thread_pool(event_loop& loop, std::shared_ptr<thread_pool> pool) {
  if (!pool)
    throw std::invalid_argument("corio: set_default_thread_pool(nullptr)");
  if (pool->is_shutdown())
    throw invalid_state_error("corio: set_default_thread_pool() of a pool already shut down");
  detail::check_loop_thread(loop, "set_default_thread_pool()");
  detail::loop_services& s = detail::services_of(loop);
  if (s.pools.current == pool)
    return;
  if (s.pools.current)
    s.pools.retired.push_back(std::move(s.pools.current)); // calls already queued there still finish
  s.pools.current = std::move(pool);
}

} // namespace corio
