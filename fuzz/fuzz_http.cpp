// Fuzz target: the example HTTP server's connection handler (examples/http_server.cpp's serve(), the
// code the server runs), fed over a socketpair in arbitrary chunks, then half-closed.
//
// Two kinds of input (the first byte picks):
// - raw bytes: anything at all. The handler must end (no hang), never crash (ASan/UBSan), answer only
//   with HTTP/1.1 responses (and interim "100 Continue"s), and send nothing after an error response
//   (400/413/431/505), which closes.
// - a pipeline of generated requests (GET/HEAD/POST/DELETE, known and unknown paths, query strings,
//   extra headers, Content-Length and chunked bodies, HTTP/1.0 and "Connection: close", sizes around
//   the limits): the answers must be exactly the statuses a model of the server's rules expects, in
//   order, with a body unless the request was HEAD.
// Either way, the same bytes in the same pieces must parse the same with the server's fast path and with
// http-parser alone (tests/support/http_parse_trace.hpp).
#define CORIO_HTTP_SERVER_NO_MAIN
#include "../examples/http_server.cpp"

#include <corio/testing/mock_clock.hpp>

#include "../tests/support/http_parse_trace.hpp"

#include <sys/socket.h>

#include <fuzzer/FuzzedDataProvider.h>

namespace fuzz_http {

[[noreturn]] void fail(const char* what, std::string_view output = {}) {
  std::fprintf(stderr, "fuzz_http: %s\noutput:\n%.*s\n", what, static_cast<int>(output.size()), output.data());
  std::abort();
}

constexpr std::size_t max_header = 300;
constexpr std::size_t max_body = 200;

struct expected_answer {
  int status;
  bool head;
};

/// Splits the output into responses: (status, has a body of Content-Length bytes unless HEAD).
std::vector<int> parse(std::string_view out, const std::vector<expected_answer>* expected) {
  std::vector<int> statuses;
  std::string_view s = out;
  while (!s.empty()) {
    if (s.starts_with("HTTP/1.1 100 Continue\r\n\r\n")) { // interim: the client may send the body
      s.remove_prefix(25);
      continue;
    }
    if (!s.starts_with("HTTP/1.1 ") || s.size() < 12)
      fail("output is not an HTTP/1.1 response", out);
    const int status = std::atoi(std::string(s.substr(9, 3)).c_str());
    const std::size_t end = s.find("\r\n\r\n");
    if (end == std::string_view::npos)
      fail("response head without its blank line", out);
    const std::string_view head = s.substr(0, end + 2);
    const std::size_t cl = head.find("\r\nContent-Length: ");
    if (cl == std::string_view::npos)
      fail("response without Content-Length", out);
    const std::size_t length = std::strtoul(std::string(head.substr(cl + 18)).c_str(), nullptr, 10);
    bool has_body = true;
    if (expected != nullptr && statuses.size() < expected->size())
      has_body = !(*expected)[statuses.size()].head;
    const std::size_t total = end + 4 + (has_body ? length : 0);
    if (expected == nullptr && total > s.size())
      break; // raw input may have been a HEAD request: the body length is unknown
    if (total > s.size())
      fail("response shorter than its Content-Length", out);
    statuses.push_back(status);
    s.remove_prefix(total);
    if (expected == nullptr && !s.empty() && !s.starts_with("HTTP/1.1 "))
      s = {}; // raw input: a HEAD answer without its body, as above; the rest cannot be split
  }
  return statuses;
}

/// Builds a pipeline of requests and the answers the server's rules give it.
std::string generate(FuzzedDataProvider& in, std::vector<expected_answer>& want) {
  static constexpr const char* paths[] = {"/",        "/plaintext",    "/plaintext?x=1",
                                          "/nowhere", "/static/a.txt", "/static/../x"};
  static constexpr const char* methods[] = {"GET", "HEAD", "POST", "DELETE"};
  std::string wire;
  const std::size_t count = in.ConsumeIntegralInRange<std::size_t>(1, 8);
  for (std::size_t i = 0; i < count; ++i) {
    const int m = in.ConsumeIntegralInRange(0, 3);
    const std::string path = paths[in.ConsumeIntegralInRange(0, 5)];
    const bool http10 = in.ConsumeIntegralInRange(0, 7) == 0;
    const bool close = in.ConsumeIntegralInRange(0, 7) == 0;
    std::size_t header_bytes = path.size();
    std::string req = std::string(methods[m]) + " " + path + (http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    req += "Host: x\r\n";
    header_bytes += 4 + 1;
    if (close) {
      req += "Connection: close\r\n";
      header_bytes += 10 + 5;
    }
    const std::size_t extra = in.ConsumeIntegralInRange<std::size_t>(0, 3);
    for (std::size_t h = 0; h < extra; ++h) {
      const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, 160);
      req += "X-Fuzz: " + std::string(n, 'v') + "\r\n";
      header_bytes += 6 + n;
    }
    int body_kind = m == 2 ? in.ConsumeIntegralInRange(0, 2) : 0; // POST: none, Content-Length, chunked
    const std::size_t body = body_kind != 0 ? in.ConsumeIntegralInRange<std::size_t>(0, 260) : 0;
    if (body_kind == 1) {
      const std::string n = std::to_string(body);
      req += "Content-Length: " + n + "\r\n\r\n" + std::string(body, 'b');
      header_bytes += 14 + n.size();
    } else if (body_kind == 2) {
      req += "Transfer-Encoding: chunked\r\n\r\n";
      header_bytes += 17 + 7;
      if (body > 0) {
        char hex[32];
        std::snprintf(hex, sizeof hex, "%zx", body);
        req += std::string(hex) + "\r\n" + std::string(body, 'c') + "\r\n";
      }
      req += "0\r\n\r\n";
    } else {
      req += "\r\n";
    }
    wire += req;
    if (header_bytes > max_header) {
      want.push_back({431, false});
      return wire;
    }
    if (body > max_body) {
      want.push_back({413, false});
      return wire;
    }
    const std::string_view route = std::string_view(path).substr(0, path.find('?'));
    const bool hello = route == "/" || route == "/plaintext";
    const bool head = m == 1;
    want.push_back({!hello ? 404 : (m <= 1 ? 200 : 405), head});
    if (http10 || close)
      return wire; // the server answers this one and closes
  }
  return wire;
}

corio::task<> client(int fd, std::string wire, std::vector<std::size_t> cuts, std::string& out) {
  corio::socket s = corio::socket::adopt(fd);
  std::size_t at = 0;
  for (std::size_t c : cuts) {
    if (at >= wire.size())
      break;
    const std::size_t n = std::min(c, wire.size() - at);
    try {
      co_await corio::sock_sendall(s, std::string_view(wire).substr(at, n));
    } catch (const std::system_error&) {
      break; // the server closed (after an error answer): fine
    }
    at += n;
    co_await corio::sleep(std::chrono::seconds(0));
  }
  if (at < wire.size()) {
    try {
      co_await corio::sock_sendall(s, std::string_view(wire).substr(at));
    } catch (const std::system_error&) {
    }
  }
  ::shutdown(s.fd(), SHUT_WR);
  std::vector<char> buf(4096);
  for (int guard = 0; guard < 100000; ++guard) {
    std::size_t n = 0;
    try {
      n = co_await corio::sock_recv(s, buf);
    } catch (const std::system_error&) {
      break; // reset: the server closed with our data unread
    }
    if (n == 0)
      break;
    out.append(buf.data(), n);
  }
}

corio::task<> run(std::string wire, std::vector<std::size_t> cuts, const std::vector<expected_answer>* want) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
    fail("socketpair");
  config cfg;
  cfg.max_header_bytes = max_header;
  cfg.max_body_bytes = max_body;
  cfg.idle_timeout = std::chrono::seconds(30); // the mock clock: fires only if the handler waits forever
  std::string out;
  auto server = corio::spawn(serve(corio::socket::adopt(fds[0]), cfg));
  co_await client(fds[1], std::move(wire), std::move(cuts), out);
  co_await server;
  const std::vector<int> got = parse(out, want);
  for (std::size_t i = 0; i < got.size(); ++i) {
    const bool error = got[i] == 400 || got[i] == 413 || got[i] == 431 || got[i] == 505;
    if (error && i + 1 != got.size())
      fail("an answer after an error answer", out);
  }
  if (want != nullptr) {
    if (got.size() != want->size())
      fail("not one answer per request", out);
    for (std::size_t i = 0; i < got.size(); ++i)
      if (got[i] != (*want)[i].status)
        fail("an answer with the wrong status", out);
  }
}

} // namespace fuzz_http

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const bool generated = in.ConsumeBool();
  std::vector<std::size_t> cuts(in.ConsumeIntegralInRange<std::size_t>(0, 12));
  for (auto& c : cuts)
    c = in.ConsumeIntegralInRange<std::size_t>(1, 300);
  std::vector<fuzz_http::expected_answer> want;
  std::string wire = generated ? fuzz_http::generate(in, want) : in.ConsumeRemainingBytesAsString();
  if (wire.size() > 16384)
    wire.resize(16384);
  {
    config cfg;
    cfg.max_header_bytes = fuzz_http::max_header;
    cfg.max_body_bytes = fuzz_http::max_body;
    std::vector<std::size_t> ends;
    for (std::size_t at = 0; const std::size_t c : cuts)
      ends.push_back(at += c);
    const auto fast = http_parse_trace::trace(wire, ends, cfg, true);
    const auto slow = http_parse_trace::trace(wire, ends, cfg, false);
    if (fast.text != slow.text)
      fuzz_http::fail("the fast path and http-parser disagree", fast.text + "--- http-parser alone:\n" + slow.text);
  }
  corio::testing::mock_clock clock;
  corio::run(fuzz_http::run(std::move(wire), std::move(cuts), generated ? &want : nullptr), {.clock = &clock});
  return 0;
}
