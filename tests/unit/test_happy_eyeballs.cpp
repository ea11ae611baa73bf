// open_connection over several addresses: one after the other, or raced with Happy Eyeballs (RFC 8305,
// asyncio's happy_eyeballs_delay and interleave). Loopback only; an address that "hangs" is a listener
// with a full backlog of 0, which drops the SYN. Mock clock: the delays are exact.
#include <corio/net.hpp>
#include <corio/run.hpp>
#include <corio/timeout.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "leak_check.hpp"
#include "loop_fixture.hpp"
#include "net_helpers.hpp"

using namespace std::chrono_literals;
using corio::address;
using corio::task;
using corio::testing::expect_only_main_task;
using corio::testing::mock_clock;
using corio::testing::run_mock;

namespace {

/// A listener whose connects never complete while it lives: its backlog of 0 is full.
struct black_hole {
  corio::socket listener = corio::listen_on(address::loopback_ipv4(0), 0);
  int filler = -1;

  black_hole() {
    filler = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(::connect(filler, static_cast<const sockaddr*>(where().data()), static_cast<socklen_t>(where().size())),
              0);
  }
  ~black_hole() { ::close(filler); }
  [[nodiscard]] address where() const { return listener.local_address(); }
};

/// A port nothing listens on (bound, never listening: refused).
struct closed_port {
  corio::socket s = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
  closed_port() { s.bind(address::loopback_ipv4(0)); }
  [[nodiscard]] address where() const { return s.local_address(); }
};

/// Accepts one connection on `l` and checks a byte goes through it.
task<> expect_served(corio::socket& l, corio::connection& c) {
  corio::accepted a = co_await corio::sock_accept(l);
  c.writer.write("x");
  char b = 0;
  EXPECT_EQ(co_await corio::sock_recv(a.conn, std::span<char>(&b, 1)), 1u);
  EXPECT_EQ(b, 'x');
}

corio::stream_options eyeballs(corio::duration delay) {
  corio::stream_options o;
  o.happy_eyeballs_delay = delay;
  return o;
}

TEST(HappyEyeballs, TheNextAddressStartsWhenTheDelayPassesAndWins) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* clock) -> task<> {
    black_hole hole;
    corio::socket good = corio::listen_on(address::loopback_ipv4(0));
    const auto t0 = clock->now();
    std::vector<address> candidates{hole.where(), good.local_address()};
    corio::connection c = co_await corio::open_connection(candidates, eyeballs(250ms));
    EXPECT_EQ(clock->now() - t0, 250ms);
    EXPECT_EQ(c.writer.peer_address(), good.local_address());
    co_await expect_served(good, c);
    expect_only_main_task(); // the attempt at the black hole was cancelled, its socket closed
  });
}

TEST(HappyEyeballs, WithoutItAnAddressThatHangsHoldsUpTheRest) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* clock) -> task<> {
    black_hole hole;
    corio::socket good = corio::listen_on(address::loopback_ipv4(0));
    const auto t0 = clock->now();
    std::vector<address> candidates{hole.where(), good.local_address()};
    EXPECT_THROW(co_await corio::wait_for(corio::open_connection(candidates), 5s), corio::timeout_error);
    EXPECT_EQ(clock->now() - t0, 5s);
    expect_only_main_task();
  });
}

TEST(HappyEyeballs, AFailureStartsTheNextAddressAtOnce) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* clock) -> task<> {
    closed_port refused;
    corio::socket good = corio::listen_on(address::loopback_ipv4(0));
    const auto t0 = clock->now();
    std::vector<address> candidates{refused.where(), good.local_address()};
    corio::connection c = co_await corio::open_connection(candidates, eyeballs(10s));
    EXPECT_LT(clock->now() - t0, 10s);
    EXPECT_EQ(c.writer.peer_address(), good.local_address());
    co_await expect_served(good, c);
    expect_only_main_task();
  });
}

