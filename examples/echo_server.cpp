// A TCP echo server: every byte a client sends comes back to it.
//
//   echo_server [--host H] [--port P] [--idle-timeout SECONDS] [--grace SECONDS] [--threads N]
//
// Defaults: 127.0.0.1, port 8888 (0 picks a free one), idle timeout 60 s, grace period 5 s. Once it
// listens it prints one line, `listening on <addr>:<port>`, so a script can start it on port 0 and read
// the port. A connection that sends nothing for the idle timeout is closed. Ctrl-C (SIGINT) or SIGTERM
// stops it: no new connections, the open ones get the grace period to finish, then they are cancelled;
// the exit status is 0. --threads N (default 1) runs N event loops on N threads, each with its own
// server on the same port (SO_REUSEPORT); each prints its line, and a signal stops them all.
#include <corio/corio.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "hold_port.hpp"

namespace {

using namespace std::chrono_literals;

struct options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8888;
  corio::duration idle_timeout = 60s;
  corio::duration grace = 5s;
  std::size_t threads = 1; // event loops, each with a server on the port (SO_REUSEPORT when > 1)
};

// The idle timeout, cheaply: one timer per connection rather than one per read. Each read notes the
// time; when the timer fires it looks at that note and either closes the idle connection or re-arms
// itself for the time left (what nginx does, and libuv's docs suggest). `auto t = corio::timeout(idle)`
// around each read is simpler and the right tool for one deadline, but a timer insert and cancel per
// message was a third of this server's own work per 64-byte echo (callgrind: ~2000 instructions per
// message with it, ~1300 with this).
class idle_timer {
public:
  idle_timer(corio::stream_writer writer, corio::duration limit)
      : loop_(*corio::event_loop::current()), writer_(std::move(writer)), limit_(limit), last_(loop_.time()) {
    arm(last_ + limit_);
  }
  idle_timer(const idle_timer&) = delete;
  idle_timer& operator=(const idle_timer&) = delete;
  ~idle_timer() { timer_.cancel(); } // so the callback never sees a dead `this`

  void touch() { last_ = loop_.time(); }

private:
  void arm(corio::time_point when) {
    timer_ = loop_.call_at(when, [this] { fire(); });
  }
  void fire() {
    const corio::time_point deadline = last_ + limit_;
    if (loop_.time() < deadline)
      arm(deadline);
    else
      writer_.abort(); // closes the socket now: the pending read sees end of stream
  }

  corio::event_loop& loop_;
  corio::stream_writer writer_;
  corio::duration limit_;
  corio::time_point last_;
  corio::timer_handle timer_;
};

// One connection: read what has arrived, write it back, repeat until the client closes (or the idle
// timer closes the connection). drain() makes the next read wait while the client is slow to take its
// echo, so unread echoes never pile up here; that wait counts as idle time too. One buffer per
// connection, reused by every read (readinto): no allocation per message; write() sends from it at once
// and copies only what the kernel did not take (into the writer's recycled queue). 16 KiB, the reader's
// smallest receive: a larger message is echoed in pieces, and a connection holds 32 KiB of buffers
// (this one and the reader's) rather than the 64 KiB its reader grew to with read(64 KiB).
corio::task<> echo(corio::stream_reader reader, corio::stream_writer writer, corio::duration idle_timeout) {
  idle_timer idle(writer, idle_timeout);
  std::vector<char> buf(16 * 1024);
  for (;;) {
    const std::size_t n = co_await reader.readinto(buf);
    if (n == 0)
      co_return; // the client closed its side, or the connection was idle too long
    idle.touch();
    writer.write(std::string_view(buf.data(), n));
    co_await writer.drain();
  }
}

