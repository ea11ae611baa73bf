// stream_writer::sendfile: a file larger than the socket buffers, ranges, a pipe as the file (read and
// send), bad fds, a resetting peer, cancellation, and the order of write() / sendfile / write() — queued
// before, written while it runs, close() while it runs; and into a child's stdin (a pipe stream: read and
// written in chunks). Loopback TCP; every test checks nothing is left behind. (Over TLS: test_tls.cpp.)
#include <corio/net.hpp>
#include <corio/process.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/timeout.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>
#include <utility>

#include "leak_check.hpp"
#include "loop_fixture.hpp"
#include "net_helpers.hpp"

using namespace std::chrono_literals;
using corio::address;
using corio::connection;
using corio::task;
using corio::testing::expect_only_main_task;
using corio::testing::run_mock;

namespace {

const int small_buffer = 16384;

struct stream_pair {
  connection client; // connected to server
  connection server;
};

/// Two connected TCP streams over loopback, the client's send and the server's receive buffers small (so
/// a sendfile of a few MiB waits for room many times).
task<stream_pair> connect_streams(corio::stream_options client_opts = {}) {
  corio::socket listener = corio::listen_on(address::loopback_ipv4());
  stream_pair p;
  p.client = co_await corio::open_connection(listener.local_address(), client_opts);
  corio::accepted a = co_await corio::sock_accept(listener);
  p.server = corio::make_streams(std::move(a.conn), a.peer);
  ::setsockopt(p.client.writer.fd(), SOL_SOCKET, SO_SNDBUF, &small_buffer, sizeof(int));
  ::setsockopt(p.server.writer.fd(), SOL_SOCKET, SO_RCVBUF, &small_buffer, sizeof(int));
  co_return p;
}

/// n bytes that do not repeat at any short period: a misplaced or reordered byte shows.
std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>((i * 31 + i / 251 + i / 65521) & 0xff);
  return s;
}

/// An unlinked temporary file holding `data`; the fd is closed on destruction.
struct temp_file {
  int fd = -1;
  explicit temp_file(const std::string& data) {
    char name[] = "/tmp/corio-sendfile-XXXXXX";
    fd = ::mkstemp(name);
    EXPECT_GE(fd, 0);
    ::unlink(name);
    for (std::size_t off = 0; off < data.size();) {
      auto n = ::write(fd, data.data() + off, data.size() - off);
      EXPECT_GT(n, 0);
      if (n <= 0)
        break;
      off += static_cast<std::size_t>(n);
    }
  }
  temp_file(const temp_file&) = delete;
  ~temp_file() { ::close(fd); }
};

/// Everything the reader gets until end of file.
task<std::string> read_all(corio::stream_reader r) { co_return co_await r.read(); }

TEST(StreamSendfile, RangesOfALargeFileBetweenWrites) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams();
    const std::string data = pattern((4 << 20) + 123);
    temp_file f(data);
    ::lseek(f.fd, 77, SEEK_SET); // the file position is neither used nor moved
    const std::string big = pattern(1 << 20).substr(5);
    auto reader = corio::spawn(read_all(p.server.reader));
    corio::stream_writer& w = p.client.writer;
    w.write("head:");
    w.write(big); // much of it queued: the sendfile waits for it
    EXPECT_EQ(co_await w.sendfile(f.fd), data.size());
    w.write("|mid|");
    EXPECT_EQ(co_await w.sendfile(f.fd, 1000003, 777777), 777777u);
    EXPECT_EQ(co_await w.sendfile(f.fd, data.size() - 100, 1000), 100u); // beyond the end: what there is
    EXPECT_EQ(co_await w.sendfile(f.fd, 5, 0), 0u);
    EXPECT_EQ(co_await w.sendfile(f.fd, data.size() + 1), 0u);
    w.writelines({"|", "tail"});
    w.write_eof();
    const std::string expected =
        "head:" + big + data + "|mid|" + data.substr(1000003, 777777) + data.substr(data.size() - 100) + "|tail";
    std::string got = co_await reader;
    EXPECT_EQ(got.size(), expected.size());
    EXPECT_TRUE(got == expected) << "data corrupted or reordered";
    EXPECT_EQ(::lseek(f.fd, 0, SEEK_CUR), 77);
    w.close();
    co_await w.wait_closed();
    expect_only_main_task();
  });
}

