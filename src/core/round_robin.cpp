#include "corio/round_robin.hpp"

namespace corio {

round_robin::~round_robin() = default;

void round_robin::push(std::unique_ptr<runnable> r, std::string name) {
  if (name.empty())
    name.append("#").append(std::to_string(added_));
  ++added_;
  queue_.push_back(entry{std::move(r), std::move(name)});
}

bool round_robin::run_once() {
  if (queue_.empty())
    return false;
  entry e = std::move(queue_.front());
  queue_.pop_front();
  try {
    if (e.coroutine->resume())
      queue_.push_back(std::move(e));
  } catch (...) {
    failures_.push_back(failure{std::move(e.name), std::current_exception()});
  }
  return true;
}

std::size_t round_robin::run() {
  std::size_t steps = 0;
  while (run_once())
    ++steps;
  if (failures_.empty())
    return steps;
  std::vector<failure> failed = std::exchange(failures_, {});
  std::string message = "round_robin: ";
  message.append(std::to_string(failed.size())).append(" coroutine(s) failed:");
  std::vector<std::exception_ptr> errors;
  for (const failure& f : failed) {
    message.append(" [").append(f.name).append("] ").append(describe(f.error)).append(";");
    errors.push_back(f.error);
  }
  message.pop_back();
  throw exception_group(std::move(message), std::move(errors));
}

} // namespace corio
