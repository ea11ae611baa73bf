// Fuzz target: stream_reader's read / readexactly / readline / readuntil (one separator or two) over
// arbitrary chunkings, against a model of asyncio's StreamReader rules on the whole byte string.
//
// The input gives a limit, the bytes, how they are cut into writes (with yields to the loop between
// them, then a half-close), and a list of reads. Each read's result (or error) must match the model;
// read(n) may return any non-empty prefix of what is left (it returns what is buffered). A readline()
// that overruns the limit drops a chunking-dependent amount (asyncio's rule), so after one the model
// stops predicting and only checks that what is read next is a suffix of the stream.
#include <corio/net/connection.hpp>
#include <corio/net/socket.hpp>
#include <corio/net/stream_errors.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>
#include <corio/testing/mock_clock.hpp>

#include <sys/socket.h>

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_stream_reader: %s\n", what);
  std::abort();
}

struct op {
  int kind; // 0 read(n), 1 readexactly(n), 2 readline, 3 readuntil(sep), 4 read(), 5 readuntil({sep, sep2})
  std::size_t n;
  std::string sep;
  std::string sep2;
};

/// The model's match of several separators at or after p: the one ending first, of those the shortest
/// (asyncio 3.13). {npos, npos} if none.
std::pair<std::size_t, std::size_t> first_match(const std::string& data, std::size_t p,
                                                const std::vector<std::string>& seps) {
  std::size_t start = std::string::npos, end = std::string::npos;
  for (const std::string& s : seps) {
    const std::size_t i = data.find(s, p);
    if (i != std::string::npos &&
        (end == std::string::npos || i + s.size() < end || (i + s.size() == end && i > start))) {
      start = i;
      end = i + s.size();
    }
  }
  return {start, end};
}

corio::task<> writer_task(corio::stream_writer w, std::string data, std::vector<std::size_t> cuts) {
  std::size_t at = 0;
  for (std::size_t c : cuts) {
    if (at >= data.size())
      break;
    std::size_t n = std::min(c, data.size() - at);
    w.write(std::string_view(data).substr(at, n));
    at += n;
    co_await corio::sleep(0s); // let the reader run between writes
  }
  if (at < data.size())
    w.write(std::string_view(data).substr(at));
  w.write_eof();
  co_await w.drain();
}

