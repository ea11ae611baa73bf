// An HTTP/1.1 server on corio: keep-alive, pipelining, request limits, an idle timeout, a plaintext
// "Hello, World!" route and a static-files route. Requests are parsed with the packaged http-parser, after
// a fast path for the common request (below: simple_request).
//
//     http_server [--host H] [--port P] [--root DIR] [--idle-timeout SECONDS]
//                 [--max-header-bytes N] [--max-body-bytes N] [--threads N] [--parser fast|http-parser]
//
// Routes: GET/HEAD `/` and `/plaintext` answer "Hello, World!"; GET/HEAD `/static/<path>` serves the file
// <path> under --root (404 without --root), its body sent with corio::sock_sendfile (zero-copy: a large
// file is never read into memory; a symbolic link leading out of --root is not followed). Other paths:
// 404; other methods: 405. Limits: a request line plus headers over --max-header-bytes gets 431, a body
// over --max-body-bytes gets 413, an HTTP version other than 1.x gets 505, anything http-parser rejects
// gets 400; each of those closes the connection. A request with `Expect: 100-continue` and a body is
// told "100 Continue" once its head is accepted. A connection with no request for --idle-timeout
// seconds is closed, and so is one whose request head does not arrive whole within --idle-timeout
// seconds (however slowly its bytes trickle in: slowloris). HTTP/1.0 keep-alive is answered with
// `Connection: keep-alive`. Prints "listening on <address>" once ready; SIGINT or SIGTERM
// stop it: no more accepts, open connections are cancelled, exit status 0.
//
// --threads N (default 1) runs N event loops on N threads (corio::run_parallel), each with its own
// listener on the same port (SO_REUSEPORT: the kernel spreads new connections over them). Each loop
// prints its "listening on" line; SIGINT or SIGTERM stops every loop.
//
// --parser http-parser turns the fast path off (every request goes through http-parser; for comparisons).
#include <corio/corio.hpp>

#include <fcntl.h>
#include <http_parser.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hold_port.hpp"

namespace {

struct config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string root; // static files; empty: none
  corio::duration idle_timeout = std::chrono::seconds(60);
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 1024 * 1024;
  std::size_t threads = 1; // event loops, each with a listener on the port (SO_REUSEPORT when > 1)
  bool fast_path = true;   // simple_request before http-parser (--parser http-parser: off)
};

constexpr std::string_view hello_response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
                                            "Hello, World!";
constexpr std::string_view hello_head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n";

/// Appends the decimal digits of n (std::to_chars: no temporary string, so an answer allocates nothing
/// once `out` has grown to its usual size).
void append_number(std::string& out, std::size_t n) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, end);
}

/// A short answer whose body is its reason phrase and a newline.
void append_simple(std::string& out, int status, std::string_view reason, bool close, bool head = false,
                   bool keep_alive_header = false) {
  out.append("HTTP/1.1 ");
  append_number(out, static_cast<std::size_t>(status));
  out.append(" ").append(reason);
  out.append("\r\nContent-Type: text/plain\r\nContent-Length: ");
  append_number(out, reason.size() + 1);
  out.append(close               ? "\r\nConnection: close\r\n\r\n"
             : keep_alive_header ? "\r\nConnection: keep-alive\r\n\r\n"
                                 : "\r\n\r\n");
  if (!head)
    out.append(reason).append("\n");
}

std::string_view content_type(std::string_view path) {
  const auto dot = path.rfind('.');
  const std::string_view ext = dot == std::string_view::npos ? "" : path.substr(dot + 1);
  if (ext == "html" || ext == "htm")
    return "text/html; charset=utf-8";
  if (ext == "txt")
    return "text/plain; charset=utf-8";
  if (ext == "css")
    return "text/css";
  if (ext == "js")
    return "text/javascript";
  if (ext == "json")
    return "application/json";
  if (ext == "png")
    return "image/png";
  if (ext == "jpg" || ext == "jpeg")
    return "image/jpeg";
  if (ext == "svg")
    return "image/svg+xml";
  return "application/octet-stream";
}

