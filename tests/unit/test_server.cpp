// start_server / start_unix_server: echo round trips, graceful close, handler errors, resets, EMFILE,
// SO_REUSEPORT, Unix socket files. Loopback only; every test checks nothing is left behind.
#include <corio/net.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/event.hpp>
#include <corio/timeout.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <vector>

#include "leak_check.hpp"
#include "loop_fixture.hpp"
#include "net_helpers.hpp"

using namespace std::chrono_literals;
using corio::address;
using corio::stream_reader;
using corio::stream_writer;
using corio::task;
using corio::testing::expect_only_main_task;
using corio::testing::run_mock;

namespace {

/// Echoes lines until end of stream.
task<> echo_lines(stream_reader r, stream_writer w) {
  for (;;) {
    std::string line = co_await r.readline();
    if (line.empty())
      break;
    w.write(std::move(line));
    co_await w.drain();
  }
}

task<> talk(address to, int id, int lines) {
  auto [r, w] = co_await corio::open_connection(to);
  for (int i = 0; i < lines; ++i) {
    std::string msg = "client " + std::to_string(id) + " line " + std::to_string(i) + "\n";
    w.write(msg);
    EXPECT_EQ(co_await r.readline(), msg);
  }
  w.close();
  co_await w.wait_closed();
}

task<> echo_many_keep(corio::server& srv, int clients) {
  std::vector<corio::join_handle<>> all;
  for (int c = 0; c < clients; ++c)
    all.push_back(corio::spawn(talk(srv.addresses().front(), c, 5)));
  for (auto& h : all)
    co_await h;
}

task<> echo_many(corio::server srv, int clients) {
  std::vector<corio::join_handle<>> all;
  for (int c = 0; c < clients; ++c)
    all.push_back(corio::spawn(talk(srv.addresses().front(), c, 5)));
  for (auto& h : all)
    co_await h;
  srv.close();
  co_await srv.wait_closed();
  EXPECT_EQ(srv.active_connections(), 0u);
  expect_only_main_task();
}

// start_server on a socket made elsewhere (asyncio's sock=): a listening one and one only bound; both
// serve, addresses() names them, and closing the server closes them. Bad sockets are clear errors.
TEST(Server, ServesASocketMadeElsewhere) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    corio::socket listening = corio::listen_on(address::loopback_ipv4());
    const address where = listening.local_address();
    const int fd = listening.fd();
    corio::server a = corio::start_server(echo_lines, std::move(listening));
    EXPECT_EQ(a.addresses().size(), 1u);
    EXPECT_EQ(a.addresses().front(), where);
    co_await talk(where, 1, 3);
    corio::socket bound = corio::socket::open(corio::address_family::ipv6, corio::socket_type::stream);
    bound.bind(address::loopback_ipv6());
    corio::server b = corio::start_server(echo_lines, std::move(bound));
    co_await talk(b.addresses().front(), 2, 3);
    a.close();
    co_await a.wait_closed();
    EXPECT_LT(::fcntl(fd, F_GETFD), 0) << "the server did not close the socket it was given";
    b.close();
    co_await b.wait_closed();

    EXPECT_THROW((void)corio::start_server(echo_lines, corio::socket()), std::invalid_argument);
    corio::socket udp = corio::socket::open(corio::address_family::ipv4, corio::socket_type::datagram);
    EXPECT_THROW((void)corio::start_server(echo_lines, std::move(udp)), std::invalid_argument);
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    int code = 0;
    try {
      (void)corio::start_server(echo_lines, corio::socket(p[0]));
    } catch (const std::system_error& e) {
      code = e.code().value();
    }
    EXPECT_EQ(code, ENOTSOCK);
    ::close(p[1]);
    expect_only_main_task();
  });
}

// The same with the ready queue in order and shuffled: nothing may depend on which ready task runs first.
class ServerOrders : public corio::testing::ordered_and_shuffled {};

