// Pipes: open_pipe / open_pipe_reader / open_pipe_writer (streams), connect_read_pipe and
// connect_write_pipe (protocols), and the transports' other doors: connect_accepted_socket,
// set_protocol, server::get_loop. Every test checks that no task, frame or fd is left, in order and
// shuffled.
#include <corio/net.hpp>
#include <corio/net/pipe.hpp>
#include <corio/net/protocol.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "callback_watch.hpp"
#include "leak_check.hpp"
#include "loop_fixture.hpp"
#include "net_helpers.hpp"
#include "tls_certs.hpp"

using namespace std::chrono_literals;
using corio::task;
using corio::testing::error_code;
using corio::testing::error_text;
using corio::testing::expect_only_main_task;
using corio::testing::pattern;
using corio::testing::spin;

namespace {

constexpr std::size_t mib = 1 << 20;

bool fd_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

/// A raw pipe: {read end, write end}, blocking, close-on-exec.
std::pair<int, int> raw_pipe() {
  int p[2];
  EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
  return {p[0], p[1]};
}

/// Writes all of `data` to a raw blocking fd (small enough for the pipe's buffer, or read concurrently).
void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    ASSERT_GT(n, 0) << std::strerror(errno);
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

/// A protocol that records its callbacks; pokes the watch on each.
struct log_protocol : corio::protocol {
  explicit log_protocol(corio::testing::callback_watch* wd) : w(wd) {}
  corio::testing::callback_watch* w;
  corio::transport* t = nullptr;
  std::string got;
  int made = 0, eofs = 0, lost = 0, pauses = 0, resumes = 0;
  bool keep_open = false;
  std::exception_ptr error;

