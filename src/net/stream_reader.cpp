// corio::stream_reader: pull-based reads over the transport's buffer.
#include "corio/net/stream_reader.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "corio/io.hpp"
#include "stream_transport.hpp"

namespace corio {
namespace {

using transport_ptr = std::shared_ptr<detail::stream_transport>;

const transport_ptr& need(const transport_ptr& t) {
  if (!t)
    throw invalid_state_error("corio: use of an empty stream_reader");
  return t;
}

std::string take(detail::stream_transport& t, std::size_t n) {
  std::string out(t.rbuf.data(), n);
  t.rbuf.consume(n);
  return out;
}

// Each read loops: satisfy from the buffer; at end of stream, finish; else one recv(), and when the socket
// has nothing, wait for it. The fd is re-read after every wait: close() may have closed it meanwhile,
// which try_fill() then reports as end of stream.

/// Separators a readuntil() looks for: `first`, and for a list the rest in `more`. Where the earliest
/// match ends and starts (the match ending first; of those ending together, the shortest: asyncio's rule).
struct separators {
  std::string first;
  std::vector<std::string> more;
  std::size_t min_size = 0, max_size = 0;

  separators(std::string one, std::vector<std::string> rest) : first(std::move(one)), more(std::move(rest)) {
    min_size = max_size = first.size();
    for (const std::string& s : more) {
      min_size = std::min(min_size, s.size());
      max_size = std::max(max_size, s.size());
    }
    if (min_size == 0)
      throw std::invalid_argument("corio: readuntil() with an empty separator");
  }
  /// [start, end) of the earliest match at or after offset, or npos in both.
  [[nodiscard]] std::pair<std::size_t, std::size_t> find(std::string_view v, std::size_t offset) const {
    std::size_t start = std::string_view::npos, end = std::string_view::npos;
    auto consider = [&](const std::string& s) {
      const std::size_t pos = v.find(s, offset);
      if (pos != std::string_view::npos &&
          (end == std::string_view::npos || pos + s.size() < end || (pos + s.size() == end && pos > start))) {
        start = pos;
        end = pos + s.size();
      }
    };
    consider(first);
    for (const std::string& s : more)
      consider(s);
    return {start, end};
  }
};

task<std::string> read_until(transport_ptr t, separators seps, bool line) {
  constexpr std::size_t npos = std::string_view::npos;
  std::size_t offset = 0; // where the next search starts: no match can start earlier
  for (;;) {
    std::string_view v = t->rbuf.view();
    if (v.size() >= offset + seps.min_size) {
      const auto [start, end] = seps.find(v, offset);
      if (start != npos && start <= t->limit)
        co_return take(*t, end);
      // Not found: a match still to come starts after every position where the longest one would
      // already have fitted.
      const std::size_t consumed = start != npos ? start : v.size() + 1 - std::min(seps.max_size, v.size() + 1);
      if (consumed > t->limit) {
        if (line) // drop the overlong line (through its separator if it is there) so the caller can go on
          t->rbuf.consume(start != npos ? end : v.size());
        throw limit_overrun_error(start != npos ? "corio: separator found, but the chunk is longer than the limit"
                                                : "corio: separator not found, and the chunk exceeds the limit",
                                  consumed);
      }
      offset = consumed;
    }
    if (t->eof) {
      std::string partial = take(*t, v.size());
      if (line)
        co_return partial;
      throw incomplete_read_error(std::move(partial), incomplete_read_error::no_size);
    }
    if (t->try_fill(t->limit + seps.max_size - v.size()) < 0)
      co_await detail::fill_awaiter(*t);
  }
}

} // namespace

task<std::string> stream_reader::read(std::size_t n) {
  transport_ptr t = need(t_);
  if (n == 0)
    co_return std::string();
  for (;;) {
    if (!t->rbuf.empty())
      co_return take(*t, std::min(n, t->rbuf.size()));
    if (t->eof)
      co_return std::string();
    if (t->try_fill(n) < 0)
      co_await detail::fill_awaiter(*t);
  }
}

task<std::size_t> stream_reader::readinto(std::span<char> buf) {
  transport_ptr t = need(t_);
  if (buf.empty())
    co_return 0;
  for (;;) {
    if (!t->rbuf.empty()) {
      const std::size_t n = std::min(buf.size(), t->rbuf.size());
      std::memcpy(buf.data(), t->rbuf.data(), n);
      t->rbuf.consume(n);
      co_return n;
    }
    if (t->eof)
      co_return 0;
    if (t->try_fill(buf.size()) < 0)
      co_await detail::fill_awaiter(*t);
  }
}

task<std::string> stream_reader::read() {
  transport_ptr t = need(t_);
  for (;;) {
    if (t->eof)
      co_return take(*t, t->rbuf.size());
    if (t->try_fill(256 * 1024) < 0)
      co_await detail::fill_awaiter(*t);
  }
}

task<std::string> stream_reader::readexactly(std::size_t n) {
  transport_ptr t = need(t_);
  if (n > std::string().max_size()) // readexactly(-1) arrives here as SIZE_MAX (asyncio: ValueError)
    throw std::invalid_argument("corio: readexactly(" + std::to_string(n) +
                                "): more bytes than a string can hold (a negative size converted?)");
  for (;;) {
    if (t->rbuf.size() >= n)
      co_return take(*t, n);
    if (t->eof)
      throw incomplete_read_error(take(*t, t->rbuf.size()), n);
    if (t->try_fill(n - t->rbuf.size()) < 0)
      co_await detail::fill_awaiter(*t);
  }
}

task<std::string> stream_reader::readline() { return read_until(need(t_), separators("\n", {}), true); }

task<std::string> stream_reader::readuntil(std::string separator) {
  return read_until(need(t_), separators(std::move(separator), {}), false);
}

task<std::string> stream_reader::readuntil(std::vector<std::string> list) {
  if (list.empty())
    throw std::invalid_argument("corio: readuntil() with no separator");
  std::string first = std::move(list.back());
  list.pop_back();
  return read_until(need(t_), separators(std::move(first), std::move(list)), false);
}

task<std::string> stream_reader::readuntil(std::initializer_list<std::string_view> list) {
  return readuntil(std::vector<std::string>(list.begin(), list.end()));
}

/// A parameter, not `this`: the body starts at the first begin(), when the handle lines() was called on
/// may be gone.
static async_generator<std::string> lines_of(stream_reader r) {
  for (;;) {
    std::string line = co_await r.readline();
    if (line.empty())
      co_return;
    co_yield std::move(line);
  }
}

async_generator<std::string> stream_reader::lines() { return lines_of(*this); }

bool stream_reader::at_eof() const { return need(t_)->eof && t_->rbuf.empty(); }
std::size_t stream_reader::buffered() const { return need(t_)->rbuf.size(); }
std::size_t stream_reader::limit() const { return need(t_)->limit; }
void stream_reader::set_limit(std::size_t limit) {
  if (limit == 0)
    throw std::invalid_argument("corio: stream limit must be positive");
  need(t_)->limit = limit;
}
address stream_reader::peer_address() const { return need(t_)->peer; }

} // namespace corio
