// The HTTP server's fast path (examples/http_server.cpp: parse_simple) against http-parser: whatever the
// bytes and however they are split over reads, a connection with the fast path parses them exactly as one
// without it (every request's route, method, keep-alive and file path; the error status; where parsing
// stops). And the fast path does take the requests it is for, so that the comparison means something.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#if __has_include(<http_parser.h>)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function" // the server's accept loop and argument parsing
#define CORIO_HTTP_SERVER_NO_MAIN
#include "../../examples/http_server.cpp"
#pragma GCC diagnostic pop

#include "http_parse_trace.hpp"

namespace {

using http_parse_trace::outcome;

outcome parse(std::string_view wire, const std::vector<std::size_t>& cuts, const config& cfg, bool fast) {
  return http_parse_trace::trace(wire, cuts, cfg, fast);
}

config test_config() {
  config cfg;
  cfg.root = "/srv/www"; // so that /static/ paths become file routes, whose path is compared too
  return cfg;
}

/// Requests of every kind: simple ones the fast path takes, and the rest, which it must leave alone.
const std::vector<std::string>& seeds() {
  static const std::vector<std::string> s = {
      "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",
      "HEAD /plaintext HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n",
      "GET /plaintext?x=1&y=%20 HTTP/1.1\r\nUser-Agent: curl/7.88.1\r\nAccept: text/plain\r\n\r\n",
      "GET /nowhere HTTP/1.1\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n",
      "GET /static/a.txt HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /static/../etc/passwd HTTP/1.1\r\n\r\n",
      "GET /plaintext HTTP/1.0\r\n\r\n",
      "GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      "GET /plaintext HTTP/1.1\r\nConnection: close\r\n\r\n",
      "GET /plaintext HTTP/1.1\r\nconnection: Close\r\n\r\n",
      "GET /plaintext HTTP/1.1\r\nProxy-Connection: close\r\n\r\n",
      "POST /plaintext HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
      "GET /plaintext HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
      "GET /plaintext HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      "GET /plaintext HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
      "DELETE /plaintext HTTP/1.1\r\n\r\n",
      "CONNECT example.com:443 HTTP/1.1\r\n\r\n",
      "OPTIONS * HTTP/1.1\r\n\r\n",
      "GET http://example.com/plaintext HTTP/1.1\r\n\r\n",
      "GET /a#frag HTTP/1.1\r\n\r\n",
      "GET /plaintext HTTP/1.1\nHost: bare-lf\n\n",
      "GET  /plaintext HTTP/1.1\r\n\r\n",
      "get /plaintext HTTP/1.1\r\n\r\n",
      "GET /plaintext HTTP/2.0\r\n\r\n",
      "GET /plaintext HTTP/1.1\r\nBad Name: x\r\n\r\n",
      "GET /plaintext HTTP/1.1\r\nNoColon\r\n\r\n",
      "GET /plaintext HTTP/1.1\r\nFolded: a\r\n b\r\n\r\n",
      "GET /plaintext HTTP/1.1\r\nHigh: \xc3\xa9\r\n\r\n",
      "GET /pl\xc3\xa9 HTTP/1.1\r\n\r\n",
      "\r\nGET /plaintext HTTP/1.1\r\n\r\n",
      "GET /plaintext HTTP/1.1\r\n:empty-name\r\n\r\n",
      "GET /plaintext HTTP/1.1\r\nHost: a\rb\r\n\r\n",
      "garbage\r\n\r\n",
  };
  return s;
}

TEST(HttpParse, TheFastPathTakesTheCommonRequests) {
  std::string wire;
  for (int i = 0; i < 16; ++i)
    wire += "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n";
  const outcome fast = parse(wire, {}, test_config(), true);
  const outcome slow = parse(wire, {}, test_config(), false);
  EXPECT_EQ(fast.text, slow.text);
  EXPECT_EQ(fast.requests, 16u);
  EXPECT_EQ(fast.fast, 16u);
  EXPECT_EQ(slow.fast, 0u);
  // A request cut by the end of a read: http-parser finishes it, the fast path takes the ones after it.
  const std::vector<std::size_t> cuts{wire.size() / 16 + 10};
  const outcome cut = parse(wire, cuts, test_config(), true);
  EXPECT_EQ(cut.text, parse(wire, cuts, test_config(), false).text);
  EXPECT_EQ(cut.requests, 16u);
  EXPECT_EQ(cut.fast, 15u);
}

TEST(HttpParse, RequestsWithMeaningfulHeadersGoToHttpParser) {
  for (const char* req :
       {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "GET / HTTP/1.1\r\nTRANSFER-ENCODING: chunked\r\n\r\n0\r\n\r\n", "GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
        "GET / HTTP/1.1\r\nproxy-connection: close\r\n\r\n"}) {
    const outcome fast = parse(req, {}, test_config(), true);
    EXPECT_EQ(fast.fast, 0u) << req;
    EXPECT_EQ(fast.text, parse(req, {}, test_config(), false).text) << req;
  }
}

TEST(HttpParse, EverySeedAloneAndPipelinedParsesTheSameBothWays) {
  for (const std::string& a : seeds()) {
    EXPECT_EQ(parse(a, {}, test_config(), true).text, parse(a, {}, test_config(), false).text) << a;
    for (const std::string& b : seeds()) {
      const std::string wire = a + b;
      EXPECT_EQ(parse(wire, {}, test_config(), true).text, parse(wire, {}, test_config(), false).text) << wire;
    }
  }
}

TEST(HttpParse, TheHeaderLimitIsTheSameBothWays) {
  // Heads of every length around --max-header-bytes: the fast path must refuse what http-parser's limit
  // refuses (431), and leave the borderline to it.
  config cfg = test_config();
  cfg.max_header_bytes = 64;
  for (std::size_t pad = 0; pad < 96; ++pad) {
    const std::string req = "GET /plaintext HTTP/1.1\r\nX: " + std::string(pad, 'v') + "\r\n\r\n";
    const std::string wire = req + "GET / HTTP/1.1\r\n\r\n";
    EXPECT_EQ(parse(wire, {}, cfg, true).text, parse(wire, {}, cfg, false).text) << pad;
  }
}

TEST(HttpParse, MutatedPipelinesCutAnywhereParseTheSameBothWays) {
  // Deterministic: a fixed seed, a bounded count. Bytes are mutated towards the ones the grammar turns on.
  std::mt19937 rng(20261127);
  const std::string alphabet = std::string(" \r\n\t:/?#%.HTPGETADOS10aZ~\x7f\x80\xff", 28) + std::string(1, '\0');
  auto pick = [&rng](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  std::size_t fast_total = 0;
  for (int iteration = 0; iteration < 100000; ++iteration) {
    std::string wire;
    for (std::size_t k = 1 + pick(4); k > 0; --k)
      wire += seeds()[pick(seeds().size())];
    for (std::size_t m = pick(4); m > 0; --m) {
      const std::size_t at = pick(wire.size());
      switch (pick(3)) {
      case 0:
        wire[at] = alphabet[pick(alphabet.size())];
        break;
      case 1:
        wire.insert(at, 1, alphabet[pick(alphabet.size())]);
        break;
      default:
        wire.erase(at, 1);
        break;
      }
    }
    std::vector<std::size_t> cuts;
    for (std::size_t c = pick(3); c > 0; --c)
      cuts.push_back(pick(wire.size() + 1));
    std::sort(cuts.begin(), cuts.end());
    config cfg = test_config();
    if (pick(4) == 0)
      cfg.max_header_bytes = 20 + pick(60);
    const outcome fast = parse(wire, cuts, cfg, true);
    const outcome slow = parse(wire, cuts, cfg, false);
    ASSERT_EQ(fast.text, slow.text) << "iteration " << iteration << ", input:\n" << wire;
    fast_total += fast.fast;
  }
  EXPECT_GT(fast_total, 10000u); // the fast path did run, on many of the requests (about 16,000)
}

} // namespace
#else
TEST(HttpParse, NeedsHttpParser) { GTEST_SKIP() << "http_parser.h not found (apt-get install libhttp-parser-dev)"; }
#endif