  void connection_made(corio::transport& tr) override {
    t = &tr;
    ++made;
    w->poke();
  }
  void data_received(std::string_view d) override {
    EXPECT_EQ(lost, 0);
    got.append(d);
    w->poke();
  }
  bool eof_received() override {
    ++eofs;
    w->poke();
    return keep_open;
  }
  void connection_lost(std::exception_ptr e) override {
    ++lost;
    error = std::move(e);
    t = nullptr;
    w->poke();
  }
  void pause_writing() override {
    ++pauses;
    w->poke();
  }
  void resume_writing() override {
    ++resumes;
    w->poke();
  }
};

template <class F> task<> until(corio::testing::callback_watch* w, F done) {
  while (!done())
    co_await w->next("a protocol callback");
}

class Pipe : public corio::testing::ordered_and_shuffled {};

// ---- streams ----------------------------------------------------------------------------------------

// open_pipe(): 2 MiB written in pieces of varying size (writes, moved-in strings, writelines) while a
// task reads; every byte in order, then end of file after close(). The writer waits in drain() above
// its high watermark, so the pipe's 64 KiB buffer is refilled as the reader empties it.
TEST_P(Pipe, OpenPipeCarriesEveryByteInOrder) {
  run([]() -> task<> {
    corio::pipe_streams p = corio::open_pipe();
    const std::string sent = pattern(2 * mib, 3);
    auto reading =
        corio::spawn([](corio::stream_reader r) -> task<std::string> { co_return co_await r.read(); }(p.reader));
    std::size_t at = 0;
    for (std::size_t i = 0; at < sent.size(); ++i) {
      const std::size_t n = std::min(sent.size() - at, 1 + (i * 7919) % 30000);
      std::string_view piece(sent.data() + at, n);
      if (i % 3 == 0) {
        p.writer.write(piece);
      } else if (i % 3 == 1) {
        p.writer.write(std::string(piece));
      } else {
        std::string_view a = piece.substr(0, n / 2), b = piece.substr(n / 2);
        std::vector<std::string_view> parts{a, b};
        p.writer.writelines(parts);
      }
      at += n;
      co_await p.writer.drain();
    }
    p.writer.close();
    co_await p.writer.wait_closed();
    std::string got = co_await reading;
    EXPECT_EQ(got.size(), sent.size());
    EXPECT_TRUE(got == sent) << "the bytes differ";
    EXPECT_TRUE(p.reader.at_eof());
    expect_only_main_task();
  });
}

// open_pipe_reader over an fd of the caller's: lines written by a raw write(), readline(), end of file
// when the writer closes; the fd is closed with the stream.
TEST_P(Pipe, ReaderOverAnExistingFdReadsLinesToEof) {
  run([]() -> task<> {
    auto [rfd, wfd] = raw_pipe();
    std::string line1, line2, rest;
    {
      corio::stream_reader r = corio::open_pipe_reader(rfd);
      write_all(wfd, "first line\nsecond line\ntail");
      line1 = co_await r.readline();
      line2 = co_await r.readline();
      ::close(wfd);
      rest = co_await r.read();
      EXPECT_TRUE(r.at_eof());
    }
    EXPECT_EQ(line1, "first line\n");
    EXPECT_EQ(line2, "second line\n");
    EXPECT_EQ(rest, "tail");
    EXPECT_FALSE(fd_open(rfd)) << "the stream owns the fd";
    expect_only_main_task();
  });
}

// A pipe nobody reads: writes queue past the high watermark and drain() waits until a reader takes
// them; once the reading end is gone a write raises EPIPE on that stream (no SIGPIPE kills the test).
TEST_P(Pipe, WriterBackpressureThenEpipe) {
  run([]() -> task<> {
    auto [rfd, wfd] = raw_pipe();
    corio::stream_writer w = corio::open_pipe_writer(wfd);
    const std::string sent = pattern(mib, 9);
    w.write(sent);
    EXPECT_GT(w.buffer_size(), 64u * 1024) << "the pipe took it all: nothing to wait for";
    bool drained = false;
    auto draining = corio::spawn([](corio::stream_writer wr, bool* flag) -> task<> {
      co_await wr.drain();
      *flag = true;
    }(w, &drained));
    co_await spin(20);
    EXPECT_FALSE(drained) << "drain() returned with nobody reading";
    corio::stream_reader r = corio::open_pipe_reader(rfd);
    std::string got = co_await r.readexactly(sent.size());
    co_await draining;
    EXPECT_TRUE(drained);
    EXPECT_TRUE(got == sent);
    r = corio::stream_reader(); // closes the reading end
    int code = 0;
    try {
      for (int i = 0; i < 100; ++i) { // the first writes may fit in the pipe's buffer
        w.write(pattern(4096, static_cast<std::size_t>(i)));
        co_await w.drain();
      }
    } catch (const std::system_error& e) {
      code = e.code().value();
    }
    EXPECT_EQ(code, EPIPE);
    w.abort();
    expect_only_main_task();
  });
}

// Bad fds: clear errors naming the fd, and the fd is not taken (still open, the caller closes it).
TEST(PipeErrors, BadFdsAreRefusedAndNotTaken) {
  corio::testing::leak_check leaks;
  corio::event_loop loop;
  corio::run_until_complete(loop, []() -> task<> {
    auto expect_invalid = [](auto open, int fd, const char* says) {
      try {
        (void)open(fd);
        ADD_FAILURE() << "no error for fd " << fd;
      } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("fd " + std::to_string(fd)), std::string::npos) << e.what();
      }
      EXPECT_TRUE(fd_open(fd)) << "a refused fd was closed";
    };
    auto reader = [](int fd) { return corio::open_pipe_reader(fd); };
    auto writer = [](int fd) { return corio::open_pipe_writer(fd); };
    std::FILE* f = std::tmpfile();
    expect_invalid(reader, ::fileno(f), "is a regular file");
    expect_invalid(writer, ::fileno(f), "is a regular file");
    std::fclose(f);
    const int dir = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    expect_invalid(reader, dir, "is a directory");
    ::close(dir);
    auto [rfd, wfd] = raw_pipe();
    expect_invalid(reader, wfd, "not open for reading");
    expect_invalid(writer, rfd, "not open for writing");
    ::close(rfd);
    ::close(wfd);
    for (int bad : {-1, rfd}) { // rfd is closed now
      try {
        (void)corio::open_pipe_reader(bad);
        ADD_FAILURE() << "no error for fd " << bad;
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EBADF) << e.what();
      }
    }
    // The protocol forms check the same way, at the co_await, and make no protocol.
    int made = 0;
    auto factory = [&made] {
      ++made;
      return std::make_shared<corio::protocol>();
    };
    std::FILE* g = std::tmpfile();
    bool refused = false;
    try {
      (void)co_await corio::connect_read_pipe(factory, ::fileno(g));
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    EXPECT_TRUE(refused);
    EXPECT_TRUE(fd_open(::fileno(g)));
    std::fclose(g);
    EXPECT_EQ(made, 0);
  }());
  loop.close();
}

