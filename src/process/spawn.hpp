// Starting a child with posix_spawn (internal).
#pragma once

#include <string>
#include <vector>

#include "corio/net/socket.hpp"
#include "corio/process_options.hpp"

namespace corio::detail {

/// A started child: its pid, and the parent's ends of the pipes asked for (non-blocking, close-on-exec;
/// not open when the stream is not a pipe).
struct spawned_child {
  int pid = -1;
  socket in, out, err;
};

/// Starts argv[0] with posix_spawn: the fds, cwd, environment, signal mask and dispositions as
/// process_options describes. Raises std::system_error naming the program (and the cwd when that is
/// what failed); on failure nothing is left (glibc's posix_spawn reaps a child whose exec failed, and
/// reports exec's errno).
spawned_child spawn_child(const std::vector<std::string>& argv, const process_options& o);

} // namespace corio::detail
