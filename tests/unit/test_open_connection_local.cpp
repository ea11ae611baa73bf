// open_connection with stream_options::local_address (asyncio's local_addr): the connecting socket is
// bound first; only candidates of the local address's family are tried; bind failures name the local
// address and leave no fd. Loopback only (127.0.0.0/8 and ::1); mock clock.
#include <corio/net.hpp>
#include <corio/run.hpp>
#include <corio/sync/event.hpp>

#include <sys/socket.h>
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
using corio::testing::mock_clock;
using corio::testing::run_mock;

namespace {

bool ipv6_available() {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  address a = address::loopback_ipv6(0);
  bool ok = ::bind(fd, static_cast<const sockaddr*>(a.data()), static_cast<socklen_t>(a.size())) == 0;
  ::close(fd);
  return ok;
}

/// The peers a server saw, in order.
struct peers {
  std::vector<address> seen;
};

task<> record_peer(peers* p, stream_reader, stream_writer w) {
  p->seen.push_back(w.peer_address());
  co_return; // the server closes the connection
}

corio::connection_handler recorder(peers* p) {
  return [p](stream_reader r, stream_writer w) { return record_peer(p, std::move(r), std::move(w)); };
}

corio::stream_options from(address local) {
  corio::stream_options o;
  o.local_address = local;
  return o;
}

/// Connects from `local`, waits until the server closed the connection (its handler ran), and returns
/// the client's local address.
task<address> connect_from(std::vector<address> candidates, corio::stream_options o) {
  corio::connection c = co_await corio::open_connection(std::move(candidates), o);
  address mine = c.writer.local_address();
  EXPECT_EQ(co_await c.reader.read(), ""); // the handler returned: end of stream
  c.writer.close();
  co_await c.writer.wait_closed();
  co_return mine;
}

/// A port free on 127.0.0.1 now (bound to port 0, read back, closed: never connected, so no TIME_WAIT).
std::uint16_t free_port() {
  corio::socket s = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
  s.bind(address::loopback_ipv4(0));
  return s.local_address().port();
}

TEST(OpenConnectionLocal, BindsTheLocalAddressAndPort) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    peers p;
    corio::server srv = co_await corio::start_server(recorder(&p), "127.0.0.1", 0);
    std::vector<address> to{srv.addresses().front()};
    // Another loopback address than the default source (127.0.0.1), port 0: the kernel picks the port.
    corio::stream_options o = from(address::from_ip("127.0.0.2", 0));
    address mine = co_await connect_from(to, o);
    EXPECT_EQ(mine.ip(), "127.0.0.2");
    EXPECT_NE(mine.port(), 0);
    // A fixed port, through the single-address overload.
    std::uint16_t port = free_port();
    corio::stream_options fixed = from(address::loopback_ipv4(port));
    {
      corio::connection c = co_await corio::open_connection(srv.addresses().front(), fixed);
      EXPECT_EQ(c.writer.local_address(), address::loopback_ipv4(port));
      EXPECT_EQ(co_await c.reader.read(), "");
    }
    srv.close();
    co_await srv.wait_closed();
    EXPECT_EQ(p.seen.size(), 2u);
    if (p.seen.size() == 2) {
      EXPECT_EQ(p.seen[0], mine); // what the server saw is where the client was bound
      EXPECT_EQ(p.seen[1], address::loopback_ipv4(port));
    }
    expect_only_main_task();
  });
}

// With candidates of both families, only those of the local address's family are tried: the other
// family's address comes first (in turn and with Happy Eyeballs) and would win otherwise.
TEST(OpenConnectionLocal, TriesOnlyCandidatesOfTheLocalFamily) {
  if (!ipv6_available())
    GTEST_SKIP() << "no IPv6 loopback here";
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* clock) -> task<> {
    peers p;
    std::vector<address> listen{address::loopback_ipv6(0), address::loopback_ipv4(0)};
    corio::server srv = corio::start_server(recorder(&p), listen);
    std::vector<address> both = srv.addresses(); // [::1]:P, 127.0.0.1:P
    EXPECT_EQ(both.size(), 2u);
    EXPECT_EQ(both.front().family(), corio::address_family::ipv6);
    corio::stream_options v4 = from(address::loopback_ipv4(0));
    address mine = co_await connect_from(both, v4);
    EXPECT_EQ(mine.family(), corio::address_family::ipv4);
    std::vector<address> reversed{both.back(), both.front()};
    corio::stream_options v6 = from(address::loopback_ipv6(0));
    v6.happy_eyeballs_delay = 250ms;
    auto t0 = clock->now();
    mine = co_await connect_from(reversed, v6);
    EXPECT_EQ(mine.family(), corio::address_family::ipv6);
    EXPECT_EQ(clock->now() - t0, 0ms); // nothing was waited for
    srv.close();
    co_await srv.wait_closed();
    EXPECT_EQ(p.seen.size(), 2u);
    expect_only_main_task();
  });
}

