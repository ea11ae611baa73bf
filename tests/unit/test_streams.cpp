// stream_reader / stream_writer: reads, separators and limits, incomplete reads, backpressure, half-close,
// close, resets, cancellation and timeouts. Loopback TCP; every test checks nothing is left behind.
#include <corio/net.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/timeout.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

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

/// Two connected TCP streams over loopback (IPv4 unless told).
task<stream_pair> connect_streams(corio::stream_options client_opts = {}, corio::stream_options server_opts = {},
                                  address where = address::loopback_ipv4()) {
  corio::socket listener = corio::listen_on(where);
  stream_pair p;
  p.client = co_await corio::open_connection(listener.local_address(), client_opts);
  corio::accepted a = co_await corio::sock_accept(listener);
  p.server = corio::make_streams(std::move(a.conn), a.peer, server_opts);
  co_return p;
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (i * 31 + i / 251) % 26);
  return s;
}

TEST(Streams, OpenConnectionByHostNames) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    for (const char* host : {"127.0.0.1", "::1", "[::1]", "localhost"}) {
      std::string h = host;
      address where = h == "localhost" ? address::loopback_ipv4() : address::from_ip(h, 0);
      corio::socket listener = corio::listen_on(where);
      auto [reader, writer] = co_await corio::open_connection(h, listener.local_address().port());
      corio::accepted a = co_await corio::sock_accept(listener);
      auto server = corio::make_streams(std::move(a.conn));
      EXPECT_EQ(writer.peer_address(), listener.local_address());
      EXPECT_EQ(server.writer.peer_address(), writer.local_address());
      writer.write("hi ");
      writer.write(std::string(host));
      writer.write_eof();
      EXPECT_EQ(co_await server.reader.read(), "hi " + h);
      server.writer.write("bye");
      server.writer.close();
      co_await server.writer.wait_closed();
      EXPECT_EQ(co_await reader.read(), "bye");
      EXPECT_TRUE(reader.at_eof());
      writer.close();
      co_await writer.wait_closed();
    }
    expect_only_main_task();
  });
}

TEST(Streams, ReadexactlyAndIncompleteRead) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams();
    p.client.writer.write("abc");
    p.client.writer.write_eof();
    EXPECT_EQ(co_await p.server.reader.readexactly(2), "ab");
    EXPECT_FALSE(p.server.reader.at_eof());
    try {
      (void)co_await p.server.reader.readexactly(5);
      ADD_FAILURE();
    } catch (const corio::incomplete_read_error& e) {
      EXPECT_EQ(e.partial(), "c");
      EXPECT_EQ(e.expected(), 5u);
    }
    EXPECT_TRUE(p.server.reader.at_eof());
    EXPECT_EQ(co_await p.server.reader.read(10), "");
    EXPECT_EQ(co_await p.server.reader.readexactly(0), "");
    expect_only_main_task();
  });
}

// readexactly(-1) arrives as SIZE_MAX, which no string can hold: it waited for the end of the stream and
// then reported "separator not found" (SIZE_MAX is incomplete_read_error's no_size). asyncio: ValueError.
TEST(Streams, ReadexactlyOfAnImpossibleSizeIsAClearError) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams();
    p.client.writer.write("abc");
    p.client.writer.write_eof(); // (it waited for this, then said "separator not found")
    for (std::size_t n : {SIZE_MAX, SIZE_MAX / 2 + 1}) {
      try {
        (void)co_await p.server.reader.readexactly(n);
        ADD_FAILURE();
      } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("readexactly(" + std::to_string(n) + ")"), std::string::npos) << e.what();
      }
    }
    EXPECT_EQ(co_await p.server.reader.readexactly(3), "abc"); // nothing was consumed
    expect_only_main_task();
  });
}