TEST(StreamSendfile, WritesWhileItRunsGoAfterIt) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams();
    const std::string data = pattern(4 << 20);
    temp_file f(data);
    corio::stream_writer w = p.client.writer;
    const std::string before = pattern(300000).substr(7);
    w.write(before); // queued (nobody reads yet)
    auto sending = corio::spawn([](corio::stream_writer wr, int fd) -> task<std::uint64_t> {
      std::uint64_t n = co_await wr.sendfile(fd);
      co_return n;
    }(w, f.fd));
    co_await corio::sleep(1s); // nobody reads: the sendfile waits for room (or for `before` to go)
    EXPECT_FALSE(sending.done());
    // Another task's writes, in every form, while it runs: queued behind it, counted.
    const std::size_t queued = w.buffer_size();
    w.write("after1;");
    std::string moved = "after2;";
    w.write(std::move(moved));
    w.writelines({"after3", ";", "after4;"});
    EXPECT_EQ(w.buffer_size(), queued + 28);
    EXPECT_THROW(co_await w.sendfile(f.fd), corio::invalid_state_error); // one at a time
    w.close();                                                           // takes effect after the sendfile
    EXPECT_TRUE(w.is_closing());
    EXPECT_THROW(w.write("too late"), std::system_error);
    auto reader = corio::spawn(read_all(p.server.reader));
    EXPECT_EQ(co_await sending, data.size());
    co_await w.wait_closed();
    std::string got = co_await reader;
    const std::string expected = before + data + "after1;after2;after3;after4;";
    EXPECT_EQ(got.size(), expected.size());
    EXPECT_TRUE(got == expected) << "data corrupted or reordered";
    expect_only_main_task();
  });
}

TEST(StreamSendfile, WriteEofWhileItRunsComesAfterIt) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams();
    const std::string data = pattern(2 << 20);
    temp_file f(data);
    corio::stream_writer w = p.client.writer;
    auto sending = corio::spawn([](corio::stream_writer wr, int fd) -> task<std::uint64_t> {
      std::uint64_t n = co_await wr.sendfile(fd);
      co_return n;
    }(w, f.fd));
    co_await corio::sleep(1s);
    w.write("last");
    w.write_eof();
    auto reader = corio::spawn(read_all(p.server.reader));
    EXPECT_EQ(co_await sending, data.size());
    EXPECT_TRUE(co_await reader == data + "last");
    // Reading goes on after the half-close.
    p.server.writer.write("reply");
    EXPECT_EQ(co_await p.client.reader.readexactly(5), "reply");
    w.close();
    co_await w.wait_closed();
    expect_only_main_task();
  });
}

/// Writes `data` into a non-blocking pipe end, waiting for room, then closes it.
task<> feed_pipe(int fd, std::string data) {
  std::size_t off = 0;
  while (off < data.size()) {
    auto n = ::write(fd, data.data() + off, data.size() - off);
    if (n > 0)
      off += static_cast<std::size_t>(n);
    else if (errno == EAGAIN)
      co_await corio::writable(fd);
    else
      break;
  }
  ::close(fd);
}

TEST(StreamSendfile, APipeAsTheFileIsReadAndSent) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams();
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    const std::string data = pattern(1 << 20);
    auto feeder = corio::spawn(feed_pipe(fds[1], data));
    auto reader = corio::spawn(read_all(p.server.reader));
    p.client.writer.write("<");
    EXPECT_EQ(co_await p.client.writer.sendfile(fds[0], 3), data.size() - 3);
    p.client.writer.write(">");
    p.client.writer.write_eof();
    EXPECT_TRUE(co_await reader == "<" + data.substr(3) + ">") << "data corrupted or reordered";
    co_await feeder;
    ::close(fds[0]);
    p.client.writer.close();
    co_await p.client.writer.wait_closed();
    expect_only_main_task();
  });
}

TEST(StreamSendfile, IntoAChildsStdinWithWritesAroundIt) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    const std::string data = pattern((2 << 20) + 9);
    temp_file f(data);
    auto start_p =
        corio::create_subprocess_exec("/bin/cat", {}, {.stdin_ = corio::stdio::pipe, .stdout_ = corio::stdio::pipe});
    corio::process p = co_await start_p;
    auto reader = corio::spawn(read_all(p.stdout_));
    p.stdin_.write("<");
    auto sending = corio::spawn([](corio::stream_writer w, int fd) -> task<std::uint64_t> {
      std::uint64_t n = co_await w.sendfile(fd, 1);
      co_return n;
    }(p.stdin_, f.fd));
    co_await corio::sleep(0s);
    EXPECT_FALSE(sending.done()); // 2 MiB do not fit in a pipe: it waits for cat
    p.stdin_.write("|while");     // after the file, though written while it is sent
    EXPECT_EQ(co_await sending, data.size() - 1);
    p.stdin_.write(">");
    p.stdin_.write_eof();
    std::string got = co_await reader;
    EXPECT_TRUE(got == "<" + data.substr(1) + "|while>") << "data corrupted or reordered";
    EXPECT_EQ(co_await p.wait(), 0);
    co_await p.stdin_.wait_closed();
    expect_only_main_task();
  });
}

