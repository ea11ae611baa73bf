// A load generator for bench/compare_http and bench/compare_echo that costs the client far less per response
// than wrk, so that the server, not the client, sets the pace (issue 5: wrk with one thread tops out near
// 1.3M pipelined responses/s here, and uses most of its CPU at 900k).
//
//   loadgen --port P [--host 127.0.0.1] [--mode http|echo] [--connections C] [--depth D] [--batch] [--size S]
//           [--duration SECONDS] [--threads T] [--path /plaintext] [--json]
//
// http: C keep-alive connections, each keeping D `GET PATH HTTP/1.1` requests in flight (D = 1: plain
//       keep-alive, one request at a time). Whenever a read completes some responses, the same number of
//       requests goes out again in one send (the requests are identical, so the bytes to send are always a
//       slice of one prebuilt buffer of D + 1 copies). --batch instead sends the next D only once all D are
//       answered, as wrk does with bench/wrk_pipeline.lua. Responses are parsed exactly: status line, headers
//       (Content-Length required; `Connection: close` and `Transfer-Encoding` are protocol errors, the
//       benchmark needs keep-alive and fixed-length bodies), then the body is skipped by its length, even
//       when a response is split over reads. Non-200 responses are counted.
// echo: C connections, each sending an S-byte message and waiting for all S bytes to come back, checking
//       every byte: the message is a slice of a random pattern starting at an offset that changes with the
//       connection and the message's number, so lost, repeated, reordered or foreign bytes are caught.
//
// Every thread (T, default 1) has its own epoll and its own share of the connections (all opened before the
// clock starts), reads into one 64 KiB buffer and uses level-triggered EPOLLIN only (EPOLLOUT just while a
// send was partial). Only work completed before the deadline counts; what is in flight then is dropped (the
// connections are closed).
//
// Output: one line (or with --json one JSON object) with the responses (messages in echo mode) per second,
// non-200 responses, errors, and this process's CPU time (user + system) over the measured interval, per
// response and as a share of the wall time (near 100% per thread: the client limits the throughput).
// Exit status: 0 when every response was a 200 and nothing failed; 1 on any error (connect failure, reset,
// EOF, a malformed response, a wrong echoed byte) or non-200 response, with what happened on stderr; 2: bad
// arguments.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct options {
  std::string host = "127.0.0.1";
  int port = 0;
  bool http = true;
  int connections = 64;
  int depth = 1;
  std::size_t size = 64;
  double duration = 5.0;
  int threads = 1;
  std::string path = "/plaintext";
  bool json = false;
  bool batch = false; // http: send the next D requests only once all D are answered (as wrk_pipeline.lua)
};

constexpr std::size_t read_size = 64 * 1024;
// A response head (status line and headers) must fit in this; the longest carried over between reads.
constexpr std::size_t max_head = 8 * 1024;

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "loadgen: %s\nusage: loadgen --port P [--host 127.0.0.1] [--mode http|echo] [--connections C] "
               "[--depth D] [--batch] [--size S] [--duration SECONDS] [--threads T] [--path /plaintext] [--json]\n",
               why);
  std::exit(2);
}

double number(const char* name, const char* s, double lo, double hi) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s, &end);
  if (end == s || *end != '\0' || errno != 0 || !(v >= lo && v <= hi)) {
    char why[200];
    std::snprintf(why, sizeof why, "%s: expected a number in [%g, %g], got '%s'", name, lo, hi, s);
    usage(why);
  }
  return v;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--json" || a == "--batch") {
      (a == "--json" ? o.json : o.batch) = true;
      continue;
    }
    if (i + 1 >= argc)
      usage((std::string(a) + " needs a value").c_str());
    const char* v = argv[++i];
    if (a == "--port")
      o.port = static_cast<int>(number("--port", v, 1, 65535));
    else if (a == "--host")
      o.host = v;
    else if (a == "--mode") {
      if (std::string_view(v) != "http" && std::string_view(v) != "echo")
        usage("--mode must be http or echo");
      o.http = std::string_view(v) == "http";
    } else if (a == "--connections")
      o.connections = static_cast<int>(number("--connections", v, 1, 1000000));
    else if (a == "--depth")
      o.depth = static_cast<int>(number("--depth", v, 1, 1024));
    else if (a == "--size")
      o.size = static_cast<std::size_t>(number("--size", v, 1, 1 << 24));
    else if (a == "--duration")
      o.duration = number("--duration", v, 0.01, 86400);
    else if (a == "--threads")
      o.threads = static_cast<int>(number("--threads", v, 1, 256));
    else if (a == "--path") {
      o.path = v;
      if (o.path.empty() || o.path[0] != '/' || o.path.find_first_of(" \r\n") != std::string::npos)
        usage("--path must start with / and contain no spaces or line breaks");
    } else
      usage((std::string("unknown option ") + std::string(a)).c_str());
  }
  if (o.port == 0)
    usage("--port is required");
  if (o.threads > o.connections)
    usage("--threads must not exceed --connections");
  return o;
}