// A limit of 0 leaves no room for a separator: every readline() failed. asyncio: ValueError, as
// set_limit(0) already raised.
TEST(Streams, ALimitOfZeroIsRefusedWhereTheOptionsAreUsed) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    corio::stream_options zero;
    zero.limit = 0;
    auto says_limit = [](const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("limit must be positive"), std::string::npos) << e.what();
    };
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    try {
      (void)corio::make_streams(corio::socket::adopt(sv[0]), {}, zero);
      ADD_FAILURE() << "make_streams";
    } catch (const std::invalid_argument& e) {
      says_limit(e);
    }
    ::close(sv[1]);
    corio::socket listener = corio::listen_on(address::loopback_ipv4());
    try {
      (void)co_await corio::open_connection(listener.local_address(), zero);
      ADD_FAILURE() << "open_connection";
    } catch (const std::invalid_argument& e) {
      says_limit(e);
    }
    try {
      (void)co_await corio::open_connection("127.0.0.1", listener.local_address().port(), zero);
      ADD_FAILURE() << "open_connection(host, port)";
    } catch (const std::invalid_argument& e) {
      says_limit(e);
    }
    corio::server_options so;
    so.streams.limit = 0;
    try {
      (void)corio::start_server([](corio::stream_reader, corio::stream_writer) -> task<> { co_return; },
                                std::move(listener), so);
      ADD_FAILURE() << "start_server";
    } catch (const std::invalid_argument& e) {
      says_limit(e);
    }
    try {
      (void)corio::open_pipe(zero);
      ADD_FAILURE() << "open_pipe";
    } catch (const std::invalid_argument& e) {
      says_limit(e);
    }
    expect_only_main_task();
  });
}

TEST(Streams, ReadlineAndReaduntil) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams();
    auto& r = p.server.reader;
    p.client.writer.write("one\ntwo\r\n\r\nthree");
    EXPECT_EQ(co_await r.readline(), "one\n");
    EXPECT_EQ(co_await r.readuntil("\r\n\r\n"), "two\r\n\r\n");
    auto later = corio::spawn([](corio::stream_writer w) -> task<> {
      co_await corio::sleep(1s);
      w.write(" four\n");
      co_await corio::sleep(1s);
      w.write_eof();
    }(p.client.writer));
    EXPECT_EQ(co_await r.readline(), "three four\n"); // the line arrived in two parts
    EXPECT_EQ(co_await r.readline(), "");             // end of stream
    EXPECT_TRUE(r.at_eof());
    co_await later;
    EXPECT_THROW(co_await r.readuntil(""), std::invalid_argument);
    expect_only_main_task();
  });
}

TEST(Streams, SeparatorSplitAcrossReceives) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams();
    auto writer = corio::spawn([](corio::stream_writer w) -> task<> {
      for (const char* part : {"ab\r", "\n", "cd\r", "\r", "\n"}) {
        w.write(part);
        co_await corio::sleep(1s);
      }
      w.write_eof();
    }(p.client.writer));
    EXPECT_EQ(co_await p.server.reader.readuntil("\r\n"), "ab\r\n");
    EXPECT_EQ(co_await p.server.reader.readuntil("\r\n"), "cd\r\r\n");
    try {
      (void)co_await p.server.reader.readuntil("\r\n");
      ADD_FAILURE();
    } catch (const corio::incomplete_read_error& e) {
      EXPECT_EQ(e.partial(), "");
      EXPECT_EQ(e.expected(), corio::incomplete_read_error::no_size);
    }
    co_await writer;
    expect_only_main_task();
  });
}