corio::task<int> serve(options opt) {
  corio::server_options server_opt;
  server_opt.reuse_port = opt.threads > 1;
  server_opt.on_handler_error = [](std::exception_ptr e, const corio::address& peer) {
    std::fprintf(stderr, "echo_server: %s: %s\n", peer.to_string().c_str(), corio::describe(e).c_str());
  };
  auto handler = [idle = opt.idle_timeout](corio::stream_reader r, corio::stream_writer w) {
    return echo(std::move(r), std::move(w), idle);
  };
  corio::server server = co_await corio::start_server(handler, opt.host, opt.port, server_opt);
  std::printf("listening on %s\n", server.addresses().front().to_string().c_str());
  std::fflush(stdout);

  // Wait for SIGTERM (our handler) or Ctrl-C (corio::run cancels this task).
  corio::event stop;
  corio::add_signal_handler(*corio::event_loop::current(), SIGTERM, [&stop] { stop.set(); });
  try {
    co_await stop.wait();
  } catch (const corio::cancelled_error&) {
    corio::uncancel(); // Ctrl-C: we choose to shut down cleanly instead of ending here
  }

  server.close(); // stop accepting; the connections go on for the grace period
  bool graceful = true;
  try {
    co_await corio::wait_for(server.wait_closed(), opt.grace);
  } catch (const corio::timeout_error&) {
    graceful = false;
  }
  if (!graceful) {
    server.close_clients(); // cancel the handlers still running and wait for them to unwind
    co_await server.wait_closed();
  }
  co_return 0;
}

[[noreturn]] void usage(const char* error) {
  std::fprintf(stderr,
               "echo_server: %s\nusage: echo_server [--host H] [--port P] [--idle-timeout SECONDS] "
               "[--grace SECONDS] [--threads N]\n",
               error);
  std::exit(2);
}

corio::duration seconds_arg(const char* s) {
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (end == s || *end != '\0' || !(v > 0) || v > 1e6)
    usage("a duration must be a positive number of seconds");
  return std::chrono::duration_cast<corio::duration>(std::chrono::duration<double>(v));
}

options parse(int argc, char** argv) {
  options opt;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (i + 1 >= argc)
      usage((std::string("missing value after ") + std::string(arg)).c_str());
    const char* value = argv[++i];
    if (arg == "--host") {
      opt.host = value;
    } else if (arg == "--port") {
      char* end = nullptr;
      long p = std::strtol(value, &end, 10);
      if (end == value || *end != '\0' || p < 0 || p > 65535)
        usage("--port takes a number from 0 to 65535");
      opt.port = static_cast<std::uint16_t>(p);
    } else if (arg == "--idle-timeout") {
      opt.idle_timeout = seconds_arg(value);
    } else if (arg == "--grace") {
      opt.grace = seconds_arg(value);
    } else if (arg == "--threads") {
      char* end = nullptr;
      const unsigned long n = std::strtoul(value, &end, 10);
      if (end == value || *end != '\0' || n == 0 || n > 1024)
        usage("--threads takes a number from 1 to 1024");
      opt.threads = n;
    } else {
      usage((std::string("unknown option ") + std::string(arg)).c_str());
    }
  }
  return opt;
}

} // namespace

#ifndef ECHO_SERVER_NO_MAIN // tests/unit/test_zero_alloc.cpp includes this file to drive echo() directly
// --threads N: one server per loop on one port (port 0 resolved first: hold_port.hpp). A signal
// reaches one loop's handler; when that server is done it stops the runtime, which cancels the other
// loops' serve(), and serve() takes a cancel as the signal to shut down too.
int serve_parallel(options opt) {
  const corio::socket port_holder = corio_examples::hold_port(opt.host, opt.port);
  corio::run_parallel(opt.threads, [&opt](corio::runtime_context ctx) -> corio::task<> {
    (void)co_await serve(opt);
    ctx.rt.stop();
  });
  return 0;
}

int main(int argc, char** argv) {
  options opt = parse(argc, argv);
  try {
    if (opt.threads > 1)
      return serve_parallel(std::move(opt));
    return corio::run(serve(std::move(opt)));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo_server: %s\n", e.what());
    return 1;
  }
}
#endif