// Set by the first thread that fails: every thread then stops (the run's figures are not used).
std::atomic<bool> failed{false};

struct conn {
  int fd = -1;
  std::uint32_t id = 0;
  bool want_out = false; // EPOLLOUT armed: the kernel took only part of a send
  // http: requests sent and not yet answered, bytes still to send (a suffix of the request stream), the
  // response being read (its head partly carried over, or its body partly skipped).
  int in_flight = 0;
  std::size_t to_send = 0;
  std::size_t sent_total = 0; // bytes of the request stream sent so far (where the next send starts, mod len)
  std::size_t body_left = 0;  // > 0: inside a body
  std::string carry;          // a response head split over reads
  // echo: the message in flight.
  std::uint64_t seq = 0;
  std::size_t msg_off = 0; // where it starts in the pattern
  std::size_t sent = 0, got = 0;
};

struct run_failed {};

struct stats {
  std::uint64_t done = 0;
  std::uint64_t non_200 = 0;
  std::uint64_t errors = 0;
};

class worker {
public:
  worker(const options& o, const std::string& requests, std::size_t request_len, const std::string& pattern)
      : o_(o), requests_(requests), request_len_(request_len), pattern_(pattern), buf_(read_size + max_head) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0)
      die(nullptr, "epoll_create1", errno);
  }
  ~worker() {
    for (auto& c : conns_)
      if (c.fd >= 0)
        ::close(c.fd);
    if (ep_ >= 0)
      ::close(ep_);
  }
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  // Blocking connect, then non-blocking with TCP_NODELAY (before the clock starts).
  void open(std::uint32_t id, const sockaddr_in& addr) {
    conn& c = conns_.emplace_back();
    c.id = id;
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd < 0)
      die(&c, "socket", errno);
    if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
      die(&c, "connect", errno);
    const int one = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::fcntl(c.fd, F_SETFL, ::fcntl(c.fd, F_GETFL) | O_NONBLOCK);
  }

  void run(clock_type::time_point deadline) {
    try {
      loop(deadline);
    } catch (const run_failed&) {
      // Reported by fail(); the other threads see `failed` and stop.
    }
  }

  const stats& result() const { return st_; }

