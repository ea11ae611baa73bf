// What stream and datagram transports share (internal): calling protocol callbacks, buffer limits.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>

#include "corio/net/protocol.hpp"

namespace corio::detail {

/// Reports a protocol callback's exception to the running loop's exception handler (without a running
/// loop: the default handler): "corio: <kind> <what>() raised (<where>)". Never throws.
void report_protocol_error(const char* kind, const char* what, const std::string& where, std::exception_ptr e) noexcept;

/// Calls f, a protocol callback. Its exception is reported (`where()` describes the connection and is
/// only called then) and returned; null when f returned normally.
template <class Where, class F>
std::exception_ptr call_protocol(const char* kind, const char* what, Where&& where, F&& f) noexcept {
  try {
    f();
    return nullptr;
  } catch (...) {
    std::exception_ptr e = std::current_exception();
    try {
      report_protocol_error(kind, what, where(), e);
    } catch (...) { // out of memory describing the connection
    }
    return e;
  }
}

/// A pipe transport over `s` (the parent's end of a child's pipe) named `name` in errors, with `p` as
/// its protocol (connection_made is called) and its pump spawned on the running loop: what
/// connect_read_pipe / connect_write_pipe make, for subprocess_exec.
std::shared_ptr<transport> start_pipe_transport(socket s, transport_over over, std::shared_ptr<protocol> p,
                                                std::string name, std::size_t high, std::size_t low);

/// asyncio's set_write_buffer_limits(high, low) rule: no high: 4 * low, or 64 KiB without low either; no
/// low: high / 4. std::invalid_argument naming `who` if low ends above high.
inline write_buffer_limits resolve_write_buffer_limits(std::optional<std::size_t> high, std::optional<std::size_t> low,
                                                       const char* who) {
  const std::size_t h = high ? *high : low ? 4 * *low : 64 * 1024;
  const std::size_t l = low ? *low : h / 4;
  if (l > h)
    throw std::invalid_argument(std::string("corio: ") + who + ".set_write_buffer_limits(): low above high");
  return {l, h};
}

} // namespace corio::detail
