// Debugging aids: the task tree (asyncio's print_call_graph / Task.print_stack, in spirit).
#pragma once

#include <cstdio>
#include <string>

#include "corio/event_loop.hpp"

namespace corio {

/// Every live task of `loop`, as a tree: top-level tasks first, and under each the tasks it awaits.
/// One line per task: "#<id> '<name>' <state>", the state being "running", "ready", "cancelling" and/or
/// what it waits for ("sleep", "readable(fd)", "awaiting a task", "awaiting a future", "lock"...).
[[nodiscard]] std::string format_tasks(const event_loop& loop);
/// Prints format_tasks() of the running loop (or of `loop`) to `out` (stderr by default).
void dump_tasks(std::FILE* out = stderr);
void dump_tasks(const event_loop& loop, std::FILE* out = stderr);

} // namespace corio