/// A safe relative path under the static root: no "..", no empty or hidden-escape segments, no
/// backslashes or NULs, no percent-escapes (not decoded, so refused rather than misread).
bool safe_relative(std::string_view p) {
  if (p.empty() || p.front() == '/')
    return false;
  for (const char c : p)
    if (c == '\\' || c == '%' || c == '\0')
      return false;
  std::size_t start = 0;
  while (start <= p.size()) {
    const std::size_t end = std::min(p.find('/', start), p.size());
    const std::string_view seg = p.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..")
      return false;
    start = end + 1;
  }
  return true;
}

/// The byte classes of the fast path, from RFC 9110/9112, narrowed to what http-parser accepts the same
/// way: a target byte is visible ASCII except '#' (http-parser's fragment state); a header name byte is a
/// token character; a header value byte is visible ASCII, space or tab (no obs-text: left to
/// http-parser).
enum : unsigned char { target_byte = 1, name_byte = 2, value_byte = 4 };
constexpr auto byte_classes = [] {
  std::array<unsigned char, 256> t{};
  for (int c = 0x21; c <= 0x7e; ++c)
    t[c] = static_cast<unsigned char>((c == '#' ? 0 : target_byte) | value_byte);
  t[' '] = t['\t'] = value_byte;
  for (int c = 0; c < 256; ++c) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (alnum || (c != 0 && std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos))
      t[c] |= name_byte;
  }
  return t;
}();

/// The header names http-parser gives a meaning (framing, keep-alive, upgrade): a request with one of
/// them goes to http-parser. So does a name that merely starts with one: http-parser 2.9.4 matches them
/// byte by byte and a longer name can still change its verdict ("Transfer-Encodingx: chunked" is an
/// error there).
bool meaningful_header(std::string_view name) {
  static constexpr std::array<std::string_view, 5> names{"connection", "content-length", "proxy-connection",
                                                         "transfer-encoding", "upgrade"};
  for (const std::string_view lower : names) {
    if (name.size() < lower.size())
      continue;
    std::size_t i = 0;
    while (i < lower.size() && (name[i] | 0x20) == lower[i]) // token bytes: | 0x20 lowers letters only
      ++i;
    if (i == lower.size())
      return true;
  }
  return false;
}

/// The fast path: the request most clients send, parsed without http-parser's byte-at-a-time state
/// machine (a fifth of the server's CPU per pipelined request). It takes a request only when all of it
/// is in `data` and it is
///   GET or HEAD, one space, an origin-form target (starts with '/'), one space, HTTP/1.0 or HTTP/1.1,
///   CRLF; header lines `name:value` with token names and visible-ASCII values, none of the names
///   http-parser gives a meaning (so: no body, keep-alive by the version alone); the blank line; and
///   no longer than `limit`, so within the header limits.
/// Such a request means the same to http-parser, which would accept it and report the same method,
/// target and keep-alive (tests/unit/test_http_parse.cpp and fuzz/fuzz_http.cpp compare the two).
/// Anything else, including a request cut off by the end of the read, returns 0: http-parser decides.
struct simple_request {
  std::size_t length = 0; // the request's bytes in `data`; 0: not taken
  bool head = false;
  bool keep_alive = false;
  std::string_view target;
};