corio::task<> program(std::size_t limit, std::string data, std::vector<std::size_t> cuts, std::vector<op> ops) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
    fail("socketpair");
  auto a = corio::make_streams(corio::socket::adopt(fds[0]));
  auto b = corio::make_streams(corio::socket::adopt(fds[1]));
  a.reader.set_limit(limit);
  auto writer = corio::spawn(writer_task(b.writer, data, std::move(cuts)));
  std::size_t p = 0;       // the model's position in data
  bool predictable = true; // false after a readline() overrun
  for (const op& o : ops) {
    const std::size_t left = data.size() - p;
    switch (o.kind) {
    case 0: {
      std::string got = co_await a.reader.read(o.n);
      if (!predictable)
        break;
      if (o.n == 0 || left == 0) {
        if (!got.empty())
          fail("read(n) returned bytes at end of stream or for n == 0");
      } else if (got.empty() || got.size() > o.n || data.compare(p, got.size(), got) != 0) {
        fail("read(n) is not a non-empty prefix of what is left");
      }
      p += got.size();
      break;
    }
    case 1: {
      try {
        std::string got = co_await a.reader.readexactly(o.n);
        if (predictable && (left < o.n || got != data.substr(p, o.n)))
          fail("readexactly(n) returned the wrong bytes");
        p += got.size();
      } catch (const corio::incomplete_read_error& e) {
        if (predictable && (left >= o.n || e.partial() != data.substr(p) || e.expected() != o.n))
          fail("readexactly(n): wrong incomplete_read_error");
        p = data.size();
      }
      break;
    }
    case 2:
    case 3: {
      const bool line = o.kind == 2;
      const std::string sep = line ? std::string("\n") : o.sep;
      const std::size_t idx = data.find(sep, p);
      try {
        std::string got = line ? co_await a.reader.readline() : co_await a.reader.readuntil(sep);
        if (predictable) {
          std::string want = idx == std::string::npos ? data.substr(p) : data.substr(p, idx + sep.size() - p);
          if (idx != std::string::npos && idx - p > limit)
            fail("readline/readuntil returned a line longer than the limit");
          if (idx == std::string::npos && (!line || left + 1 - std::min(left + 1, sep.size()) > limit))
            fail("readuntil returned without its separator");
          if (got != want)
            fail("readline/readuntil returned the wrong bytes");
        }
        p += got.size();
      } catch (const corio::limit_overrun_error& e) {
        if (predictable) {
          const bool over = idx != std::string::npos ? idx - p > limit : left + 1 > limit + sep.size();
          if (!over)
            fail("limit_overrun_error within the limit");
          if (e.consumed() <= limit)
            fail("limit_overrun_error::consumed() within the limit");
        }
        if (line)
          predictable = false; // dropped a chunking-dependent amount
      } catch (const corio::incomplete_read_error& e) {
        if (predictable && (line || idx != std::string::npos || e.partial() != data.substr(p)))
          fail("readuntil: wrong incomplete_read_error");
        p = data.size();
      }
      break;
    }
    case 5: {
      const std::vector<std::string> seps{o.sep, o.sep2};
      const auto [idx, end] = first_match(data, p, seps);
      const std::size_t longest = std::max(o.sep.size(), o.sep2.size());
      try {
        std::string got = co_await a.reader.readuntil(seps);
        if (predictable && (idx == std::string::npos || idx - p > limit || got != data.substr(p, end - p)))
          fail("readuntil(several) returned the wrong bytes");
        p += got.size();
      } catch (const corio::limit_overrun_error& e) {
        if (predictable) {
          const bool over = idx != std::string::npos ? idx - p > limit : left + 1 > limit + longest;
          if (!over || e.consumed() <= limit)
            fail("readuntil(several): limit_overrun_error within the limit");
        }
      } catch (const corio::incomplete_read_error& e) {
        if (predictable && (idx != std::string::npos || left + 1 > limit + longest || e.partial() != data.substr(p)))
          fail("readuntil(several): wrong incomplete_read_error");
        p = data.size();
      }
      break;
    }
    default: {
      std::string got = co_await a.reader.read();
      if (predictable && got != data.substr(p))
        fail("read() did not return the rest");
      if (!predictable && (got.size() > data.size() || data.compare(data.size() - got.size(), got.size(), got) != 0))
        fail("after a readline overrun, read() is not a suffix of the stream");
      p = data.size();
      break;
    }
    }
  }
  std::string rest = co_await a.reader.read();
  if (predictable && rest != data.substr(p))
    fail("the rest differs");
  if (!a.reader.at_eof())
    fail("not at eof after read()");
  co_await writer;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const std::size_t limit = in.ConsumeIntegralInRange<std::size_t>(1, 64);
  std::vector<std::size_t> cuts(in.ConsumeIntegralInRange<std::size_t>(0, 16));
  for (auto& c : cuts)
    c = in.ConsumeIntegralInRange<std::size_t>(1, 80);
  std::vector<op> ops(in.ConsumeIntegralInRange<std::size_t>(0, 16));
  for (auto& o : ops) {
    o.kind = in.ConsumeIntegralInRange(0, 5);
    o.n = in.ConsumeIntegralInRange<std::size_t>(0, 100);
    o.sep = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<std::size_t>(1, 3));
    if (o.sep.empty())
      o.sep = "\n";
    o.sep2 = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<std::size_t>(1, 4));
    if (o.sep2.empty())
      o.sep2 = "\r\n";
  }
  std::string bytes = in.ConsumeRemainingBytesAsString();
  if (bytes.size() > 2048)
    bytes.resize(2048);
  corio::testing::mock_clock clock;
  corio::run(program(limit, std::move(bytes), std::move(cuts), std::move(ops)), {.clock = &clock});
  return 0;
}
