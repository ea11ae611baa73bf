// How protocol callbacks are called (internal): what stream and datagram transports share.
#pragma once

#include <exception>
#include <string>

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

} // namespace corio::detail