TEST(HappyEyeballs, WhenEveryAddressFailsTheFirstOnesErrorIsRaised) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock*) -> task<> {
    closed_port first, second;
    std::vector<address> candidates{first.where(), second.where()};
    std::vector<corio::stream_options> ways{eyeballs(1ms), corio::stream_options()};
    for (const corio::stream_options& o : ways) {
      try {
        (void)co_await corio::open_connection(candidates, o);
        ADD_FAILURE() << "connected to a closed port";
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ECONNREFUSED);
        EXPECT_NE(std::string(e.what()).find(first.where().to_string()), std::string::npos) << e.what();
      }
    }
    std::vector<address> none;
    EXPECT_THROW(co_await corio::open_connection(none), std::invalid_argument);
    expect_only_main_task();
  });
}

TEST(HappyEyeballs, FamiliesTakeTurnsUnlessInterleaveIsZero) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* clock) -> task<> {
    black_hole hole_a, hole_b;
    corio::socket good6 = corio::listen_on(address::loopback_ipv6(0));
    std::vector<address> candidates{hole_a.where(), hole_b.where(), good6.local_address()};
    // Default interleave 1: IPv4, IPv6, IPv4 — the IPv6 address is second.
    auto t0 = clock->now();
    corio::connection c = co_await corio::open_connection(candidates, eyeballs(250ms));
    EXPECT_EQ(clock->now() - t0, 250ms);
    co_await expect_served(good6, c);
    // interleave 0: in the given order — the IPv6 address is third.
    corio::stream_options in_order = eyeballs(250ms);
    in_order.interleave = 0;
    t0 = clock->now();
    corio::connection d = co_await corio::open_connection(candidates, in_order);
    EXPECT_EQ(clock->now() - t0, 500ms);
    co_await expect_served(good6, d);
    // interleave 2: two IPv4 addresses first.
    corio::stream_options two = eyeballs(250ms);
    two.interleave = 2;
    t0 = clock->now();
    corio::connection e = co_await corio::open_connection(candidates, two);
    EXPECT_EQ(clock->now() - t0, 500ms);
    co_await expect_served(good6, e);
    expect_only_main_task();
  });
}

TEST(HappyEyeballs, CancellingTheCallerCancelsEveryAttempt) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* clock) -> task<> {
    black_hole a, b, c;
    std::vector<address> candidates{a.where(), b.where(), c.where()};
    const auto t0 = clock->now();
    EXPECT_THROW(co_await corio::wait_for(corio::open_connection(candidates, eyeballs(100ms)), 1s),
                 corio::timeout_error);
    EXPECT_EQ(clock->now() - t0, 1s);
    expect_only_main_task(); // three connects in flight were cancelled, no timer left
  });
}

// Cancelled in its first iteration, before the attempts started: the attempt started then is cancelled
// too (it used to be spawned after the group had cancelled its children, and hung until the kernel gave
// up on the SYN, about 2 minutes).
TEST(HappyEyeballs, CancelledInItsFirstIterationItReturnsAtOnce) {
  corio::testing::leak_check leaks;
  run_mock([](mock_clock* clock) -> task<> {
    black_hole a, b;
    std::vector<address> candidates{a.where(), b.where()};
    for (int variant = 0; variant < 4; ++variant) {
      const corio::stream_options o = variant % 2 == 0 ? corio::stream_options{} : eyeballs(100ms);
      const auto t0 = clock->now();
      std::string outcome = "connected";
      try {
        auto limit = corio::timeout(5s); // the bug: the attempt would hold the caller until this
        if (variant < 2) {
          auto h = corio::spawn(corio::open_connection(candidates, o));
          h.cancel();
          (void)co_await h;
        } else {
          (void)co_await corio::wait_for(corio::open_connection(candidates, o), 0s);
        }
      } catch (const corio::timeout_error&) {
        outcome = variant < 2 ? "timeout" : "wait_for's timeout";
      } catch (const corio::cancelled_error&) {
        outcome = "cancelled";
      }
      EXPECT_EQ(outcome, variant < 2 ? "cancelled" : "wait_for's timeout") << "variant " << variant;
      EXPECT_EQ(clock->now() - t0, 0s) << "variant " << variant;
      expect_only_main_task();
    }
  });
}

} // namespace