simple_request parse_simple(const char* data, std::size_t n, std::size_t limit) {
  simple_request r;
  const char* p = data;
  const char* const end = data + std::min(n, limit);
  if (end - p >= 4 && std::memcmp(p, "GET ", 4) == 0) {
    p += 4;
  } else if (end - p >= 5 && std::memcmp(p, "HEAD ", 5) == 0) {
    r.head = true;
    p += 5;
  } else {
    return {};
  }
  const char* const target = p;
  if (p == end || *p != '/')
    return {};
  while (p != end && (byte_classes[static_cast<unsigned char>(*p)] & target_byte) != 0)
    ++p;
  r.target = std::string_view(target, static_cast<std::size_t>(p - target));
  // " HTTP/1.x\r\n"
  if (end - p < 11 || std::memcmp(p, " HTTP/1.", 8) != 0 || (p[8] != '0' && p[8] != '1') || p[9] != '\r' ||
      p[10] != '\n')
    return {};
  r.keep_alive = p[8] == '1';
  p += 11;
  for (;;) {
    if (end - p < 2)
      return {};
    if (p[0] == '\r') {
      if (p[1] != '\n')
        return {};
      p += 2;
      break;
    }
    const char* const name = p;
    while (p != end && (byte_classes[static_cast<unsigned char>(*p)] & name_byte) != 0)
      ++p;
    if (p == name || p == end || *p != ':' ||
        meaningful_header(std::string_view(name, static_cast<std::size_t>(p - name))))
      return {};
    ++p;
    while (p != end && (byte_classes[static_cast<unsigned char>(*p)] & value_byte) != 0)
      ++p;
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
      return {};
    p += 2;
  }
  r.length = static_cast<std::size_t>(p - data);
  return r;
}

/// One parsed request waiting for its answer (answers go out in request order: pipelining).
struct request {
  enum class route : unsigned char { hello, file, not_found, bad_method } kind;
  bool head;
  bool keep_alive;
  std::string path;         // for files only (so the hello path allocates nothing): under --root
  bool keep_alive_header{}; // HTTP/1.0 with keep-alive: say so in the answer
};

/// The per-connection protocol state, fed by http_parser's callbacks.
class http_connection {
public:
  explicit http_connection(const config& cfg) : cfg_(cfg) {
    http_parser_init(&parser_, HTTP_REQUEST);
    parser_.data = this;
  }

  /// Parses one read's bytes. Returns the status to fail with (400/413/431), or 0.
  ///
  /// Between requests the fast path (parse_simple) takes each complete simple request; at the first one
  /// it does not take, http-parser parses one request — paused in complete(), so that the fast path can
  /// take the next — or the rest of the read, when the request goes on in the next one (it then finishes
  /// that request first). A request either path took that says to close ends the parsing: what follows
  /// it is not answered.
  int feed(const char* data, std::size_t n) {
    std::size_t pos = 0;
    while (pos < n && !closing) {
      if (between_requests_ && cfg_.fast_path) {
        const simple_request r = parse_simple(data + pos, n - pos, header_limit());
        if (r.length != 0) {
          add_request(r.head ? HTTP_HEAD : HTTP_GET, r.target, r.keep_alive);
          ++fast_requests;
          pos += r.length;
          continue;
        }
      }
      const std::size_t used = http_parser_execute(&parser_, &settings(), data + pos, n - pos);
      if (error_ != 0)
        return error_;
      const auto err = HTTP_PARSER_ERRNO(&parser_);
      if (err == HPE_PAUSED) { // complete(): one request parsed
        if (closing)
          return 0;
        if (parser_.upgrade)
          return 400; // CONNECT or Upgrade: another protocol follows, which this server does not speak
        http_parser_pause(&parser_, 0);
        pos += used;
        continue;
      }
      if (err == HPE_HEADER_OVERFLOW)
        return 431;
      if (err != HPE_OK || parser_.upgrade || used != n - pos)
        return 400;
      pos = n;
    }
    return 0;
  }

  /// Part of a request's head has come, not all of it: its time counts from the wait for it (slowloris).
  [[nodiscard]] bool in_head() const { return in_head_; }
  /// True once for a request whose client waits for "100 Continue" before sending the body.
  [[nodiscard]] bool take_continue() { return std::exchange(continue_, false); }
  [[nodiscard]] const std::string& root() const { return cfg_.root; }

  std::vector<request> requests; // parsed, not yet answered
  bool closing = false;          // a request asked to close (or HTTP/1.0 without keep-alive)
  std::size_t fast_requests = 0; // how many the fast path took (for tests)

private:
  static const http_parser_settings& settings() {
    static const http_parser_settings s = [] {
      http_parser_settings x{};
      x.on_message_begin = [](http_parser* p) { return self(p).begin(); };
      x.on_url = [](http_parser* p, const char* at, std::size_t n) { return self(p).url(at, n); };
      x.on_header_field = [](http_parser* p, const char* at, std::size_t n) { return self(p).header_field(at, n); };
      x.on_header_value = [](http_parser* p, const char* at, std::size_t n) { return self(p).header_value(at, n); };
      x.on_headers_complete = [](http_parser* p) { return self(p).headers_complete(); };
      x.on_body = [](http_parser* p, const char*, std::size_t n) { return self(p).body(n); };
      x.on_message_complete = [](http_parser* p) { return self(p).complete(); };
      return x;
    }();
    return s;
  }
  static http_connection& self(http_parser* p) { return *static_cast<http_connection*>(p->data); }