// ---- protocols over pipes ---------------------------------------------------------------------------

// connect_read_pipe: data_received gets every byte in order; write() raises; pause_reading holds the
// callbacks (what is written meanwhile comes after resume_reading); the writer's close gives
// eof_received and then connection_lost(nullptr), whatever eof_received answers; the fd is closed.
TEST_P(Pipe, ReadPipeTransportDeliversDataThenEof) {
  run([]() -> task<> {
    corio::testing::callback_watch w;
    auto [rfd, wfd] = raw_pipe();
    auto factory = [&w] {
      auto p = std::make_shared<log_protocol>(&w);
      p->keep_open = true; // ignored on a read pipe
      return p;
    };
    auto made_t = co_await corio::connect_read_pipe(factory, rfd);
    std::shared_ptr<corio::transport> t = made_t.transport;
    auto p = made_t.protocol;
    EXPECT_EQ(p->made, 1);
    EXPECT_TRUE(t->is_reading());
    EXPECT_FALSE(t->can_write_eof());
    EXPECT_EQ(t->fd(), rfd);
    bool write_refused = false;
    try {
      t->write("x");
    } catch (const corio::invalid_state_error& e) {
      write_refused = std::string(e.what()).find("read pipe (fd " + std::to_string(rfd) + ")") != std::string::npos;
    }
    EXPECT_TRUE(write_refused);
    const std::string part1 = pattern(40000, 1), part2 = pattern(20000, 2);
    write_all(wfd, part1);
    co_await until(&w, [&] { return p->got.size() >= part1.size(); });
    t->pause_reading();
    EXPECT_FALSE(t->is_reading());
    write_all(wfd, part2);
    co_await spin(20);
    EXPECT_EQ(p->got.size(), part1.size()) << "data_received while paused";
    t->resume_reading();
    co_await until(&w, [&] { return p->got.size() >= part1.size() + part2.size(); });
    EXPECT_TRUE(p->got == part1 + part2);
    ::close(wfd);
    co_await until(&w, [&] { return p->lost != 0; });
    co_await spin(5);
    EXPECT_EQ(p->eofs, 1);
    EXPECT_EQ(p->lost, 1);
    EXPECT_EQ(p->error, nullptr) << error_text(p->error);
    EXPECT_TRUE(t->is_closed());
    EXPECT_EQ(t->fd(), -1);
    EXPECT_FALSE(fd_open(rfd));
    expect_only_main_task();
  });
}

// connect_write_pipe: a 1 MiB write pauses the protocol; a reader (a stream over the other end) takes
// everything in order and the protocol is resumed; write_eof() closes (a pipe has no half-close): the
// reader sees end of file, connection_lost(nullptr) once.
TEST_P(Pipe, WritePipeTransportWritesWithFlowControl) {
  run([]() -> task<> {
    corio::testing::callback_watch w;
    auto [rfd, wfd] = raw_pipe();
    auto factory = [&w] { return std::make_unique<log_protocol>(&w); };
    auto made_t = co_await corio::connect_write_pipe(factory, wfd);
    std::shared_ptr<corio::transport> t = made_t.transport;
    auto p = made_t.protocol;
    EXPECT_FALSE(t->is_reading());
    t->pause_reading(); // nothing to pause: no effect
    EXPECT_TRUE(t->can_write_eof());
    const std::string sent = pattern(mib, 5);
    t->write(sent);
    EXPECT_EQ(p->pauses, 1);
    corio::stream_reader r = corio::open_pipe_reader(rfd);
    std::string got = co_await r.readexactly(sent.size());
    EXPECT_TRUE(got == sent);
    co_await until(&w, [&] { return p->resumes == 1; });
    t->write("last words");
    t->write_eof();
    EXPECT_TRUE(t->is_closing());
    std::string tail = co_await r.read();
    EXPECT_EQ(tail, "last words");
    co_await until(&w, [&] { return p->lost != 0; });
    co_await spin(5);
    EXPECT_EQ(p->lost, 1);
    EXPECT_EQ(p->error, nullptr) << error_text(p->error);
    EXPECT_EQ(p->eofs, 0);
    expect_only_main_task();
  });
}