private:
  void loop(clock_type::time_point deadline) {
    // conns_ no longer grows: pointers into it are stable from here on.
    for (auto& c : conns_) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = &c;
      if (::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) != 0)
        die(&c, "epoll_ctl", errno);
      if (o_.http) {
        c.to_send = request_len_ * static_cast<std::size_t>(o_.depth);
        c.in_flight = o_.depth;
        flush(c);
      } else
        start_message(c);
    }
    epoll_event events[256];
    while (!failed.load(std::memory_order_relaxed)) {
      const auto now = clock_type::now();
      if (now >= deadline)
        break;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
      const int n = ::epoll_wait(ep_, events, 256, static_cast<int>(std::min<long long>(left, 100)));
      if (n < 0) {
        if (errno == EINTR)
          continue;
        die(nullptr, "epoll_wait", errno);
      }
      // Work that completes after the deadline is not counted: the time of this wake-up decides.
      if (clock_type::now() >= deadline)
        break;
      for (int k = 0; k < n; ++k) {
        conn& c = *static_cast<conn*>(events[k].data.ptr);
        if (events[k].events & EPOLLOUT)
          o_.http ? flush(c) : send_message(c);
        if (events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
          o_.http ? read_http(c) : read_echo(c);
      }
    }
  }

  [[noreturn]] void die(const conn* c, const char* what, int err) { fail(c, what, std::strerror(err)); }

  // Protocol and socket errors end the whole run (every thread stops at its next wake-up): the figures of a
  // run with errors are not used anyway. The summary is still printed, with the error count.
  [[noreturn]] void fail(const conn* c, const char* what, const char* detail) {
    ++st_.errors;
    failed.store(true);
    if (c != nullptr)
      std::fprintf(stderr, "loadgen: connection %u: %s: %s\n", c->id, what, detail);
    else
      std::fprintf(stderr, "loadgen: %s: %s\n", what, detail);
    throw run_failed{};
  }

  void arm(conn& c, bool want_out) {
    if (c.want_out == want_out)
      return;
    epoll_event ev{};
    ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0u);
    ev.data.ptr = &c;
    if (::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev) != 0)
      die(&c, "epoll_ctl", errno);
    c.want_out = want_out;
  }

  // http: sends what is owed, one send for all of it (the stream is periodic with the request's length, and
  // requests_ holds depth + 1 copies, so any suffix of up to depth requests is contiguous in it).
  void flush(conn& c) {
    while (c.to_send > 0) {
      const std::size_t start = c.sent_total % request_len_;
      const ssize_t n = ::send(c.fd, requests_.data() + start, c.to_send, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
          break;
        die(&c, "send", errno);
      }
      c.to_send -= static_cast<std::size_t>(n);
      c.sent_total += static_cast<std::size_t>(n);
    }
    arm(c, c.to_send > 0);
  }

  void read_http(conn& c) {
    char* const base = buf_.data();
    for (;;) {
      // A head carried over from the last read goes first, so a head is always contiguous.
      const std::size_t carried = c.carry.size();
      if (carried > 0)
        std::memcpy(base, c.carry.data(), carried);
      const ssize_t n = ::recv(c.fd, base + carried, read_size, 0);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
          return;
        die(&c, "recv", errno);
      }
      if (n == 0)
        fail(&c, "recv", "the server closed the connection");
      c.carry.clear();
      const int answered = parse_http(c, base, carried + static_cast<std::size_t>(n));
      if (o_.batch) {
        // The stream then always restarts at a request boundary: whole batches were sent and answered.
        if (c.in_flight == 0) {
          c.to_send = request_len_ * static_cast<std::size_t>(o_.depth);
          c.in_flight = o_.depth;
          flush(c);
        }
      } else if (answered > 0) {
        c.to_send += request_len_ * static_cast<std::size_t>(answered);
        c.in_flight += answered;
        flush(c);
      }
      // A full buffer may mean more is waiting; otherwise the next epoll_wait says so (level-triggered).
      if (static_cast<std::size_t>(n) < read_size)
        return;
    }
  }

  // Parses the responses in [p, p + len); returns how many completed. A head cut off at the end is carried.
  int parse_http(conn& c, const char* p, std::size_t len) {
    int answered = 0;
    const char* const end = p + len;
    while (p < end) {
      if (c.body_left > 0) {
        const std::size_t k = std::min<std::size_t>(c.body_left, static_cast<std::size_t>(end - p));
        p += k;
        c.body_left -= k;
        if (c.body_left == 0)
          answered += complete(c);
        continue;
      }
      const std::string_view rest(p, static_cast<std::size_t>(end - p));
      const std::size_t head_end = rest.find("\r\n\r\n");
      if (head_end == std::string_view::npos) {
        if (rest.size() > max_head)
          fail(&c, "response", "a response head longer than 8 KiB");
        c.carry.assign(rest);
        break;
      }
      if (c.in_flight == 0)
        fail(&c, "response", "a response to a request that was not sent");
      const std::size_t body = parse_head(c, rest.substr(0, head_end));
      p += head_end + 4;
      c.body_left = body;
      if (body == 0)
        answered += complete(c);
    }
    return answered;
  }

  int complete(conn& c) {
    --c.in_flight;
    ++st_.done;
    return 1;
  }

  static bool iequals_prefix(std::string_view line, std::string_view name) {
    if (line.size() < name.size())
      return false;
    for (std::size_t i = 0; i < name.size(); ++i)
      if ((line[i] | 0x20) != name[i])
        return false;
    return true;
  }

  static std::string_view trim(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
      v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
      v.remove_suffix(1);
    return v;
  }

  // The status line and headers (without the final CRLF CRLF); returns the body's length.
  std::size_t parse_head(conn& c, std::string_view head) {
    // "HTTP/1.x DDD reason"
    if (head.size() < 12 || head.substr(0, 7) != "HTTP/1." || (head[7] != '1' && head[7] != '0') || head[8] != ' ' ||
        head[9] < '1' || head[9] > '5' || head[10] < '0' || head[10] > '9' || head[11] < '0' || head[11] > '9' ||
        (head.size() > 12 && head[12] != ' ' && head[12] != '\r'))
      fail(&c, "bad status line", std::string(head.substr(0, head.find('\r'))).c_str());
    if (head.substr(9, 3) != "200")
      ++st_.non_200;
    bool have_length = false;
    std::size_t length = 0;
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos) {
      const std::size_t next = head.find("\r\n", pos + 2);
      const std::string_view line = head.substr(pos + 2, next == std::string_view::npos ? head.npos : next - pos - 2);
      pos = next;
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0)
        fail(&c, "bad header line", std::string(line).c_str());
      const std::string_view name = line.substr(0, colon);
      const std::string_view value = trim(line.substr(colon + 1));
      if (name.size() == 14 && iequals_prefix(name, "content-length")) {
        if (have_length || value.empty() || value.size() > 12)
          fail(&c, "bad Content-Length", std::string(value).c_str());
        length = 0;
        for (const char ch : value) {
          if (ch < '0' || ch > '9')
            fail(&c, "bad Content-Length", std::string(value).c_str());
          length = length * 10 + static_cast<std::size_t>(ch - '0');
        }
        have_length = true;
      } else if (name.size() == 10 && iequals_prefix(name, "connection")) {
        if (value.size() == 5 && iequals_prefix(value, "close"))
          fail(&c, "response", "Connection: close (the benchmark needs keep-alive)");
      } else if (name.size() == 17 && iequals_prefix(name, "transfer-encoding"))
        fail(&c, "response", "Transfer-Encoding (only Content-Length bodies are supported)");
    }
    if (!have_length)
      fail(&c, "response", "no Content-Length");
    return length;
  }

  // echo: a fresh message (a new slice of the pattern) for connection c.
  void start_message(conn& c) {
    ++c.seq;
    // 4093 is prime and the pattern has 4096 spare bytes: consecutive messages start at different offsets.
    c.msg_off = (static_cast<std::size_t>(c.id) * 131u + c.seq * 17u) % 4093u;
    c.sent = c.got = 0;
    send_message(c);
  }

  void send_message(conn& c) {
    while (c.sent < o_.size) {
      const ssize_t n = ::send(c.fd, pattern_.data() + c.msg_off + c.sent, o_.size - c.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
          break;
        die(&c, "send", errno);
      }
      c.sent += static_cast<std::size_t>(n);
    }
    arm(c, c.sent < o_.size);
  }

  void read_echo(conn& c) {
    for (;;) {
      const ssize_t n = ::recv(c.fd, buf_.data(), read_size, 0);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
          return;
        die(&c, "recv", errno);
      }
      if (n == 0)
        fail(&c, "recv", "the server closed the connection");
      const std::size_t k = static_cast<std::size_t>(n);
      if (c.got + k > c.sent)
        fail(&c, "echo", "received bytes that were not sent yet");
      if (std::memcmp(buf_.data(), pattern_.data() + c.msg_off + c.got, k) != 0)
        fail(&c, "echo", "a received byte differs from the one sent");
      c.got += k;
      if (c.got == o_.size) {
        ++st_.done;
        start_message(c);
        return;
      }
      if (k < read_size)
        return;
    }
  }

  const options& o_;
  const std::string& requests_;
  std::size_t request_len_;
  const std::string& pattern_;
  std::vector<char> buf_;
  std::vector<conn> conns_;
  int ep_ = -1;
  stats st_;
};