  int fail(int status) {
    error_ = status;
    return 1; // any non-zero return stops the parser
  }
  /// The longest head the fast path takes: within --max-header-bytes and http-parser's own limit, so that
  /// neither limit could have refused it.
  [[nodiscard]] std::size_t header_limit() const {
    return std::min<std::size_t>(cfg_.max_header_bytes, HTTP_MAX_HEADER_SIZE);
  }
  int begin() {
    between_requests_ = false;
    in_head_ = true;
    url_.clear();
    header_bytes_ = 0;
    body_bytes_ = 0;
    field_.clear();
    expect_.clear();
    in_value_ = false;
    return 0;
  }
  int url(const char* at, std::size_t n) {
    if (header_bytes(n) != 0)
      return 1;
    url_.append(at, n);
    return 0;
  }
  int header_bytes(std::size_t n) {
    header_bytes_ += n;
    return header_bytes_ > cfg_.max_header_bytes ? fail(431) : 0;
  }
  /// A header name, in pieces: kept (lowered, the first 15 bytes: no allocation) to spot Expect.
  int header_field(const char* at, std::size_t n) {
    if (in_value_) {
      field_.clear();
      in_value_ = false;
    }
    for (std::size_t i = 0; i < n && field_.size() < 15; ++i)
      field_.push_back(static_cast<char>(at[i] | 0x20));
    return header_bytes(n);
  }
  int header_value(const char* at, std::size_t n) {
    in_value_ = true;
    if (field_ == "expect")
      for (std::size_t i = 0; i < n && expect_.size() < 15; ++i)
        expect_.push_back(static_cast<char>(at[i] | 0x20));
    return header_bytes(n);
  }
  int headers_complete() {
    in_head_ = false;
    if (parser_.http_major != 1) {
      error_ = 505;
      return -1;
    }
    // Content-Length is known here; a chunked body is counted as it comes (body()).
    if ((parser_.flags & F_CONTENTLENGTH) != 0 && parser_.content_length > cfg_.max_body_bytes) {
      error_ = 413;
      return -1; // not 1 or 2, which mean "no body" here: an error, the parser stops
    }
    const bool body =
        (parser_.flags & F_CHUNKED) != 0 || ((parser_.flags & F_CONTENTLENGTH) != 0 && parser_.content_length > 0);
    if (body && expect_ == "100-continue" && parser_.http_minor >= 1)
      continue_ = true; // the client waits for a word before it sends the body
    return 0;
  }
  int body(std::size_t n) {
    body_bytes_ += n;
    return body_bytes_ > cfg_.max_body_bytes ? fail(413) : 0;
  }
  int complete() {
    const bool keep_alive = http_should_keep_alive(&parser_) != 0;
    add_request(static_cast<http_method>(parser_.method), url_, keep_alive, keep_alive && parser_.http_minor == 0);
    between_requests_ = true;
    http_parser_pause(&parser_, 1); // feed() goes on from the next request (or stops: closing)
    return 0;
  }
  void add_request(http_method method, std::string_view url, bool keep_alive, bool keep_alive_header = false) {
    const bool head = method == HTTP_HEAD;
    const std::string_view path = url.substr(0, url.find('?'));
    request r{request::route::not_found, head, keep_alive, {}, keep_alive_header};
    if (path == "/" || path == "/plaintext") {
      r.kind = request::route::hello;
    } else if (path.starts_with("/static/") && !cfg_.root.empty() && safe_relative(path.substr(8))) {
      r.kind = request::route::file;
      r.path = cfg_.root + "/" + std::string(path.substr(8));
    }
    if (r.kind != request::route::not_found && method != HTTP_GET && !head)
      r.kind = request::route::bad_method;
    requests.push_back(std::move(r));
    if (!keep_alive)
      closing = true; // nothing after this request is answered
  }