// The reading end goes away: an idle write pipe ends with connection_lost(nullptr) without any write;
// one with bytes queued ends with EPIPE naming the pipe.
TEST_P(Pipe, WritePipeEndsWhenItsReaderCloses) {
  run([]() -> task<> {
    corio::testing::callback_watch w;
    auto factory = [&w] { return std::make_shared<log_protocol>(&w); };
    {
      auto [rfd, wfd] = raw_pipe();
      auto made_t = co_await corio::connect_write_pipe(factory, wfd);
      std::shared_ptr<corio::transport> t = made_t.transport;
      auto p = made_t.protocol;
      co_await spin(5);
      EXPECT_EQ(p->lost, 0);
      ::close(rfd);
      co_await until(&w, [&] { return p->lost != 0; });
      EXPECT_EQ(p->error, nullptr) << error_text(p->error);
      EXPECT_TRUE(t->is_closed());
    }
    {
      auto [rfd, wfd] = raw_pipe();
      auto made_t = co_await corio::connect_write_pipe(factory, wfd);
      std::shared_ptr<corio::transport> t = made_t.transport;
      auto p = made_t.protocol;
      t->write(pattern(mib, 6)); // more than the pipe holds
      EXPECT_GT(t->get_write_buffer_size(), 0u);
      co_await spin(5);
      ::close(rfd);
      co_await until(&w, [&] { return p->lost != 0; });
      EXPECT_EQ(error_code(p->error), EPIPE) << error_text(p->error);
      EXPECT_NE(error_text(p->error).find("write pipe (fd " + std::to_string(wfd) + ")"), std::string::npos)
          << error_text(p->error);
      EXPECT_EQ(p->lost, 1);
    }
    expect_only_main_task();
  });
}

// Closing and aborting pipe transports: connection_lost(nullptr) once, after the call, not inside it.
TEST_P(Pipe, PipeTransportsCloseAndAbort) {
  run([]() -> task<> {
    corio::testing::callback_watch w;
    auto factory = [&w] { return std::make_shared<log_protocol>(&w); };
    auto [r1, w1] = raw_pipe();
    auto [r2, w2] = raw_pipe();
    auto made_rt = co_await corio::connect_read_pipe(factory, r1);
    std::shared_ptr<corio::transport> rt = made_rt.transport;
    auto rp = made_rt.protocol;
    auto made_wt = co_await corio::connect_write_pipe(factory, w2);
    std::shared_ptr<corio::transport> wt = made_wt.transport;
    auto wp = made_wt.protocol;
    rt->close();
    wt->write(pattern(mib, 8));
    wt->abort();
    EXPECT_EQ(rp->lost + wp->lost, 0) << "connection_lost inside close() or abort()";
    co_await until(&w, [&] { return rp->lost != 0 && wp->lost != 0; });
    co_await spin(5);
    EXPECT_EQ(rp->lost, 1);
    EXPECT_EQ(wp->lost, 1);
    EXPECT_EQ(rp->error, nullptr);
    EXPECT_EQ(wp->error, nullptr);
    EXPECT_EQ(wt->get_write_buffer_size(), 0u);
    ::close(w1);
    ::close(r2);
    expect_only_main_task();
  });
}

// ---- connect_accepted_socket and set_protocol -------------------------------------------------------