TEST_P(ServerOrders, EchoCloseAndCloseClients) {
  run([]() -> task<> {
    corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
    auto idle = co_await corio::open_connection(srv.addresses().front()); // still connected at close
    co_await echo_many_keep(srv, 8);
    srv.close();
    srv.close_clients();
    co_await srv.wait_closed();
    EXPECT_EQ(co_await idle.reader.read(), "");
    expect_only_main_task();
  });
}
INSTANTIATE_TEST_SUITE_P(Orders, ServerOrders, corio::testing::ready_orders());

TEST(Server, EchoIpv4) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
    EXPECT_NE(srv.port(), 0);
    EXPECT_TRUE(srv.is_serving());
    co_await echo_many(std::move(srv), 20);
  });
}

TEST(Server, EchoIpv6) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    corio::server srv = co_await corio::start_server(echo_lines, "::1", 0);
    EXPECT_EQ(srv.addresses().front().family(), corio::address_family::ipv6);
    co_await echo_many(std::move(srv), 20);
  });
}

TEST(Server, EchoUnixAndSocketFileCleanup) {
  corio::testing::leak_check leaks;
  std::string path = corio::testing::unique_socket_path("server");
  { // a stale socket file, as a crashed server leaves it
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    address a = address::unix_path(path);
    ASSERT_EQ(::bind(fd, static_cast<const sockaddr*>(a.data()), static_cast<socklen_t>(a.size())), 0);
    ::close(fd);
  }
  run_mock([&](auto*) -> task<> {
    corio::server srv = co_await corio::start_unix_server(echo_lines, path);
    EXPECT_EQ(srv.addresses().front().path(), path);
    EXPECT_EQ(srv.port(), 0);
    co_await echo_many(std::move(srv), 10);
  });
  struct stat st {};
  EXPECT_NE(::lstat(path.c_str(), &st), 0) << "socket file left behind";
}

// A newer server on the same path replaces the older one's socket file (as asyncio's does); closing the
// older one must leave the newer one's file alone (asyncio 3.13 compares the inode), and closing the
// newer one removes it.
TEST(Server, ClosingAnOlderUnixServerKeepsTheNewerOnesFile) {
  corio::testing::leak_check leaks;
  std::string path = corio::testing::unique_socket_path("replaced");
  run_mock([&](auto*) -> task<> {
    corio::server older = co_await corio::start_unix_server(echo_lines, path);
    corio::server newer = co_await corio::start_unix_server(echo_lines, path);
    struct stat before {};
    EXPECT_EQ(::lstat(path.c_str(), &before), 0);
    older.close();
    co_await older.wait_closed();
    struct stat after {};
    EXPECT_EQ(::lstat(path.c_str(), &after), 0) << "closing the older server removed the newer one's socket file";
    EXPECT_EQ(after.st_ino, before.st_ino);
    co_await talk(address::unix_path(path), 1, 2); // the newer server is still reachable by its path
    newer.close();
    co_await newer.wait_closed();
    struct stat gone {};
    EXPECT_NE(::lstat(path.c_str(), &gone), 0) << "the newer server left its socket file behind";
    expect_only_main_task();
  });
  ::unlink(path.c_str());
}

TEST(Server, EveryInterfaceOnOnePort) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    for (const char* host : {"", "localhost"}) {
      corio::server srv = co_await corio::start_server(echo_lines, host, 0);
      auto addrs = srv.addresses();
      EXPECT_EQ(addrs.size(), 2u);
      for (const auto& a : addrs)
        EXPECT_EQ(a.port(), srv.port());
      co_await talk(address::loopback_ipv4(srv.port()), 1, 2);
      co_await talk(address::loopback_ipv6(srv.port()), 2, 2);
      srv.close();
      co_await srv.wait_closed();
    }
    expect_only_main_task();
  });
}