  const config& cfg_;
  http_parser parser_{};
  std::string url_;
  std::size_t header_bytes_ = 0;
  std::size_t body_bytes_ = 0;
  int error_ = 0;
  bool between_requests_ = true; // http-parser is not inside a request (no begin() since complete())
  bool in_head_ = false;         // http-parser has part of a request's head (begin(), not yet its end)
  bool in_value_ = false;        // the last header piece was a value: the next name piece starts a name
  bool continue_ = false;        // Expect: 100-continue, the head accepted: "100 Continue" not yet sent
  std::string field_;            // the current header's name, lowered (its first 15 bytes)
  std::string expect_;           // the Expect header's value, lowered (its first 15 bytes)
};

/// An open file, closed with its owner (so also when the sending task is cancelled).
struct file_fd {
  int fd = -1;
  explicit file_fd(int f) noexcept : fd(f) {}
  file_fd(file_fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  file_fd& operator=(file_fd&&) = delete;
  ~file_fd() {
    if (fd >= 0)
      ::close(fd);
  }
};

/// A static file opened for sending: fd < 0 when it cannot be served (missing, a directory, unreadable).
struct static_file {
  file_fd f{-1};
  std::size_t size = 0;
};

/// Opens `relative` under the directory `root` without leaving it: openat2's RESOLVE_BENEATH refuses a
/// symbolic link (or "..") that leads out. Kernels before 5.6 have no openat2: there the real path must
/// start with the root's.
int open_beneath(const std::string& root, const std::string& relative) {
  const file_fd dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (dir.fd < 0)
    return -1;
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  const long fd = ::syscall(SYS_openat2, dir.fd, relative.c_str(), &how, sizeof how);
  if (fd >= 0 || errno != ENOSYS)
    return static_cast<int>(fd);
  const std::unique_ptr<char, decltype(&std::free)> real_root(::realpath(root.c_str(), nullptr), &std::free);
  const std::string path = root + "/" + relative;
  const std::unique_ptr<char, decltype(&std::free)> real(::realpath(path.c_str(), nullptr), &std::free);
  if (!real_root || !real || !std::string_view(real.get()).starts_with(std::string(real_root.get()) + "/"))
    return -1;
  return ::open(real.get(), O_RDONLY | O_CLOEXEC);
}

/// open() and fstat() may block (a cold directory cache, a network file system): they run on the loop's
/// thread pool. If the request is cancelled meanwhile, the result is dropped there and the file closed.
static_file open_static(const std::string& root, const std::string& path) {
  static_file out{file_fd(open_beneath(root, path.substr(root.size() + 1)))};
  struct stat st {};
  if (out.f.fd < 0 || ::fstat(out.f.fd, &st) != 0 || !S_ISREG(st.st_mode))
    return static_file{};
  out.size = static_cast<std::size_t>(st.st_size);
  return out;
}

/// A static file's answer: the head goes to `out`; the body, if any, is sent from the file itself with
/// sock_sendfile — after `out` (the answers before it and this head) has been sent, and before anything
/// appended later — so the file is never read into memory. Raises std::system_error when the peer is gone,
/// and when the file ended early (it shrank meanwhile: the answer cannot be finished, so the connection
/// must close).
corio::task<> send_file(corio::socket& conn, std::string& out, const request& r, const std::string& root) {
  auto opener = [root, path = r.path] { return open_static(root, path); }; // copies: the thread may outlive r
  static_file file = co_await corio::to_thread(opener);
  if (file.f.fd < 0) {
    append_simple(out, 404, "Not Found", !r.keep_alive, r.head,
                  r.keep_alive_header); // missing, a directory, unreadable
    co_return;
  }
  const std::size_t size = file.size;
  out.append("HTTP/1.1 200 OK\r\nContent-Type: ").append(content_type(r.path));
  out.append("\r\nContent-Length: ");
  append_number(out, size);
  out.append(!r.keep_alive         ? "\r\nConnection: close\r\n\r\n"
             : r.keep_alive_header ? "\r\nConnection: keep-alive\r\n\r\n"
                                   : "\r\n\r\n");
  if (r.head || size == 0)
    co_return;
  co_await corio::sock_sendall(conn, out);
  out.clear();
  if (co_await corio::sock_sendfile(conn, file.f.fd, 0, size) != size)
    throw std::system_error(EIO, std::generic_category(), "http_server: " + r.path + " shrank while sent");
}

/// Answers the parsed requests, in order: into `out`, except a static file's body, which is sent from the
/// file (send_file: what `out` held before it is sent first). Raises std::system_error when the peer is gone.
corio::task<> answer(http_connection& c, std::string& out, corio::socket& conn) {
  for (const request& r : c.requests) {
    switch (r.kind) {
    case request::route::hello:
      if (r.keep_alive && !r.keep_alive_header) {
        out.append(r.head ? hello_head : hello_response);
      } else {
        out.append(hello_head.substr(0, hello_head.size() - 2));
        out.append(r.keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
        if (!r.head)
          out.append("Hello, World!");
      }
      break;
    case request::route::file:
      co_await send_file(conn, out, r, c.root());
      break;
    case request::route::not_found:
      append_simple(out, 404, "Not Found", !r.keep_alive, r.head, r.keep_alive_header);
      break;
    case request::route::bad_method:
      append_simple(out, 405, "Method Not Allowed", !r.keep_alive, r.head, r.keep_alive_header);
      break;
    }
  }
  c.requests.clear();
}

std::string_view reason(int status) {
  switch (status) {
  case 413:
    return "Content Too Large";
  case 431:
    return "Request Header Fields Too Large";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Bad Request";
  }
}

/// The idle timeout with one timer per connection instead of a timeout scope per request (whose timer
/// callback is allocated each time: the only allocation left on the keep-alive path). The connection
/// notes when it starts waiting for a request; the timer, when it fires, either closes the idle socket
/// (waking that wait) or re-arms itself for the deadline it now finds. So the timer is allocated once per
/// connection and once per idle period, never per request, and the deadline is exact as before: the
/// limit counts from the start of each wait, and time spent answering (a slow reader) is not idle time —
/// a timer that fires then lapses, and the next wait arms a new one.
class idle_watch {
public:
  idle_watch(corio::socket& conn, corio::duration limit)
      : loop_(*corio::event_loop::current()), conn_(conn), limit_(limit), since_(loop_.time()) {
    arm(since_ + limit_);
  }
  idle_watch(const idle_watch&) = delete;
  idle_watch& operator=(const idle_watch&) = delete;
  ~idle_watch() { timer_.cancel(); } // so the callback never sees a dead `this`

  /// The connection waits for the next request from now on; `more_of_a_head`: for the rest of a request
  /// head, whose time keeps counting from the wait it began in (so a head trickling in byte by byte
  /// cannot keep a connection forever: slowloris).
  void waiting(bool more_of_a_head = false) {
    waiting_ = true;
    if (!more_of_a_head)
      since_ = loop_.time();
    if (lapsed_) {
      lapsed_ = false;
      arm(since_ + limit_);
    }
  }
  /// It has a request to answer: not idle until waiting() again.
  void busy() { waiting_ = false; }
  /// The connection was idle too long; its socket is closed.
  [[nodiscard]] bool expired() const { return expired_; }

private:
  void arm(corio::time_point when) {
    timer_ = loop_.call_at(when, [this] { fire(); });
  }
  void fire() {
    if (!waiting_) {
      lapsed_ = true; // busy answering: no timer until the next wait
      return;
    }
    const corio::time_point deadline = since_ + limit_;
    if (loop_.time() < deadline)
      return arm(deadline);
    expired_ = true;
    conn_.close(); // wakes serve()'s wait for readability, which then sees expired()
  }

  corio::event_loop& loop_;
  corio::socket& conn_;
  corio::duration limit_;
  corio::time_point since_;
  corio::timer_handle timer_;
  bool waiting_ = true;
  bool lapsed_ = false; // the timer fired while busy and was not re-armed
  bool expired_ = false;
};

/// Serves one connection until the peer closes, a request closes it, it errs, or it idles too long.
corio::task<> serve(corio::socket conn, const config& cfg) {
  http_connection c(cfg);
  std::string out;
  std::vector<char> buf(64 * 1024);
  idle_watch idle(conn, cfg.idle_timeout);
  for (;;) {
    std::size_t n = 0;
    idle.waiting(c.in_head());
    try {
      // On epoll, wait for readiness first: right after an answer (or an accept) the next request is
      // rarely there yet, and a recv that fails with EAGAIN would be a wasted syscall per request. On
      // io_uring, sock_recv goes to the ring at once and costs no syscall of its own (an idle close
      // then shows as EBADF, below).
      if (!corio::event_loop::current()->can_recv()) {
        co_await corio::readable(conn);
        if (idle.expired())
          co_return; // idle: closed
      }
      n = co_await corio::sock_recv(conn, buf);
    } catch (const std::system_error&) {
      co_return; // reset by the peer
    }
    idle.busy();
    if (n == 0)
      co_return; // the peer closed
    const int error = c.feed(buf.data(), n);
    try {
      co_await answer(c, out, conn); // what parsed before an error is answered first
      if (error != 0)
        append_simple(out, error, reason(error), true);
      else if (c.take_continue())
        out.append("HTTP/1.1 100 Continue\r\n\r\n"); // after the answers before it: in order
      if (!out.empty()) {
        co_await corio::sock_sendall(conn, out);
        out.clear();
      }
    } catch (const std::system_error&) {
      co_return; // the peer went away (or a file shrank while sent)
    }
    if (error != 0) {
      // Closing with the rest of a rejected request unread would send a reset, which can overtake the
      // error response in the client's receive queue. So half-close and drain what the client still
      // sends, as nginx's lingering close does (bounded: 1 s, 1 MiB).
      (void)::shutdown(conn.fd(), SHUT_WR);
      try {
        auto linger = corio::timeout(std::chrono::seconds(1));
        for (std::size_t drained = 0; drained < (1u << 20);) {
          std::size_t k = co_await corio::sock_recv(conn, buf);
          if (k == 0)
            break;
          drained += k;
        }
      } catch (const corio::timeout_error&) {
      } catch (const std::system_error&) {
      }
      co_return;
    }
    if (c.closing)
      co_return;
  }
}

/// The open connections, so that shutdown can cancel them.
struct connections {
  std::unordered_map<std::uint64_t, corio::join_handle<>> open;
  std::uint64_t next_id = 0;
};

corio::task<> serve_and_forget(corio::socket conn, const config& cfg, connections& conns, std::uint64_t id) {
  struct forget {
    connections& conns;
    std::uint64_t id;
    ~forget() { conns.open.erase(id); }
  } guard{conns, id};
  co_await serve(std::move(conn), cfg);
}

bool out_of_descriptors(const std::system_error& e) {
  const int code = e.code().value();
  return code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM;
}

corio::task<> accept_loop(corio::socket& listener, const config& cfg, connections& conns) {
  for (;;) {
    corio::accepted a;
    bool back_off = false;
    try {
      a = co_await corio::sock_accept(listener);
    } catch (const std::system_error& e) {
      if (!out_of_descriptors(e))
        throw;
      back_off = true;
    }
    if (back_off) {
      std::fputs("http_server: out of file descriptors; accepting again in 100 ms\n", stderr);
      co_await corio::sleep(std::chrono::milliseconds(100));
      continue;
    }
    a.conn.set_no_delay(true);
    const std::uint64_t id = conns.next_id++;
    conns.open.emplace(id, corio::spawn(serve_and_forget(std::move(a.conn), cfg, conns, id)));
  }
}

/// Waits for a task to end, however it ends (here: cancelled by us).
corio::task<> finished(corio::join_handle<> h) {
  try {
    co_await h;
  } catch (const std::exception&) {
  }
}

corio::task<int> run_server(config cfg) {
  corio::event_loop& loop = *corio::event_loop::current();
  corio::socket listener = corio::listen_on(corio::address::from_ip(cfg.host, cfg.port), 1024, cfg.threads > 1);
  std::printf("listening on %s\n", listener.local_address().to_string().c_str());
  std::fflush(stdout);

  corio::event stop;
  corio::add_signal_handler(loop, SIGTERM, [&stop] { stop.set(); });
  connections conns;
  corio::join_handle<> acceptor = corio::spawn(accept_loop(listener, cfg, conns));
  try {
    co_await stop.wait();
  } catch (const corio::cancelled_error&) {
    corio::uncancel(); // Ctrl-C (corio::run cancels main): shut down the same way
  }
  corio::remove_signal_handler(loop, SIGTERM);
  acceptor.cancel();
  co_await finished(acceptor);
  listener.close();
  std::vector<corio::join_handle<>> open;
  for (auto& [id, h] : conns.open)
    open.push_back(h);
  for (auto& h : open)
    h.cancel();
  for (auto& h : open)
    co_await finished(h);
  co_return 0;
}

[[noreturn]] void usage() {
  std::fputs("usage: http_server [--host H] [--port P] [--root DIR] [--idle-timeout SECONDS]\n"
             "                   [--max-header-bytes N] [--max-body-bytes N] [--threads N]\n"
             "                   [--parser fast|http-parser]\n",
             stderr);
  std::exit(2);
}

config parse_args(int argc, char** argv) {
  config cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc)
      usage();
    const char* value = argv[++i];
    char* end = nullptr;
    if (arg == "--host") {
      cfg.host = value;
    } else if (arg == "--port") {
      const long p = std::strtol(value, &end, 10);
      if (*end != '\0' || p < 0 || p > 65535)
        usage();
      cfg.port = static_cast<std::uint16_t>(p);
    } else if (arg == "--root") {
      cfg.root = value;
    } else if (arg == "--idle-timeout") {
      const double s = std::strtod(value, &end);
      if (*end != '\0' || s <= 0)
        usage();
      cfg.idle_timeout = std::chrono::duration_cast<corio::duration>(std::chrono::duration<double>(s));
    } else if (arg == "--max-header-bytes" || arg == "--max-body-bytes") {
      const unsigned long long n = std::strtoull(value, &end, 10);
      if (*end != '\0' || n == 0)
        usage();
      (arg == "--max-header-bytes" ? cfg.max_header_bytes : cfg.max_body_bytes) = n;
    } else if (arg == "--threads") {
      const unsigned long n = std::strtoul(value, &end, 10);
      if (*end != '\0' || n == 0 || n > 1024)
        usage();
      cfg.threads = n;
    } else if (arg == "--parser") {
      const std::string_view v = value;
      if (v != "fast" && v != "http-parser")
        usage();
      cfg.fast_path = v == "fast";
    } else {
      usage();
    }
  }
  return cfg;
}

} // namespace

#ifndef CORIO_HTTP_SERVER_NO_MAIN // fuzz/fuzz_http.cpp includes this file to drive serve() directly
/// --threads N: one server per loop on one port (port 0 resolved first: hold_port.hpp). A signal reaches one loop's
/// handler; when that server is done it stops the runtime, which cancels the others' main tasks — and run_server takes
/// a cancel as the signal to shut down too.
int run_parallel_servers(config cfg) {
  const corio::socket port_holder = corio_examples::hold_port(cfg.host, cfg.port);
  corio::run_parallel(cfg.threads, [&cfg](corio::runtime_context ctx) -> corio::task<> {
    (void)co_await run_server(cfg);
    ctx.rt.stop();
  });
  return 0;
}

int main(int argc, char** argv) {
  const config cfg = parse_args(argc, argv);
  try {
    if (cfg.threads > 1)
      return run_parallel_servers(cfg);
    return corio::run(run_server(cfg));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "http_server: %s\n", e.what());
    return 1;
  }
}
#endif