TEST(Streams, ReaduntilWithSeveralSeparators) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams({}, {.limit = 32});
    auto& r = p.server.reader;
    p.client.writer.write("a;b\r\nc\n\nd|e");
    // The match that ends first wins, whatever the order of the list. (g++ 12 cannot compile a braced
    // list inside a co_await expression, HAZARDS.md §2: the lists are named first, or the task is.)
    auto first = r.readuntil({"\n", ";"});
    EXPECT_EQ(co_await std::move(first), "a;");
    // "\r\n" and "\n" end at the same byte: the shorter one is the match (asyncio's rule), same bytes.
    std::vector<std::string> crlf_or_lf{"\r\n", "\n"};
    EXPECT_EQ(co_await r.readuntil(crlf_or_lf), "b\r\n");
    std::vector<std::string> blank_or_bar{"\n\n", "|"};
    EXPECT_EQ(co_await r.readuntil(blank_or_bar), "c\n\n");
    // A separator split across receives, the longer one completing before the shorter appears.
    auto later = corio::spawn([](corio::stream_writer w) -> task<> {
      for (const char* part : {"xy<e", "nd", ">z", "!"}) {
        co_await corio::sleep(1s);
        w.write(part);
      }
      w.write_eof();
    }(p.client.writer));
    std::vector<std::string> bar{"|"}, bang_or_end{"!", "<end>"}, absent{"#", "?"};
    EXPECT_EQ(co_await r.readuntil(bar), "d|");
    EXPECT_EQ(co_await r.readuntil(bang_or_end), "exy<end>");
    try {
      (void)co_await r.readuntil(absent);
      ADD_FAILURE();
    } catch (const corio::incomplete_read_error& e) {
      EXPECT_EQ(e.partial(), "z!"); // the stream ended first
    }
    co_await later;
    std::vector<std::string> none, an_empty_one{"a", ""};
    EXPECT_THROW(co_await r.readuntil(none), std::invalid_argument);
    EXPECT_THROW(co_await r.readuntil(an_empty_one), std::invalid_argument);
    expect_only_main_task();
  });
}

TEST(Streams, ReaduntilWithSeveralSeparatorsKeepsTheLimit) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams({}, {.limit = 8});
    auto& r = p.server.reader;
    p.client.writer.write("0123456789;ab");
    try {
      std::vector<std::string> semi_or_dashes{";", "--"};
      (void)co_await r.readuntil(semi_or_dashes);
      ADD_FAILURE();
    } catch (const corio::limit_overrun_error& e) {
      EXPECT_EQ(e.consumed(), 10u); // found, but starting beyond the limit
    }
    EXPECT_EQ(r.buffered(), 13u); // nothing lost
    r.set_limit(16);
    std::vector<std::string> dashes_or_semi{"--", ";"};
    EXPECT_EQ(co_await r.readuntil(dashes_or_semi), "0123456789;");
    p.client.writer.write(std::string(40, 'x'));
    try {
      std::vector<std::string> lf_or_blank{"\n", "\r\n\r\n"};
      (void)co_await r.readuntil(lf_or_blank);
      ADD_FAILURE();
    } catch (const corio::limit_overrun_error& e) {
      EXPECT_GT(e.consumed(), 16u);
    }
    EXPECT_GE(r.buffered(), 17u);
    expect_only_main_task();
  });
}

TEST(Streams, LinesIteratesToTheEndOfTheStream) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams({}, {.limit = 8});
    auto later = corio::spawn([](corio::stream_writer w) -> task<> {
      w.write("one\ntw");
      co_await corio::sleep(1s);
      w.write("o\nthree");
      co_await corio::sleep(1s);
      w.write_eof();
    }(p.client.writer));
    std::vector<std::string> got;
    {
      auto lines = corio::stream_reader(p.server.reader).lines(); // outlives the handle it came from
      for (auto it = co_await lines.begin(); it != lines.end(); (void)co_await ++it)
        got.push_back(std::move(*it));
    }
    EXPECT_EQ(got, (std::vector<std::string>{"one\n", "two\n", "three"}));
    co_await later;
    // readline()'s errors come out of the iteration.
    stream_pair q = co_await connect_streams({}, {.limit = 8});
    q.client.writer.write("ok\n0123456789abcdef\n");
    auto lines = q.server.reader.lines();
    auto it = co_await lines.begin();
    EXPECT_EQ(*it, "ok\n");
    EXPECT_THROW(co_await ++it, corio::limit_overrun_error);
    expect_only_main_task();
  });
}