TEST(StreamSendfile, ABadFdIsAClearErrorAndTheStreamGoesOn) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams();
    int closed_fd = ::dup(0);
    ::close(closed_fd);
    p.client.writer.write("before;");
    for (int fd : {closed_fd, -1}) {
      try {
        (void)co_await p.client.writer.sendfile(fd);
        ADD_FAILURE() << fd;
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EBADF);
        EXPECT_NE(std::string(e.what()).find("file fd " + std::to_string(fd)), std::string::npos) << e.what();
      }
    }
    p.client.writer.write("after");
    p.client.writer.write_eof();
    EXPECT_EQ(co_await p.server.reader.read(), "before;after");
    co_await p.client.writer.drain();
    p.client.writer.close();
    co_await p.client.writer.wait_closed();
    expect_only_main_task();
  });
}

TEST(StreamSendfile, APeerResetRaisesOnThisStreamOnly) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams();
    stream_pair other = co_await connect_streams();
    const std::string data = pattern(4 << 20);
    temp_file f(data);
    // The peer reads a little, then resets the connection while the sendfile waits for room.
    auto resetter = corio::spawn([](corio::stream_reader r, corio::stream_writer w) -> task<> {
      std::string got = co_await r.readexactly(100000);
      linger l{1, 0};
      ::setsockopt(w.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
      w.abort(); // RST
    }(p.server.reader, p.server.writer));
    int err = 0;
    try {
      for (int i = 0; i < 10; ++i) // a sendfile may end before the RST is seen: the next one raises
        (void)co_await p.client.writer.sendfile(f.fd);
    } catch (const std::system_error& e) {
      err = e.code().value();
    }
    EXPECT_TRUE(err == EPIPE || err == ECONNRESET) << err;
    co_await resetter;
    // The stream failed: writes and drains raise it too.
    EXPECT_THROW(p.client.writer.write("x"), std::system_error);
    EXPECT_THROW(co_await p.client.writer.drain(), std::system_error);
    p.client.writer.close();
    co_await p.client.writer.wait_closed();
    // The other connection is untouched.
    auto reader = corio::spawn(read_all(other.server.reader));
    EXPECT_EQ(co_await other.client.writer.sendfile(f.fd), data.size());
    other.client.writer.write_eof();
    EXPECT_TRUE(co_await reader == data);
    other.client.writer.close();
    co_await other.client.writer.wait_closed();
    expect_only_main_task();
  });
}

// sendfile(2) takes no MSG_NOSIGNAL: on a socket whose sending side is shut, or after a reset already
// reported, it raises SIGPIPE, which killed the process (http_server under wrk). Now it is EPIPE.
TEST(StreamSendfile, ASendfileAfterTheSendingSideIsShutRaisesEpipeNotSigpipe) {
  ASSERT_EQ(::signal(SIGPIPE, SIG_DFL), SIG_DFL); // the default: a SIGPIPE would end this test binary
  run_mock([](auto*) -> task<> {
    temp_file f(pattern(100000));
    for (bool through_the_writer : {false, true}) {
      stream_pair p = co_await connect_streams();
      ::shutdown(p.client.writer.fd(), SHUT_WR);
      int err = 0;
      try {
        if (through_the_writer) {
          (void)co_await p.client.writer.sendfile(f.fd);
        } else {
          corio::socket s = corio::socket::adopt(::dup(p.client.writer.fd()));
          (void)co_await corio::sock_sendfile(s, f.fd, 0);
        }
      } catch (const std::system_error& e) {
        err = e.code().value();
      }
      EXPECT_EQ(err, EPIPE) << through_the_writer;
      sigset_t pending;
      ::sigpending(&pending);
      EXPECT_EQ(::sigismember(&pending, SIGPIPE), 0); // taken back, not left pending
    }
  });
}

TEST(StreamSendfile, CancelledByATimeoutLeavesNothingBehind) {
  corio::testing::leak_check leaks;
  run_mock([](corio::testing::mock_clock*) -> task<> {
    stream_pair p = co_await connect_streams();
    const std::string data = pattern(4 << 20);
    temp_file f(data);
    corio::stream_writer w = p.client.writer;
    auto later = corio::spawn([](corio::stream_writer wr) -> task<> {
      co_await corio::sleep(1s);
      wr.write("after"); // while the sendfile runs: queued behind it
    }(w));
    auto start = corio::event_loop::current()->time();
    EXPECT_THROW(co_await corio::wait_for(w.sendfile(f.fd), 5s), corio::timeout_error); // nobody reads
    EXPECT_EQ(corio::event_loop::current()->time() - start, 5s);
    co_await later;
    // A prefix of the file went, then what was written meanwhile, then what is written now.
    w.write("|now");
    w.write_eof();
    std::string got = co_await p.server.reader.read();
    const std::string tail = "after|now";
    EXPECT_GE(got.size(), tail.size());
    const std::size_t prefix = got.size() >= tail.size() ? got.size() - tail.size() : 0;
    EXPECT_LT(prefix, data.size());
    EXPECT_TRUE(got.compare(0, prefix, data, 0, prefix) == 0) << "not a prefix of the file";
    EXPECT_EQ(got.substr(prefix), tail);
    w.close();
    co_await w.wait_closed();
    expect_only_main_task();
  });
}

} // namespace