double cpu_seconds(double* user, double* sys) {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  *user = static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) * 1e-6;
  *sys = static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) * 1e-6;
  return *user + *sys;
}

// 512+ connections need more descriptors than the usual soft limit of 1024 leaves with T epolls.
void raise_fd_limit(int need) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= static_cast<rlim_t>(need))
    return;
  rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, static_cast<rlim_t>(need));
  ::setrlimit(RLIMIT_NOFILE, &rl);
}

} // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  raise_fd_limit(o.connections + o.threads + 64);

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(o.port));
  if (::inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1)
    usage("--host must be an IPv4 address");

  const std::string one = std::string("GET ") + o.path + " HTTP/1.1\r\nHost: " + o.host + "\r\n\r\n";
  std::string requests;
  for (int i = 0; i <= o.depth; ++i)
    requests += one;
  std::string pattern(o.size + 4096, '\0');
  std::mt19937 rng(12345);
  for (auto& ch : pattern)
    ch = static_cast<char>(rng() >> 24);

  std::vector<std::unique_ptr<worker>> workers;
  try {
    for (int t = 0; t < o.threads; ++t)
      workers.push_back(std::make_unique<worker>(o, requests, one.size(), pattern));
    for (int i = 0; i < o.connections; ++i)
      workers[static_cast<std::size_t>(i % o.threads)]->open(static_cast<std::uint32_t>(i), addr);
  } catch (const run_failed&) {
    return 1; // reported by fail()
  }

  double user0 = 0, sys0 = 0, user1 = 0, sys1 = 0;
  cpu_seconds(&user0, &sys0);
  const auto start = clock_type::now();
  const auto deadline =
      start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(o.duration));
  {
    std::vector<std::jthread> threads;
    for (std::size_t t = 1; t < workers.size(); ++t)
      threads.emplace_back([&, t] { workers[t]->run(deadline); });
    workers[0]->run(deadline);
  }
  const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
  const double cpu = cpu_seconds(&user1, &sys1) - user0 - sys0;
  stats total;
  for (const auto& w : workers) {
    total.done += w->result().done;
    total.non_200 += w->result().non_200;
    total.errors += w->result().errors;
  }
  // The rate is over the configured duration: only work finished before the deadline was counted.
  const double rate = static_cast<double>(total.done) / o.duration;
  const double us_per = total.done > 0 ? cpu / static_cast<double>(total.done) * 1e6 : 0.0;
  const double busy = 100.0 * cpu / std::max(elapsed, 1e-9);
  const char* unit = o.http ? "responses" : "messages";
  if (o.json)
    std::printf("{\"mode\": \"%s\", \"connections\": %d, \"depth\": %d, \"batch\": %s, \"size\": %zu, \"threads\": %d, "
                "\"duration\": %.3f, \"elapsed\": %.3f, \"%s\": %llu, \"per_second\": %.1f, \"non_200\": %llu, "
                "\"errors\": %llu, \"cpu_user_s\": %.4f, \"cpu_sys_s\": %.4f, \"cpu_us_per_unit\": %.4f, "
                "\"busy_percent\": %.1f}\n",
                o.http ? "http" : "echo", o.connections, o.depth, o.batch ? "true" : "false", o.size, o.threads,
                o.duration, elapsed, unit, static_cast<unsigned long long>(total.done), rate,
                static_cast<unsigned long long>(total.non_200), static_cast<unsigned long long>(total.errors),
                user1 - user0, sys1 - sys0, us_per, busy);
  else
    std::printf("loadgen: %s, %d connections, %s %d, %d thread(s), %.2f s: %llu %s, %.1f %s/s, %llu non-200, "
                "%llu errors; CPU %.3f s user + %.3f s sys = %.3f us per %s, %.0f%% busy\n",
                o.http ? "http" : "echo", o.connections, o.http ? "depth" : "size",
                o.http ? o.depth : static_cast<int>(o.size), o.threads, o.duration,
                static_cast<unsigned long long>(total.done), unit, rate, unit,
                static_cast<unsigned long long>(total.non_200), static_cast<unsigned long long>(total.errors),
                user1 - user0, sys1 - sys0, us_per, o.http ? "response" : "message", busy);
  if (total.done == 0) {
    std::fprintf(stderr, "loadgen: no %s completed\n", unit);
    return 1;
  }
  if (total.non_200 > 0) {
    std::fprintf(stderr, "loadgen: %llu responses were not 200\n", static_cast<unsigned long long>(total.non_200));
    return 1;
  }
  return total.errors > 0 ? 1 : 0;
}
