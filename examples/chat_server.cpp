// A line-based chat server: each line a client sends goes to every other client as "<name>: <line>".
//
//   chat_server [--host H] [--port P] [--queue-size N] [--grace SECONDS]
//
// Defaults: 127.0.0.1, port 8888 (0 picks a free one), 256 queued messages per client, grace period 5 s.
// Prints `listening on <addr>:<port>` once ready. Try it with a few `nc 127.0.0.1 8888`.
//
// Protocol (lines end with "\n"; a "\r" before it is ignored):
//   - a client is "user<N>" until it sends "/nick NAME" (1 to 32 characters, no spaces, not taken);
//   - lines from the server itself start with "* ": "* you are user1", "* user2 joined",
//     "* user2 is now bob", "* bob left", "* server shutting down";
//   - "* N messages to you were dropped" (see below);
//   - a line longer than 64 KiB is dropped whole.
//
// Slow clients: every client has a bounded queue of outgoing messages and a writer task that empties it
// into the socket (waiting with drain() when the socket is full). Broadcasting never waits: it offers the
// message to each queue with try_put(), and a full queue drops it (counted). So a client that stops
// reading loses messages — and is told how many once it catches up — but never slows the others down.
// (The other policy, disconnecting such a client, would be one line in broadcast(); dropping keeps the
// connection and is what an IRC-like chat usually does.)
//
// SIGTERM or Ctrl-C: stop accepting, tell everyone, give the clients the grace period to leave, then
// close the remaining connections; exit status 0.
#include <corio/corio.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace std::chrono_literals;
using message = std::shared_ptr<const std::string>; // one copy of a line, shared by every queue

struct options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8888;
  std::size_t queue_size = 256;
  corio::duration grace = 5s;
};

struct client {
  client(std::string n, std::size_t queue_size) : name(std::move(n)), outbox(queue_size) {}
  std::string name;
  corio::queue<message> outbox;
  std::size_t dropped = 0; // messages not queued since the client was last told
};

class chat_room {
public:
  explicit chat_room(std::size_t queue_size) : queue_size_(queue_size) {}

  std::shared_ptr<client> join() {
    auto c = std::make_shared<client>(std::string("user") + std::to_string(++joined_), queue_size_);
    tell(*c, "* you are " + c->name);
    broadcast(nullptr, "* " + c->name + " joined");
    clients_.push_back(c);
    return c;
  }
  void leave(const std::shared_ptr<client>& c) {
    std::erase(clients_, c);
    c->outbox.shutdown(); // its writer sends what is queued, then ends
    broadcast(nullptr, "* " + c->name + " left");
  }
  void rename(client& c, std::string name) {
    bool valid = !name.empty() && name.size() <= 32 && name.find_first_of(" \t") == std::string::npos;
    bool taken = std::any_of(clients_.begin(), clients_.end(), [&](const auto& o) { return o->name == name; });
    if (!valid || taken) {
      tell(c, "* nick " + name + " refused: " + (valid ? "taken" : "1 to 32 characters, no spaces"));
      return;
    }
    std::string old = std::exchange(c.name, std::move(name));
    tell(c, "* you are " + c.name);
    broadcast(&c, "* " + old + " is now " + c.name);
  }
  /// Queues `text` for every client but `from`; never waits.
  void broadcast(const client* from, std::string text) {
    auto m = std::make_shared<const std::string>(std::move(text) + "\n");
    for (const auto& c : clients_)
      if (c.get() != from && !c->outbox.try_put(message(m)))
        ++c->dropped;
  }

private:
  void tell(client& c, std::string text) {
    if (!c.outbox.try_put(std::make_shared<const std::string>(std::move(text) + "\n")))
      ++c.dropped;
  }

  std::vector<std::shared_ptr<client>> clients_;
  std::size_t queue_size_;
  unsigned long joined_ = 0;
};

// Empties the client's queue into its socket until the queue is shut down (the client left).
corio::task<> send_loop(std::shared_ptr<client> me, corio::stream_writer writer) {
  try {
    for (;;) {
      message m = co_await me->outbox.get();
      writer.write(*m);
      if (me->dropped > 0 && me->outbox.empty()) { // caught up: say what was lost
        writer.write("* " + std::to_string(std::exchange(me->dropped, 0)) + " messages to you were dropped\n");
      }
      co_await writer.drain(); // waits while the client is slow to read; nobody else waits for this
    }
  } catch (const corio::queue_shut_down&) {
    // left: everything queued was written
  } catch (const std::system_error&) {
    // the connection broke; the reading side sees it too and ends the session
  }
}

// Drops a line longer than the reader's limit, up to and including its '\n', however much of it is still
// to come. (readline() would drop only what is buffered and hand out the rest of the line next: asyncio's
// rule.) readuntil() keeps the data when it overruns; each round drops what cannot hold the separator.
corio::task<> skip_long_line(corio::stream_reader reader) {
  for (;;) {
    std::size_t drop = 0;
    try {
      (void)co_await reader.readuntil("\n");
      co_return; // the line's end, dropped with it
    } catch (const corio::limit_overrun_error& e) {
      drop = e.consumed();
    }
    (void)co_await reader.readexactly(drop);
  }
}