TEST(Streams, ReaduntilOverLimitKeepsTheData) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams({}, {.limit = 16});
    auto& r = p.server.reader;
    std::string data = pattern(40);
    p.client.writer.write(data);
    try {
      (void)co_await r.readuntil("\n");
      ADD_FAILURE();
    } catch (const corio::limit_overrun_error& e) {
      EXPECT_GT(e.consumed(), 16u);
    }
    EXPECT_GE(r.buffered(), 17u);
    p.client.writer.write("\n");
    r.set_limit(100); // a larger limit: the same data now reads, nothing was lost
    EXPECT_EQ(co_await r.readuntil("\n"), data + "\n");
    // The separator found, but beyond the limit: consumed() is where it starts.
    r.set_limit(4);
    p.client.writer.write("123456789\n");
    try {
      (void)co_await r.readuntil("\n");
      ADD_FAILURE();
    } catch (const corio::limit_overrun_error& e) {
      EXPECT_EQ(e.consumed(), 9u);
    }
    EXPECT_EQ(co_await r.readexactly(10), "123456789\n");
    expect_only_main_task();
  });
}

TEST(Streams, ReadlineOverLimitDropsTheLine) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams({}, {.limit = 8});
    p.client.writer.write("0123456789abcdef\nok\n");
    EXPECT_THROW(co_await p.server.reader.readline(), corio::limit_overrun_error);
    EXPECT_EQ(co_await p.server.reader.readline(), "ok\n");
    // A line that does not end within the limit: what is buffered goes, the rest is read as a new line.
    p.client.writer.write(std::string(30, 'x'));
    EXPECT_THROW(co_await p.server.reader.readline(), corio::limit_overrun_error);
    p.client.writer.write_eof();
    std::string rest = co_await p.server.reader.read();
    EXPECT_LT(rest.size(), 30u);
    expect_only_main_task();
  });
}

TEST(Streams, LargeTransferWithBackpressure) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams({.high_water = 64 * 1024, .low_water = 16 * 1024});
    const std::size_t total = 16 << 20;
    const std::string data = pattern(total);
    auto reader = corio::spawn([](corio::stream_reader r, std::size_t n) -> task<std::string> {
      std::string got;
      while (got.size() < n) {
        std::string chunk = co_await r.read(5000);
        if (chunk.empty())
          break;
        got += chunk;
        co_await corio::sleep(0s); // a slow reader
      }
      co_return got;
    }(p.server.reader, total));
    std::size_t max_queued = 0;
    int drains_that_waited = 0;
    for (std::size_t off = 0; off < total; off += 48 * 1024) {
      p.client.writer.write(std::string_view(data).substr(off, 48 * 1024));
      max_queued = std::max(max_queued, p.client.writer.buffer_size());
      bool above = p.client.writer.buffer_size() > 64 * 1024;
      co_await p.client.writer.drain();
      if (above) {
        ++drains_that_waited;
        EXPECT_LE(p.client.writer.buffer_size(), 16u * 1024) << "drain() returned above the low watermark";
      }
    }
    p.client.writer.close();
    co_await p.client.writer.wait_closed();
    std::string got = co_await reader;
    EXPECT_EQ(got.size(), total);
    EXPECT_TRUE(got == data) << "data lost or reordered";
    EXPECT_GT(drains_that_waited, 0);
    EXPECT_LE(max_queued, 64u * 1024 + 48 * 1024); // never more than high + one write
    expect_only_main_task();
  });
}

TEST(Streams, WritesKeepTheirOrderInEveryForm) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams();
    auto& w = p.client.writer;
    std::string expected;
    for (int i = 0; i < 200; ++i) {
      std::string a = std::to_string(i) + ":" + pattern(static_cast<std::size_t>(i) * 500) + ";";
      expected += a;
      if (i % 3 == 0) {
        w.write(std::move(a)); // queued without a copy when something is queued already
      } else if (i % 3 == 1) {
        w.write(a);
      } else {
        std::string half = a.substr(a.size() / 2);
        a.resize(a.size() / 2);
        w.writelines({a, half});
      }
    }
    w.writelines(std::vector<std::string>{"x", "", "yz"});
    expected += "xyz";
    EXPECT_GT(w.buffer_size(), 0u);
    w.write_eof();
    EXPECT_EQ(co_await p.server.reader.read(), expected);
    co_await w.drain();
    EXPECT_EQ(w.buffer_size(), 0u);
    expect_only_main_task();
  });
}

