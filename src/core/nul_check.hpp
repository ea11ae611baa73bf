// reject_nul: refuses a string with a NUL byte before it is handed to a C API (internal).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace corio::detail {

/// Appends `s` to `out` with each NUL byte shown as \0, so that an error message (a what()) does not
/// end there.
inline void append_showing_nul(std::string& out, std::string_view s) {
  for (char ch : s) {
    if (ch == '\0')
      out.append("\\0");
    else
      out.push_back(ch);
  }
}

/// std::invalid_argument `corio: <who>: <what> "a\0b" contains a NUL byte` when `s` has one: a C API
/// (open, chdir, getpwnam, OpenSSL's file loaders) would silently use only what comes before it, another
/// file or name than the one given (Python raises ValueError "embedded null byte").
inline void reject_nul(std::string_view s, const char* who, const char* what) {
  if (s.find('\0') == std::string_view::npos)
    return;
  std::string msg = std::string("corio: ") + who + ": " + what + " \"";
  append_showing_nul(msg, s);
  msg.append("\" contains a NUL byte");
  throw std::invalid_argument(msg);
}

/// reject_nul() for a host name (a DNS name, a numeric address, a TLS server_hostname): getaddrinfo,
/// inet_pton and OpenSSL's SNI and name check would use only what comes before the NUL, another host
/// than the one given ("localhost\0.evil.example" would connect to and verify as localhost).
inline void reject_nul_host(std::string_view host, const char* who) { reject_nul(host, who, "the host name"); }

} // namespace corio::detail