// A socketpair's end as an accepted socket: the protocol exchanges data with a stream over the other end.
TEST_P(Pipe, ConnectAcceptedSocketOverASocketpair) {
  run([]() -> task<> {
    corio::testing::callback_watch w;
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    auto factory = [&w] { return std::make_shared<log_protocol>(&w); };
    auto made_t = co_await corio::connect_accepted_socket(factory, corio::socket(sv[0]));
    std::shared_ptr<corio::transport> t = made_t.transport;
    auto p = made_t.protocol;
    corio::connection other = corio::make_streams(corio::socket(sv[1]));
    const std::string ping = pattern(300000, 4);
    t->write(ping);
    std::string got = co_await other.reader.readexactly(ping.size());
    EXPECT_TRUE(got == ping);
    other.writer.write("pong");
    co_await until(&w, [&] { return p->got.size() >= 4; });
    EXPECT_EQ(p->got, "pong");
    other.writer.close();
    co_await until(&w, [&] { return p->lost != 0; });
    EXPECT_EQ(p->eofs, 1);
    EXPECT_EQ(p->error, nullptr);
    bool refused = false;
    try {
      (void)co_await corio::connect_accepted_socket(factory, corio::socket());
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    EXPECT_TRUE(refused);
    expect_only_main_task();
  });
}

// connect_accepted_socket with a server tls_context: a socket accepted by the test's own accept, then
// a TLS handshake as the server; a TLS client connects and exchanges data.
TEST_P(Pipe, ConnectAcceptedSocketWithTls) {
  run([]() -> task<> {
    static const corio::testing::tls_certs certs;
    corio::testing::callback_watch w;
    corio::socket listener = corio::listen_on(corio::address::parse("127.0.0.1:0"));
    const corio::address where = listener.local_address();
    corio::stream_options co;
    co.tls = corio::tls_context::client();
    co.tls.load_verify_locations(certs.ca_file);
    co.server_hostname = "localhost";
    co.tls_handshake_timeout = corio::duration::zero();
    auto connecting = corio::spawn(corio::open_connection(where, co));
    auto [accepted, peer] = co_await corio::sock_accept(listener);
    corio::stream_options so;
    so.tls = corio::tls_context::server(certs.server_cert_file, certs.server_key_file);
    so.tls_handshake_timeout = corio::duration::zero();
    auto factory = [&w] { return std::make_shared<log_protocol>(&w); };
    auto made_t = co_await corio::connect_accepted_socket(factory, std::move(accepted), so);
    std::shared_ptr<corio::transport> t = made_t.transport;
    auto p = made_t.protocol;
    corio::connection c = co_await connecting;
    EXPECT_TRUE(c.writer.tls_info().has_value());
    c.writer.write("hello over tls");
    co_await until(&w, [&] { return p->got.size() >= 14; });
    EXPECT_EQ(p->got, "hello over tls");
    t->write("and back");
    std::string back = co_await c.reader.readexactly(8);
    EXPECT_EQ(back, "and back");
    t->close();
    co_await until(&w, [&] { return p->lost != 0; });
    EXPECT_EQ(p->error, nullptr) << error_text(p->error);
    c.writer.abort();
    expect_only_main_task();
  });
}

/// A protocol that hands the transport to `next` on its first data and lets go of itself.
struct switching_protocol : log_protocol {
  using log_protocol::log_protocol;
  std::shared_ptr<corio::protocol> next;
  std::weak_ptr<switching_protocol>* self_seen = nullptr;
  void data_received(std::string_view d) override {
    log_protocol::data_received(d);
    if (next) {
      t->set_protocol(std::move(next)); // the transport held the only reference to this one
      got += "|switched";               // still alive: the transport keeps it through the call
    }
  }
};

/// A buffered protocol in small buffers.
struct small_buffers : corio::buffered_protocol {
  explicit small_buffers(corio::testing::callback_watch* wd) : w(wd) {}
  corio::testing::callback_watch* w;
  char buf[7];
  std::string got;
  int lost = 0;
  std::span<char> get_buffer(std::size_t) override { return std::span<char>(buf, sizeof buf); }
  void buffer_updated(std::size_t n) override {
    got.append(buf, n);
    w->poke();
  }
  void connection_lost(std::exception_ptr) override {
    ++lost;
    w->poke();
  }
};

// set_protocol from inside data_received, to a buffered protocol: later data and connection_lost go to
// the new one, the old one lives until its call returns (ASan checks), no byte is lost or repeated.
TEST_P(Pipe, SetProtocolSwitchesToABufferedProtocol) {
  run([]() -> task<> {
    corio::testing::callback_watch w;
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    auto second = std::make_shared<small_buffers>(&w);
    std::weak_ptr<switching_protocol> first_seen;
    auto factory = [&] {
      auto p = std::make_shared<switching_protocol>(&w);
      p->next = second;
      first_seen = p;
      return p;
    };
    corio::connection other = corio::make_streams(corio::socket(sv[1]));
    other.writer.write("A");
    std::shared_ptr<corio::transport> t;
    {
      auto made = co_await corio::connect_accepted_socket(factory, corio::socket(sv[0]));
      t = made.transport;
    }
    co_await until(&w, [&] { return first_seen.expired(); });
    EXPECT_EQ(t->get_protocol(), second);
    const std::string rest = pattern(5000, 11);
    other.writer.write(rest);
    co_await until(&w, [&] { return second->got.size() >= rest.size(); });
    EXPECT_TRUE(second->got == rest);
    other.writer.close();
    co_await until(&w, [&] { return second->lost != 0; });
    EXPECT_EQ(second->lost, 1);
    bool null_refused = false, late_refused = false;
    try {
      t->set_protocol(nullptr);
    } catch (const std::invalid_argument&) {
      null_refused = true;
    }
    try {
      t->set_protocol(second);
    } catch (const corio::invalid_state_error&) {
      late_refused = true;
    }
    EXPECT_TRUE(null_refused);
    EXPECT_TRUE(late_refused);
    expect_only_main_task();
  });
}

// set_protocol from another task while the transport waits for bytes: they go to the new protocol (a
// buffered one: copied into its 7-byte buffers; then a plain one again, after the read already waiting
// in the buffered one's buffer), none to the old.
TEST_P(Pipe, SetProtocolFromOutsideWhileAReadWaits) {
  run([]() -> task<> {
    corio::testing::callback_watch w;
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    auto factory = [&w] { return std::make_shared<log_protocol>(&w); };
    auto made = co_await corio::connect_accepted_socket(factory, corio::socket(sv[0]));
    std::shared_ptr<corio::transport> t = made.transport;
    std::shared_ptr<log_protocol> first = made.protocol;
    corio::connection other = corio::make_streams(corio::socket(sv[1]));
    co_await spin(10); // the transport's task waits for bytes now
    auto second = std::make_shared<small_buffers>(&w);
    t->set_protocol(second);
    const std::string data = pattern(5000, 12);
    other.writer.write(data);
    co_await until(&w, [&] { return second->got.size() >= data.size(); });
    EXPECT_TRUE(second->got == data);
    co_await spin(10);
    auto third = std::make_shared<log_protocol>(&w);
    t->set_protocol(third);
    other.writer.write("plain again");
    // The read waiting in second's buffer when the switch came is second's (documented); the rest is
    // third's. Nothing lost, nothing twice.
    co_await until(&w, [&] { return second->got.size() + third->got.size() >= data.size() + 11; });
    EXPECT_EQ(second->got + third->got, data + "plain again");
    EXPECT_FALSE(third->got.empty());
    EXPECT_EQ(first->got, "") << "bytes went to the protocol switched away from";
    other.writer.close();
    co_await until(&w, [&] { return third->lost != 0; });
    EXPECT_EQ(first->lost, 0);
    EXPECT_EQ(second->lost, 0);
    expect_only_main_task();
  });
}

// server::get_loop(): the loop the server was made on.
TEST_P(Pipe, ServerGetLoop) {
  run([]() -> task<> {
    corio::server_options so;
    so.start_serving = false;
    std::vector<corio::address> where{corio::address::parse("127.0.0.1:0")};
    corio::server srv =
        corio::start_server([](corio::stream_reader, corio::stream_writer) -> task<> { co_return; }, where, so);
    EXPECT_EQ(srv.get_loop(), corio::event_loop::current());
    srv.start_serving();
    EXPECT_EQ(srv.get_loop(), corio::event_loop::current());
    srv.close();
    co_await srv.wait_closed();
    EXPECT_THROW((void)corio::server().get_loop(), corio::invalid_state_error);
  });
}

INSTANTIATE_TEST_SUITE_P(Orders, Pipe, corio::testing::ready_orders());

} // namespace