// An address listed twice is bound once, as asyncio's create_server removes duplicates: binding it twice
// failed with EADDRINUSE (after 8 new picks of the port, for port 0).
TEST(Server, AnAddressListedTwiceIsBoundOnce) {
  corio::testing::leak_check leaks;
  std::string path = corio::testing::unique_socket_path("twice");
  run_mock([&](auto*) -> task<> {
    corio::server picked = corio::start_server(echo_lines, {address::loopback_ipv4(), address::loopback_ipv4()});
    EXPECT_EQ(picked.addresses().size(), 1u);
    co_await talk(address::loopback_ipv4(picked.port()), 1, 2);
    picked.close();
    co_await picked.wait_closed();
    corio::server both = corio::start_server(echo_lines, {address::loopback_ipv6(), address::loopback_ipv6(),
                                                          address::loopback_ipv4(), address::loopback_ipv6()});
    EXPECT_EQ(both.addresses().size(), 2u);
    co_await talk(address::loopback_ipv4(both.port()), 1, 2);
    co_await talk(address::loopback_ipv6(both.port()), 2, 2);
    both.close();
    co_await both.wait_closed();
    corio::server unix_twice = corio::start_server(echo_lines, {address::unix_path(path), address::unix_path(path)});
    EXPECT_EQ(unix_twice.addresses().size(), 1u);
    co_await talk(address::unix_path(path), 1, 2);
    unix_twice.close();
    co_await unix_twice.wait_closed();
    expect_only_main_task();
  });
  ::unlink(path.c_str());
}

TEST(Server, CloseStopsAcceptingAndWaitClosedWaitsForHandlers) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
    address where = srv.addresses().front();
    auto [r, w] = co_await corio::open_connection(where);
    w.write("first\n");
    EXPECT_EQ(co_await r.readline(), "first\n");
    EXPECT_EQ(srv.active_connections(), 1u);
    srv.close();
    EXPECT_FALSE(srv.is_serving());
    EXPECT_THROW(co_await corio::open_connection(where), std::system_error); // refused: not listening
    auto waiter = corio::spawn(srv.wait_closed());
    co_await corio::sleep(1s);
    EXPECT_FALSE(waiter.done()); // the handler still runs: the connection goes on
    w.write("still here\n");
    EXPECT_EQ(co_await r.readline(), "still here\n");
    w.close();
    co_await waiter;
    EXPECT_EQ(srv.active_connections(), 0u);
    co_await w.wait_closed();
    expect_only_main_task();
  });
}

TEST(Server, CloseClientsCancelsHandlers) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    int cancelled = 0;
    corio::server srv = co_await corio::start_server(
        [&cancelled](stream_reader r, stream_writer) -> task<> {
          try {
            (void)co_await r.readline();
          } catch (const corio::cancelled_error&) {
            ++cancelled;
            throw;
          }
        },
        "127.0.0.1", 0);
    std::vector<corio::connection> clients;
    for (int i = 0; i < 3; ++i)
      clients.push_back(co_await corio::open_connection(srv.addresses().front()));
    co_await corio::sleep(1s);
    EXPECT_EQ(srv.active_connections(), 3u);
    srv.close();
    srv.close_clients();
    co_await srv.wait_closed();
    EXPECT_EQ(cancelled, 3);
    for (auto& c : clients) // each client sees its connection end
      EXPECT_EQ(co_await c.reader.read(), "");
    expect_only_main_task();
  });
}

TEST(Server, HandlerExceptionsAreContained) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    std::vector<std::string> errors;
    corio::server_options opts;
    opts.on_handler_error = [&errors](std::exception_ptr e, const address& peer) {
      errors.push_back(corio::describe(e));
      EXPECT_TRUE(peer.is_loopback());
    };
    corio::server srv = co_await corio::start_server(
        [](stream_reader r, stream_writer w) -> task<> {
          std::string line = co_await r.readline();
          if (line == "boom\n")
            throw std::runtime_error("handler exploded");
          w.write(line);
        },
        "127.0.0.1", 0, opts);
    for (const char* msg : {"ok\n", "boom\n", "ok again\n"}) {
      auto [r, w] = co_await corio::open_connection(srv.addresses().front());
      w.write(msg);
      std::string reply = co_await r.read();
      EXPECT_EQ(reply, std::string(msg) == "boom\n" ? "" : msg);
      w.close();
      co_await w.wait_closed();
    }
    srv.close();
    co_await srv.wait_closed();
    EXPECT_EQ(errors, std::vector<std::string>{"handler exploded"});
    expect_only_main_task();
  });
}