TEST(Streams, HalfCloseThenReply) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams({}, {}, address::loopback_ipv6());
    p.client.writer.write("request");
    p.client.writer.write_eof();
    EXPECT_THROW(p.client.writer.write("more"), std::system_error);
    EXPECT_EQ(co_await p.server.reader.read(), "request");
    EXPECT_TRUE(p.server.reader.at_eof());
    p.server.writer.write("response"); // the other direction still works
    p.server.writer.close();
    EXPECT_TRUE(p.server.writer.is_closing());
    EXPECT_THROW(p.server.writer.write("late"), std::system_error);
    co_await p.server.writer.wait_closed();
    EXPECT_EQ(co_await p.client.reader.read(), "response");
    expect_only_main_task();
  });
}

TEST(Streams, CloseFlushesQueuedDataFirst) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams();
    std::string data = pattern(4 << 20);
    p.client.writer.write(data); // far more than the socket buffers hold: most of it is queued
    EXPECT_GT(p.client.writer.buffer_size(), 0u);
    p.client.writer.close();
    auto closer = corio::spawn(p.client.writer.wait_closed());
    co_await corio::sleep(1s);
    EXPECT_FALSE(closer.done()); // the peer has not read yet
    std::string got = co_await p.server.reader.read();
    EXPECT_TRUE(got == data);
    co_await closer;
    EXPECT_EQ(p.client.writer.fd(), -1);
    expect_only_main_task();
  });
}

/// Blocks (at most 5 s) until the kernel holds received bytes for `fd`: the event "the peer's bytes are
/// here", for a test that must not sleep to wait for it. (Loopback: they are there at once.)
void wait_received(int fd) {
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 5000), 1) << "nothing arrived";
}

/// The client holds bytes it never reads when it writes n bytes and closes: the server must still read
/// all n and then end of stream. Linux resets a connection closed with unread bytes (the client's
/// kernel then drops what it had not sent; the server's read fails with ECONNRESET) unless close()
/// drops them first.
task<> close_with_unread_bytes(stream_pair p, std::size_t n) {
  p.server.writer.write("a greeting the client never reads\n");
  wait_received(p.client.writer.fd());
  const std::string data = pattern(n);
  p.client.writer.write(data);
  p.client.writer.close(); // flushes in the background (most of 4 MiB waits for the server's reads)
  std::string got, error;
  try {
    got = co_await p.server.reader.read(); // to end of stream
  } catch (const std::system_error& e) {
    error = e.what();
  }
  EXPECT_EQ(error, "");
  EXPECT_EQ(got.size(), n);
  EXPECT_TRUE(got == data);
  co_await p.client.writer.wait_closed();
  p.server.writer.close();
  co_await p.server.writer.wait_closed();
  expect_only_main_task();
}

TEST(Streams, CloseWithUnreadBytesStillDeliversEverything) {
  corio::testing::leak_check leaks;
  for (std::size_t n : {std::size_t{1000}, std::size_t{4} << 20}) {
    SCOPED_TRACE(n);
    run_mock([n](auto*) -> task<> {
      stream_pair p = co_await connect_streams();
      co_await close_with_unread_bytes(std::move(p), n);
    });
    std::string path = corio::testing::unique_socket_path("unread");
    run_mock([n, &path](auto*) -> task<> {
      stream_pair p = co_await connect_streams({}, {}, address::unix_path(path));
      co_await close_with_unread_bytes(std::move(p), n);
    });
    ::unlink(path.c_str());
  }
}