// Reads the client's lines and broadcasts them, until end of stream. A line over the reader's limit
// (64 KiB) is dropped whole.
corio::task<> receive_loop(chat_room& room, std::shared_ptr<client> me, corio::stream_reader reader) {
  for (;;) {
    std::string line;
    bool too_long = false;
    try {
      line = co_await reader.readuntil("\n");
    } catch (const corio::limit_overrun_error&) {
      too_long = true; // nothing taken yet
    } catch (const corio::incomplete_read_error& e) {
      line = std::move(e.partial()); // the stream ended: a last line without '\n', or nothing
    } catch (const std::system_error&) {
      co_return; // the connection broke (reset): the client is gone
    }
    if (too_long) {
      try {
        co_await skip_long_line(reader);
      } catch (const std::exception&) {
        co_return; // the stream ended or broke inside the long line
      }
      continue;
    }
    if (line.empty())
      co_return; // end of stream
    line.erase(line.find_last_not_of("\r\n") + 1);
    if (line.starts_with("/nick "))
      room.rename(*me, line.substr(6));
    else if (!line.empty())
      room.broadcast(me.get(), me->name + ": " + line);
  }
}

corio::task<> session(chat_room& room, corio::stream_reader reader, corio::stream_writer writer) {
  std::shared_ptr<client> me = room.join();
  corio::task_group group;
  group.spawn(send_loop(me, writer));
  std::exception_ptr failure; // cancellation, when the server closes the remaining connections
  try {
    co_await receive_loop(room, me, reader);
  } catch (...) {
    failure = std::current_exception();
  }
  room.leave(me);
  // Normally the writer sends what was queued before the client left, then ends. When the session was
  // cancelled, this cancels the writer too and waits for it (and raises cancelled_error).
  co_await group.wait();
  if (failure)
    std::rethrow_exception(failure);
}

corio::task<int> serve(options opt) {
  chat_room room(opt.queue_size);
  corio::server_options server_opt;
  server_opt.on_handler_error = [](std::exception_ptr e, const corio::address& peer) {
    std::fprintf(stderr, "chat_server: %s: %s\n", peer.to_string().c_str(), corio::describe(e).c_str());
  };
  auto handler = [&room](corio::stream_reader r, corio::stream_writer w) {
    return session(room, std::move(r), std::move(w));
  };
  corio::server server = co_await corio::start_server(handler, opt.host, opt.port, server_opt);
  std::printf("listening on %s\n", server.addresses().front().to_string().c_str());
  std::fflush(stdout);

  corio::event stop;
  corio::add_signal_handler(*corio::event_loop::current(), SIGTERM, [&stop] { stop.set(); });
  try {
    co_await stop.wait();
  } catch (const corio::cancelled_error&) {
    corio::uncancel(); // Ctrl-C: shut down cleanly
  }

  server.close();
  room.broadcast(nullptr, "* server shutting down");
  bool graceful = true;
  try {
    co_await corio::wait_for(server.wait_closed(), opt.grace);
  } catch (const corio::timeout_error&) {
    graceful = false;
  }
  if (!graceful) {
    server.close_clients();
    co_await server.wait_closed();
  }
  co_return 0;
}

[[noreturn]] void usage(const char* error) {
  std::fprintf(stderr, "chat_server: %s\nusage: chat_server [--host H] [--port P] [--queue-size N] [--grace SECONDS]\n",
               error);
  std::exit(2);
}

options parse(int argc, char** argv) {
  options opt;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (i + 1 >= argc)
      usage((std::string("missing value after ") + std::string(arg)).c_str());
    const char* value = argv[++i];
    char* end = nullptr;
    if (arg == "--host") {
      opt.host = value;
    } else if (arg == "--port") {
      long p = std::strtol(value, &end, 10);
      if (end == value || *end != '\0' || p < 0 || p > 65535)
        usage("--port takes a number from 0 to 65535");
      opt.port = static_cast<std::uint16_t>(p);
    } else if (arg == "--queue-size") {
      long n = std::strtol(value, &end, 10);
      if (end == value || *end != '\0' || n < 1 || n > 1000000)
        usage("--queue-size takes a number from 1 to 1000000");
      opt.queue_size = static_cast<std::size_t>(n);
    } else if (arg == "--grace") {
      double s = std::strtod(value, &end);
      if (end == value || *end != '\0' || !(s > 0) || s > 1e6)
        usage("--grace takes a positive number of seconds");
      opt.grace = std::chrono::duration_cast<corio::duration>(std::chrono::duration<double>(s));
    } else {
      usage((std::string("unknown option ") + std::string(arg)).c_str());
    }
  }
  return opt;
}

} // namespace

int main(int argc, char** argv) {
  options opt = parse(argc, argv);
  try {
    return corio::run(serve(std::move(opt)));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chat_server: %s\n", e.what());
    return 1;
  }
}