TEST(Server, PeerResetIsAnErrorOfThatHandlerOnly) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    std::vector<int> codes;
    corio::server_options opts;
    opts.on_handler_error = [&codes](std::exception_ptr e, const address&) {
      try {
        std::rethrow_exception(e);
      } catch (const std::system_error& se) {
        codes.push_back(se.code().value());
      } catch (...) {
        codes.push_back(-1);
      }
    };
    corio::server srv = co_await corio::start_server(
        [](stream_reader r, stream_writer w) -> task<> {
          for (;;) {
            std::string line = co_await r.readline();
            if (line.empty())
              break;
            co_await corio::sleep(1s); // the rude peer resets meanwhile
            w.write(line);
          }
        },
        "127.0.0.1", 0, opts);
    corio::socket rude = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
    co_await corio::sock_connect(rude, srv.addresses().front());
    co_await corio::sock_sendall(rude, "hello\n");
    co_await corio::sleep(500ms);
    rude.set_linger_reset();
    rude.close();
    co_await talk(srv.addresses().front(), 7, 1); // others are served meanwhile
    co_await corio::sleep(2s);
    EXPECT_EQ(codes.size(), 1u);
    for (int code : codes)
      EXPECT_TRUE(code == ECONNRESET || code == EPIPE) << code;
    EXPECT_TRUE(srv.is_serving());
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// A connection reset before the loop got to it (io_uring's multishot accept then cannot read its peer's
// address: ENOTCONN) still gets its handler, whose reads report the reset; it was reported to
// on_handler_error as a getpeername failure instead, without running the handler.
TEST(Server, AConnectionResetBeforeItsHandlerRunsStillGetsOne) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    int handled = 0;
    int errors = 0;
    corio::server_options opts;
    opts.on_handler_error = [&errors](std::exception_ptr, const address&) { ++errors; };
    corio::server srv = co_await corio::start_server(
        [&handled](stream_reader r, stream_writer w) -> task<> {
          ++handled;
          try {
            std::string line = co_await r.readline();
            if (!line.empty())
              w.write(line);
          } catch (const std::system_error&) { // the reset
          }
        },
        "127.0.0.1", 0, opts);
    const address where = srv.addresses().front();
    for (int i = 0; i < 3; ++i) { // blocking, without the loop: the kernel completes the handshake
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      EXPECT_EQ(::connect(fd, static_cast<const sockaddr*>(where.data()), where.size()), 0);
      linger l{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      ::close(fd); // RST, before the loop saw the connection
    }
    co_await talk(where, 7, 1);
    for (int i = 0; i < 100 && handled < 4; ++i)
      co_await corio::sleep(10ms);
    EXPECT_EQ(handled, 4);
    EXPECT_EQ(errors, 0);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

/// Lowers RLIMIT_NOFILE for the test's duration.
struct fd_limit {
  rlimit saved{};
  explicit fd_limit(rlim_t soft) {
    ::getrlimit(RLIMIT_NOFILE, &saved);
    rlimit r = saved;
    r.rlim_cur = soft;
    EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &r), 0);
  }
  ~fd_limit() { ::setrlimit(RLIMIT_NOFILE, &saved); }
};