TEST(Streams, LocalCloseEndsAPendingRead) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams();
    auto reader = corio::spawn(p.client.reader.readline());
    co_await corio::sleep(1s);
    p.client.writer.close();
    EXPECT_EQ(co_await reader, "");
    EXPECT_TRUE(p.client.reader.at_eof());
    EXPECT_EQ(co_await p.server.reader.read(), ""); // the peer sees the close as end of stream
    expect_only_main_task();
  });
}

TEST(Streams, PeerResetSurfacesOnThisStreamOnly) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams();
    stream_pair other = co_await connect_streams();
    corio::socket raw;
    {
      // Reset the server side: SO_LINGER {1, 0} then close sends RST.
      linger l{1, 0};
      ::setsockopt(p.server.writer.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
      p.server.writer.abort();
    }
    try {
      (void)co_await p.client.reader.read(10);
      ADD_FAILURE();
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNRESET);
      EXPECT_NE(std::string(e.what()).find(p.client.writer.peer_address().to_string()), std::string::npos);
    }
    EXPECT_THROW(co_await p.client.reader.read(10), std::system_error); // and again
    int err = 0;
    try {
      for (int i = 0; i < 100 && err == 0; ++i) {
        p.client.writer.write(std::string(100000, 'x'));
        co_await p.client.writer.drain();
      }
    } catch (const std::system_error& e) {
      err = e.code().value();
    }
    EXPECT_TRUE(err == EPIPE || err == ECONNRESET) << err;
    EXPECT_THROW(co_await p.client.writer.drain(), std::system_error);
    p.client.writer.close();
    co_await p.client.writer.wait_closed();
    // The other connection is untouched.
    other.client.writer.write("fine\n");
    EXPECT_EQ(co_await other.server.reader.readline(), "fine\n");
    expect_only_main_task();
  });
}

TEST(Streams, CancelledReadLosesNothing) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams();
    p.client.writer.write("01234");
    auto reader = corio::spawn(p.server.reader.readexactly(10));
    co_await corio::sleep(1s);
    reader.cancel();
    EXPECT_THROW(co_await reader, corio::cancelled_error);
    EXPECT_EQ(p.server.reader.buffered(), 5u);
    p.client.writer.write("56789");
    EXPECT_EQ(co_await p.server.reader.readexactly(10), "0123456789");
    // A timeout in the middle of a line: the part that came stays buffered.
    p.client.writer.write("partial ");
    EXPECT_THROW(co_await corio::wait_for(p.server.reader.readline(), 5s), corio::timeout_error);
    p.client.writer.write("line\n");
    EXPECT_EQ(co_await p.server.reader.readline(), "partial line\n");
    // And a cancelled drain leaves the queue to be sent.
    expect_only_main_task();
  });
}

TEST(Streams, CancelledDrainStillSendsEverything) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams({.high_water = 1024, .low_water = 0});
    ::setsockopt(p.client.writer.fd(), SOL_SOCKET, SO_SNDBUF, &small_buffer, sizeof(int));
    ::setsockopt(p.server.writer.fd(), SOL_SOCKET, SO_RCVBUF, &small_buffer, sizeof(int));
    std::string data = pattern(4 << 20);
    p.client.writer.write(data);
    auto drainer = corio::spawn(p.client.writer.drain());
    co_await corio::sleep(1s);
    drainer.cancel();
    EXPECT_THROW(co_await drainer, corio::cancelled_error);
    p.client.writer.write_eof();
    EXPECT_TRUE(co_await p.server.reader.read() == data);
    expect_only_main_task();
  });
}

TEST(Streams, OneReaderAtATime) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    stream_pair p = co_await connect_streams();
    auto first = corio::spawn(p.server.reader.readline());
    co_await corio::sleep(1s);
    EXPECT_THROW(co_await p.server.reader.readline(), corio::loop_error);
    p.client.writer.write("x\n");
    EXPECT_EQ(co_await first, "x\n");
    expect_only_main_task();
  });
}