// No candidate of the local address's family: EAFNOSUPPORT naming the local address and the candidates
// (not a bind error of the first candidate, and nothing connected).
TEST(OpenConnectionLocal, NoCandidateOfTheLocalFamilyIsAClearError) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    peers p;
    corio::server srv = co_await corio::start_server(recorder(&p), "127.0.0.1", 0);
    address to = srv.addresses().front();
    corio::stream_options v6 = from(address::loopback_ipv6(0));
    v6.happy_eyeballs_delay = 250ms;
    std::vector<address> two{to, to};
    for (int overload = 0; overload < 2; ++overload) {
      int code = 0;
      std::string what;
      try {
        corio::connection c;
        if (overload == 0)
          c = co_await corio::open_connection(two, v6);
        else
          c = co_await corio::open_connection(to, v6);
        ADD_FAILURE() << "connected from an IPv6 address to an IPv4 one";
      } catch (const std::system_error& e) {
        code = e.code().value();
        what = e.what();
      }
      EXPECT_EQ(code, EAFNOSUPPORT) << what;
      EXPECT_NE(what.find("[::1]:0"), std::string::npos) << what;
      EXPECT_NE(what.find(to.to_string()), std::string::npos) << what;
      EXPECT_NE(what.find("family"), std::string::npos) << what;
    }
    srv.close();
    co_await srv.wait_closed();
    EXPECT_TRUE(p.seen.empty());
    expect_only_main_task();
  });
}

/// open_connection's error code and message.
task<std::pair<int, std::string>> failure_of(std::vector<address> to, corio::stream_options o) {
  std::pair<int, std::string> out{0, ""};
  try {
    corio::connection c = co_await corio::open_connection(std::move(to), o);
    ADD_FAILURE() << "connected";
  } catch (const std::system_error& e) {
    out = {e.code().value(), e.what()};
  }
  co_return out;
}

// A local address in use (a listener holds it) or not local at all: the bind error, naming the local
// address; every socket opened is closed (leak_check counts the fds).
TEST(OpenConnectionLocal, BindFailuresNameTheLocalAddressAndLeakNothing) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    peers p;
    corio::server srv = co_await corio::start_server(recorder(&p), "127.0.0.1", 0);
    address to = srv.addresses().front();
    corio::socket busy = corio::listen_on(address::loopback_ipv4(0));
    address taken = busy.local_address();
    int fds = corio::testing::open_fd_count();
    corio::stream_options in_use = from(taken);
    const std::size_t counts[] = {1, 3};
    for (std::size_t n : counts) { // in turn over three candidates: each bind fails
      std::vector<address> candidates(n, to);
      auto [code, what] = co_await failure_of(candidates, in_use);
      EXPECT_EQ(code, EADDRINUSE) << what;
      EXPECT_NE(what.find(taken.to_string()), std::string::npos) << what;
      EXPECT_EQ(corio::testing::open_fd_count(), fds);
    }
    corio::stream_options racing = in_use;
    racing.happy_eyeballs_delay = 250ms;
    std::vector<address> two{to, to};
    auto [code, what] = co_await failure_of(two, racing);
    EXPECT_EQ(code, EADDRINUSE) << what;
    EXPECT_EQ(corio::testing::open_fd_count(), fds);
    // 192.0.2.1 (TEST-NET-1) is no address of this host.
    corio::stream_options foreign = from(address::from_ip("192.0.2.1", 0));
    std::vector<address> one{to};
    auto [code2, what2] = co_await failure_of(one, foreign);
    EXPECT_EQ(code2, EADDRNOTAVAIL) << what2;
    EXPECT_NE(what2.find("192.0.2.1:0"), std::string::npos) << what2;
    EXPECT_EQ(corio::testing::open_fd_count(), fds);
    srv.close();
    co_await srv.wait_closed();
    EXPECT_TRUE(p.seen.empty());
    expect_only_main_task();
  });
}

} // namespace