TEST(Server, AcceptSurvivesEmfileWithoutSpinning) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    std::vector<int> filler;
    corio::socket client;
    std::size_t errors_while_full = 0;
    // UBSan's vptr check tests memory with a pipe() the first time it meets a dynamic type: with no fd
    // left it reports a false "invalid vptr". So meet every type of the window below while fds are free:
    // a connection served (accept, connect, reads, writes) and a sleep.
    {
      corio::server warm = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
      co_await talk(warm.addresses().front(), 1, 1);
      warm.close();
      co_await warm.wait_closed();
    }
    co_await corio::sleep(1ms);
    (void)std::generic_category().message(EMFILE); // the accept loop's log line calls it
    (void)std::system_category().message(EMFILE);
    corio::server srv;
    address where;
    {
      // The server starts under the lowered limit: io_uring reads RLIMIT_NOFILE when an accept is
      // submitted, so an accept armed before would still get its fd.
      fd_limit limit(static_cast<rlim_t>(corio::testing::open_fd_count() + 5));
      srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
      where = srv.addresses().front();
      for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;)
        filler.push_back(fd);
      EXPECT_EQ(errno, EMFILE);
      ::close(filler.back()); // room for the client's socket only: the server's accept gets EMFILE
      filler.pop_back();
      client = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
      co_await corio::sock_connect(client, where); // completes in the kernel's backlog
      co_await corio::sleep(5500ms);
      errors_while_full = srv.accept_errors();
    }
    // One attempt per second of (virtual) time: it backs off, it does not spin.
    EXPECT_GE(errors_while_full, 5u);
    EXPECT_LE(errors_while_full, 7u);
    for (int fd : filler)
      ::close(fd);
    co_await corio::sock_sendall(client, "back\n");
    std::string buf(16, '\0');
    std::size_t n = co_await corio::sock_recv(client, {buf.data(), buf.size()}); // served once fds are free
    EXPECT_EQ(std::string(buf.data(), n), "back\n");
    client.close();
    EXPECT_TRUE(srv.is_serving());
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

TEST(Server, ServeForeverEndsWithCloseAndCancellationCloses) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0, {.start_serving = false});
    EXPECT_FALSE(srv.is_serving());
    auto forever = corio::spawn(srv.serve_forever());
    co_await corio::sleep(1s);
    EXPECT_TRUE(srv.is_serving());
    co_await talk(srv.addresses().front(), 1, 3);
    forever.cancel();
    EXPECT_THROW(co_await forever, corio::cancelled_error);
    EXPECT_FALSE(srv.is_serving()); // asyncio's rule: cancelling serve_forever() closes the server
    co_await srv.wait_closed();

    corio::server other = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
    auto forever2 = corio::spawn(other.serve_forever());
    co_await corio::sleep(1s);
    other.close();
    co_await forever2;
    co_await other.wait_closed();
    expect_only_main_task();
  });
}

// A second serve_forever() while one runs is an error (asyncio's RuntimeError "already being awaited on
// serve_forever()") and leaves the first alone: it goes on serving and ends with close().
TEST(Server, ServeForeverTwiceIsAnErrorAndLeavesTheFirstAlone) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0, {.start_serving = false});
    auto forever = corio::spawn(srv.serve_forever());
    co_await corio::sleep(1s);
    std::string error = "(accepted: it waited)";
    try {
      auto limit = corio::timeout(5s); // accepted, it would wait for close(): fail, not hang
      co_await srv.serve_forever();
    } catch (const corio::invalid_state_error& e) {
      error = e.what();
    } catch (const corio::timeout_error&) {
    }
    EXPECT_NE(error.find("already being awaited on serve_forever()"), std::string::npos) << error;
    EXPECT_NE(error.find(srv.addresses().front().to_string()), std::string::npos) << error;
    co_await corio::sleep(1s);
    EXPECT_FALSE(forever.done());
    EXPECT_TRUE(srv.is_serving());
    co_await talk(srv.addresses().front(), 1, 2);
    srv.close();
    co_await forever; // ended by close(), not by the refused call
    co_await srv.wait_closed();
    error = "(accepted)";
    try { // none runs now, but the server is closed: asyncio raises RuntimeError "server ... is closed"
      co_await srv.serve_forever();
    } catch (const corio::invalid_state_error& e) {
      error = e.what();
    }
    EXPECT_NE(error.find(" is closed"), std::string::npos) << error;
    expect_only_main_task();
  });
}

TEST(Server, ReusePortAndAddressInUse) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    corio::server a = co_await corio::start_server(echo_lines, "127.0.0.1", 0, {.reuse_port = true});
    corio::server b = co_await corio::start_server(echo_lines, "127.0.0.1", a.port(), {.reuse_port = true});
    EXPECT_EQ(a.port(), b.port());
    co_await talk(a.addresses().front(), 1, 2);
    try {
      (void)co_await corio::start_server(echo_lines, "127.0.0.1", a.port());
      ADD_FAILURE() << "bound a port in use";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EADDRINUSE);
      EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(a.port())), std::string::npos) << e.what();
    }
    a.close();
    b.close();
    co_await a.wait_closed();
    co_await b.wait_closed();
    expect_only_main_task();
  });
}