TEST(Streams, ConnectErrorsAndCancelledConnects) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    std::uint16_t port;
    {
      corio::socket probe = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
      probe.bind(address::loopback_ipv4());
      port = probe.local_address().port();
      try {
        (void)co_await corio::open_connection("127.0.0.1", port);
        ADD_FAILURE();
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ECONNREFUSED);
        EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos) << e.what();
      }
    }
    try {
      (void)co_await corio::open_connection("no-such-host.invalid", 80);
      ADD_FAILURE();
    } catch (const std::system_error& e) {
      EXPECT_NE(std::string(e.what()).find("no-such-host.invalid"), std::string::npos) << e.what();
    }
    corio::socket listener = corio::listen_on(address::loopback_ipv4());
    auto connecting = corio::spawn(corio::open_connection(listener.local_address()));
    connecting.cancel();
    EXPECT_THROW(co_await connecting, corio::cancelled_error);
    EXPECT_THROW(co_await corio::open_unix_connection("/nonexistent/corio.sock"), std::system_error);
    expect_only_main_task();
  });
}

TEST(Streams, DroppingBothHalvesClosesTheSocket) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    int before = corio::testing::open_fd_count();
    {
      stream_pair p = co_await connect_streams();
      EXPECT_EQ(corio::testing::open_fd_count(), before + 2);
      corio::stream_reader keep = p.server.reader;
      p.server = {};
      EXPECT_EQ(corio::testing::open_fd_count(), before + 2); // the reader copy keeps it open
    }
    EXPECT_EQ(corio::testing::open_fd_count(), before);
    corio::stream_reader empty;
    EXPECT_THROW(co_await empty.read(1), corio::invalid_state_error);
    expect_only_main_task();
  });
}

TEST(Streams, UnixStreams) {
  corio::testing::leak_check leaks;
  std::string path = corio::testing::unique_socket_path("streams");
  run_mock([&](auto*) -> task<> {
    corio::socket listener = corio::listen_on(address::unix_path(path));
    auto [r, w] = co_await corio::open_unix_connection(path);
    corio::accepted a = co_await corio::sock_accept(listener);
    auto s = corio::make_streams(std::move(a.conn), a.peer);
    w.write("over unix\n");
    EXPECT_EQ(co_await s.reader.readline(), "over unix\n");
    EXPECT_EQ(w.peer_address().path(), path);
    w.close();
    co_await w.wait_closed();
    std::string rest = co_await s.reader.read();
    EXPECT_TRUE(rest.empty());
    expect_only_main_task();
  });
  ::unlink(path.c_str());
}

} // namespace

// A stream may outlive the loop it queued data on: its write interest went with the loop, so closing it
// later touches nothing of that loop (it did: a heap-use-after-free in event_loop::disarm). A stream that
// outlives one run of a runner, whose loop still exists, withdraws its interest from that loop.
task<> queue_more_than_the_kernel_takes(corio::socket* listener, connection* keep) {
  *listener = corio::listen_on(address::loopback_ipv4());
  *keep = co_await corio::open_connection(listener->local_address());
  keep->writer.write(std::string(8 << 20, 'x')); // the rest is queued: the write interest stays armed
  EXPECT_GT(keep->writer.buffer_size(), 0u);
}
TEST(Streams, AStreamWithQueuedDataMayOutliveItsLoop) {
  for (int round = 0; round < 2; ++round) {
    corio::socket listener;
    connection keep;
    corio::run(queue_more_than_the_kernel_takes(&listener, &keep));
    if (round == 0) {
      keep = connection(); // after the loop
    } else {
      corio::run([](connection* c) -> task<> { // inside another loop, maybe at the same address
        *c = connection();
        co_return;
      }(&keep));
    }
  }
  corio::runner r;
  corio::socket listener;
  connection keep;
  r.run(queue_more_than_the_kernel_takes(&listener, &keep));
  keep = connection(); // between two runs of one loop
  auto echoed = r.run([]() -> task<std::string> {
    auto [a, b] = co_await connect_streams();
    a.writer.write(pattern(1 << 20));
    co_await a.writer.drain();
    co_return co_await b.reader.readexactly(1 << 20);
  }());
  EXPECT_EQ(echoed, pattern(1 << 20));
}
