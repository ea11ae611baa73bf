// reject_nul: refuses a string with a NUL byte before it is handed to a C API (internal).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace corio::detail {

/// std::invalid_argument `corio: <who>: <what> "a\0b" contains a NUL byte` when `s` has one: a C API
/// (open, chdir, getpwnam, OpenSSL's file loaders) would silently use only what comes before it, another
/// file or name than the one given (Python raises ValueError "embedded null byte").
inline void reject_nul(std::string_view s, const char* who, const char* what) {
  if (s.find('\0') == std::string_view::npos)
    return;
  std::string shown;
  for (char ch : s) {
    if (ch == '\0')
      shown += "\\0";
    else
      shown += ch;
  }
  throw std::invalid_argument(std::string("corio: ") + who + ": " + what + " \"" + shown + "\" contains a NUL byte");
}

} // namespace corio::detail