TEST(Server, HandlerReturningFlushesWhatItWrote) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    std::string big(3 << 20, 'q');
    corio::server srv = co_await corio::start_server(
        [&big](stream_reader, stream_writer w) -> task<> {
          w.write(big); // no drain, no close: the server flushes, then closes
          co_return;
        },
        "::1", 0);
    auto [r, w] = co_await corio::open_connection(srv.addresses().front());
    co_await corio::sleep(1s);
    EXPECT_TRUE(co_await r.read() == big);
    srv.close();
    co_await srv.wait_closed();
    w.close();
    co_await w.wait_closed();
    expect_only_main_task();
  });
}

// A handler that returns without reading all of the request: the server closes the connection with
// bytes unread, which Linux answers with a reset unless they are dropped first, and a reset makes the
// client lose the reply (its read ends with ECONNRESET instead of the reply and end of stream).
TEST(Server, HandlerReturningWithUnreadRequestBytesStillDeliversItsReply) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    const std::string reply(1 << 20, 'r');
    corio::event line_read, body_sent;
    corio::server srv = co_await corio::start_server(
        [&](stream_reader r, stream_writer w) -> task<> {
          EXPECT_EQ(co_await r.readline(), "GET /\n"); // and not the body that follows
          line_read.set();
          co_await body_sent.wait();
          pollfd p{w.fd(), POLLIN, 0}; // the body is in the kernel, unread (loopback: at once)
          EXPECT_EQ(::poll(&p, 1, 5000), 1);
          w.write(reply);
        },
        "127.0.0.1", 0);
    auto [r, w] = co_await corio::open_connection(srv.addresses().front());
    w.write("GET /\n");
    co_await line_read.wait();
    w.write(std::string(1000, 'b'));
    body_sent.set();
    std::string got, error;
    try {
      got = co_await r.read(); // to end of stream
    } catch (const std::system_error& e) {
      error = e.what();
    }
    EXPECT_EQ(error, "");
    EXPECT_TRUE(got == reply) << got.size();
    w.close();
    co_await w.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

TEST(Server, DestroyingTheServerCancelsItsHandlers) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    corio::connection c;
    {
      corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
      c = co_await corio::open_connection(srv.addresses().front());
      c.writer.write("x\n");
      EXPECT_EQ(co_await c.reader.readline(), "x\n");
    }
    EXPECT_EQ(co_await c.reader.read(), ""); // the handler was cancelled and its connection closed
    co_await corio::sleep(1s);
    expect_only_main_task();
  });
}

TEST(Server, BadArguments) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    EXPECT_THROW(co_await corio::start_server(nullptr, "127.0.0.1", 0), std::invalid_argument);
    EXPECT_THROW(co_await corio::start_server(echo_lines, "not a host", 0), std::system_error);
    EXPECT_THROW(co_await corio::start_unix_server(echo_lines, "/nonexistent-dir/x.sock"), std::system_error);
    // A NUL inside a Unix socket path is refused, not cut short (bind would make "/tmp/x").
    const std::string with_nul("/tmp/x\0y.sock", 13);
    std::string server_error, client_error;
    try {
      (void)co_await corio::start_unix_server(echo_lines, with_nul);
    } catch (const std::invalid_argument& e) {
      server_error = e.what();
    }
    try {
      (void)co_await corio::open_unix_connection(with_nul);
    } catch (const std::invalid_argument& e) {
      client_error = e.what();
    }
    EXPECT_EQ(server_error, "corio: NUL byte inside a Unix socket path: \"/tmp/x\\0y.sock\"");
    EXPECT_EQ(client_error, server_error);
    corio::server empty;
    EXPECT_THROW(empty.close(), corio::invalid_state_error);
    expect_only_main_task();
  });
}

} // namespace
