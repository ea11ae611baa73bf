// What examples/http_server.cpp's http_connection makes of some bytes, as text, to compare its fast path
// with http-parser alone (tests/unit/test_http_parse.cpp, fuzz/fuzz_http.cpp). Include it after
// http_server.cpp (with CORIO_HTTP_SERVER_NO_MAIN).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace http_parse_trace {

struct outcome {
  std::string text;         // every request and status, read by read
  std::size_t fast = 0;     // requests the fast path took
  std::size_t requests = 0; // requests parsed
};

/// Feeds `wire`, cut at `cuts` (offsets; unsorted and out-of-range ones are skipped), to one connection,
/// as serve() does: it stops at an error status or after a request that closes.
inline outcome trace(std::string_view wire, const std::vector<std::size_t>& cuts, config cfg, bool fast) {
  cfg.fast_path = fast;
  http_connection c(cfg);
  outcome o;
  std::size_t from = 0;
  for (std::size_t i = 0; i <= cuts.size(); ++i) {
    const std::size_t to = i < cuts.size() ? cuts[i] : wire.size();
    if (to <= from || to > wire.size())
      continue;
    const int status = c.feed(wire.data() + from, to - from);
    from = to;
    o.text += "feed:";
    for (const request& r : c.requests) {
      o.text += " [" + std::to_string(static_cast<int>(r.kind)) + (r.head ? " HEAD" : "") +
                (r.keep_alive ? " keep-alive " : " close ") + r.path + "]";
      ++o.requests;
    }
    c.requests.clear();
    o.text += " -> " + std::to_string(status) + "\n";
    if (status != 0 || c.closing)
      break;
  }
  o.fast = c.fast_requests;
  return o;
}

} // namespace http_parse_trace
