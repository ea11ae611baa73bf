// The low-level corio::socket API: sock_connect / sock_accept / sock_recv / sock_send(all), datagrams, errors,
// cancellation and timeouts. Loopback only; every test checks no task, timer, fd waiter or fd is left.
#include <corio/net.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/timeout.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "callback_watch.hpp"
#include "leak_check.hpp"
#include "loop_fixture.hpp"
#include "net_helpers.hpp"

using namespace std::chrono_literals;
using corio::address;
using corio::task;
using corio::testing::expect_only_main_task;
using corio::testing::run_mock;

namespace {

std::span<char> buffer(std::string& s) { return {s.data(), s.size()}; }

/// Accepts one connection and echoes it until end of file.
task<> echo_once(corio::socket& listener) {
  corio::accepted a = co_await corio::sock_accept(listener);
  std::string buf(4096, '\0');
  for (;;) {
    std::size_t n = co_await corio::sock_recv(a.conn, buffer(buf));
    if (n == 0)
      break;
    co_await corio::sock_sendall(a.conn, std::string_view(buf.data(), n));
  }
}

task<> round_trip(address where) {
  corio::socket listener = corio::listen_on(where);
  address bound = listener.local_address();
  auto server = corio::spawn(echo_once(listener));
  corio::socket client = corio::socket::open(bound.family(), corio::socket_type::stream);
  co_await corio::sock_connect(client, bound);
  EXPECT_EQ(client.peer_address(), bound);
  co_await corio::sock_sendall(client, "hello, corio");
  client.shutdown_write();
  std::string got, buf(64, '\0');
  for (;;) {
    std::size_t n = co_await corio::sock_recv(client, buffer(buf));
    if (n == 0)
      break;
    got.append(buf.data(), n);
  }
  EXPECT_EQ(got, "hello, corio");
  co_await server;
  expect_only_main_task();
}

TEST(NetSocket, TcpRoundTripIpv4) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) { return round_trip(address::loopback_ipv4()); });
}

TEST(NetSocket, TcpRoundTripIpv6) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) { return round_trip(address::loopback_ipv6()); });
}

TEST(NetSocket, UnixRoundTrip) {
  corio::testing::leak_check leaks;
  std::string path = corio::testing::unique_socket_path("sock");
  run_mock([&](auto*) { return round_trip(address::unix_path(path)); });
  ::unlink(path.c_str());
}

TEST(NetSocket, UnixAbstractRoundTrip) {
  corio::testing::leak_check leaks;
  std::string name = std::string(1, '\0') + corio::testing::unique_socket_path("abstract");
  run_mock([&](auto*) { return round_trip(address::unix_path(name)); });
}

TEST(NetSocket, ConnectRefusedNamesTheAddress) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    address closed_port;
    {
      corio::socket probe = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
      probe.bind(address::loopback_ipv4()); // bound, never listening: connecting is refused
      closed_port = probe.local_address();
      corio::socket client = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
      try {
        co_await corio::sock_connect(client, closed_port);
        ADD_FAILURE() << "connected";
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ECONNREFUSED);
        EXPECT_NE(std::string(e.what()).find("connect to " + closed_port.to_string()), std::string::npos) << e.what();
      }
    }
    expect_only_main_task();
  });
}

// A default-constructed address names no peer: said so, not "connect to: Invalid argument".
TEST(NetSocket, ConnectOrSendtoAnUnspecifiedAddressIsAClearError) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    corio::socket client = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
    try {
      co_await corio::sock_connect(client, address());
      ADD_FAILURE() << "connected";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("connect to an unspecified address"), std::string::npos) << e.what();
    }
    corio::socket udp = corio::socket::open(corio::address_family::ipv4, corio::socket_type::datagram);
    try {
      (void)co_await corio::sock_sendto(udp, "x", address());
      ADD_FAILURE() << "sent";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("sendto an unspecified address"), std::string::npos) << e.what();
    }
    expect_only_main_task();
  });
}

TEST(NetSocket, UnixConnectToMissingPath) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    corio::socket client = corio::socket::open(corio::address_family::unix_path, corio::socket_type::stream);
    try {
      co_await corio::sock_connect(client, address::unix_path("/nonexistent/corio.sock"));
      ADD_FAILURE();
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ENOENT);
      EXPECT_NE(std::string(e.what()).find("/nonexistent/corio.sock"), std::string::npos) << e.what();
    }
  });
}

/// A connected TCP pair on loopback.
struct tcp_pair {
  corio::socket a, b;
};
task<tcp_pair> connect_pair() {
  corio::socket listener = corio::listen_on(address::loopback_ipv4());
  tcp_pair p;
  p.a = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
  co_await corio::sock_connect(p.a, listener.local_address());
  corio::accepted acc = co_await corio::sock_accept(listener);
  p.b = std::move(acc.conn);
  EXPECT_EQ(acc.peer, p.a.local_address());
  co_return p;
}

TEST(NetSocket, CancelledRecvLeavesNoWaiterAndLosesNothing) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    tcp_pair p = co_await connect_pair();
    std::string buf(16, '\0');
    auto reader = corio::spawn(corio::sock_recv(p.b, buffer(buf)));
    co_await corio::sleep(1s);
    EXPECT_EQ(corio::event_loop::current()->io_waiter_count(), 1u);
    reader.cancel();
    EXPECT_THROW(co_await reader, corio::cancelled_error);
    EXPECT_EQ(corio::event_loop::current()->io_waiter_count(), 0u);
    co_await corio::sock_sendall(p.a, "after");
    std::size_t n = co_await corio::sock_recv(p.b, buffer(buf));
    EXPECT_EQ(std::string(buf.data(), n), "after");
    expect_only_main_task();
  });
}

/// A sock_recv cancelled in the step in which its bytes arrive, as a timeout firing then would. On
/// io_uring the kernel may already have taken the bytes for the recv: it must then return them (the
/// cancel is raised at the task's next await), or else leave them to the socket. Returns what it got.
task<std::string> recv_cancelled_as_bytes_arrive(tcp_pair& p) {
  std::string buf(100, '\0');
  auto reader = corio::spawn(corio::sock_recv(p.b, buffer(buf)));
  co_await corio::sleep(10ms); // the reader waits in sock_recv
  EXPECT_EQ(::send(p.a.fd(), "hello", 5, 0), 5);
  reader.cancel();
  std::size_t n = 0;
  try {
    n = co_await reader;
  } catch (const corio::cancelled_error&) {
  }
  co_return std::string(buf.data(), n);
}

TEST(NetSocket, RecvCancelledAsBytesArriveLosesNoneOnRelease) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    tcp_pair p = co_await connect_pair();
    std::string got = co_await recv_cancelled_as_bytes_arrive(p);
    int fd = p.b.release();
    char rest[100];
    const auto k = ::recv(fd, rest, sizeof rest, MSG_DONTWAIT);
    if (k > 0)
      got.append(rest, static_cast<std::size_t>(k));
    ::close(fd);
    EXPECT_EQ(got, "hello");
    expect_only_main_task();
  });
}

TEST(NetSocket, RecvCancelledAsBytesArriveLosesNoneToReadable) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    tcp_pair p = co_await connect_pair();
    std::string got = co_await recv_cancelled_as_bytes_arrive(p);
    if (got.empty()) { // the recv took nothing: the bytes are still the socket's
      bool ready = false;
      try {
        auto deadline = corio::timeout(1s);
        co_await corio::readable(p.b);
        ready = true;
      } catch (const corio::timeout_error&) {
      }
      EXPECT_TRUE(ready) << "readable() does not see the 5 bytes";
      std::string buf(100, '\0');
      if (ready)
        got.assign(buf.data(), co_await corio::sock_recv(p.b, buffer(buf)));
    }
    EXPECT_EQ(got, "hello");
    expect_only_main_task();
  });
}

/// A recv the loop started for nobody in particular (as one whose frame was destroyed mid-wait).
struct unwanted_recv final : corio::detail::io_completion {
  void completed(long, const char*) noexcept override { ADD_FAILURE() << "an abandoned recv delivered"; }
};

/// On io_uring: leaves "hello" taken from the kernel for p.b by a recv that was then abandoned, so
/// that the loop holds the bytes (its stash), or will once that recv's completion is reaped. False on
/// a loop without completion-based recvs (epoll).
task<bool> abandon_a_recv_of_hello(tcp_pair& p) {
  corio::event_loop* loop = corio::event_loop::current();
  if (!loop->can_recv()) {
    EXPECT_EQ(::send(p.a.fd(), "hello", 5, 0), 5);
    co_return false;
  }
  unwanted_recv c;
  loop->start_recv(p.b.fd(), 100, &c);
  co_await corio::sleep(10ms);                   // submitted: the recv waits in the kernel
  EXPECT_EQ(::send(p.a.fd(), "hello", 5, 0), 5); // the kernel hands the bytes to that recv
  loop->abandon_recv(p.b.fd());
  co_return true;
}

TEST(NetSocket, BytesAnAbandonedRecvTookMakeTheSocketReadableAndComeFirst) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    tcp_pair p = co_await connect_pair();
    (void)co_await abandon_a_recv_of_hello(p);
    bool ready = false;
    try {
      auto deadline = corio::timeout(1s);
      co_await corio::readable(p.b); // armed before or after the abandoned recv's bytes are stashed
      ready = true;
    } catch (const corio::timeout_error&) {
    }
    EXPECT_TRUE(ready) << "readable() does not see the bytes the loop holds";
    try {
      auto deadline = corio::timeout(1s);
      co_await corio::readable(p.b); // with the bytes held: ready at once
    } catch (const corio::timeout_error&) {
      ADD_FAILURE() << "readable() does not see the bytes the loop holds, once reaped";
    }
    std::string buf(100, '\0');
    corio::received_from r = co_await corio::sock_recvfrom(p.b, buffer(buf)); // a stream socket's recvfrom
    EXPECT_EQ(std::string(buf.data(), r.size), "hello");
    EXPECT_FALSE(r.truncated);
    expect_only_main_task();
  });
}

TEST(NetSocket, ReleaseRefusesWhileTheLoopHoldsBytesOfTheSocket) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    tcp_pair p = co_await connect_pair();
    if (co_await abandon_a_recv_of_hello(p)) {
      try {
        (void)p.b.release(); // the abandoned recv's completion may not have been reaped yet
        ADD_FAILURE() << "released with 5 bytes held by the loop";
      } catch (const corio::invalid_state_error& e) {
        EXPECT_NE(std::string(e.what()).find("5 bytes"), std::string::npos) << e.what();
      }
      EXPECT_TRUE(p.b.is_open());
      std::string buf(100, '\0');
      std::size_t n = co_await corio::sock_recv(p.b, buffer(buf));
      EXPECT_EQ(std::string(buf.data(), n), "hello");
    }
    int fd = p.b.release();
    char rest[100];
    const auto k = ::recv(fd, rest, sizeof rest, MSG_DONTWAIT);
    ::close(fd);
    EXPECT_EQ(k, corio::event_loop::current()->can_recv() ? -1 : 5); // epoll: the kernel still has them
    expect_only_main_task();
  });
}

TEST(NetSocket, RecvTimesOut) {
  corio::testing::leak_check leaks;
  run_mock([](corio::testing::mock_clock*) -> task<> {
    tcp_pair p = co_await connect_pair();
    std::string buf(16, '\0');
    auto start = corio::event_loop::current()->time();
    try {
      auto deadline = corio::timeout(5s);
      (void)co_await corio::sock_recv(p.b, buffer(buf));
      ADD_FAILURE();
    } catch (const corio::timeout_error&) {
    }
    EXPECT_EQ(corio::event_loop::current()->time() - start, 5s);
    expect_only_main_task();
  });
}

TEST(NetSocket, ClosingTheSocketWakesItsWaiterWithEbadf) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    tcp_pair p = co_await connect_pair();
    auto reader = corio::spawn([](corio::socket& s) -> task<int> {
      std::string buf(16, '\0');
      try {
        (void)co_await corio::sock_recv(s, buffer(buf));
      } catch (const std::system_error& e) {
        EXPECT_NE(std::string(e.what()).find("socket closed"), std::string::npos) << e.what();
        co_return e.code().value();
      }
      co_return 0;
    }(p.b));
    co_await corio::sleep(1s);
    p.b.close();
    EXPECT_EQ(co_await reader, EBADF);
    expect_only_main_task();
  });
}

TEST(NetSocket, SendallOfEightMegabytesWithASlowReader) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    tcp_pair p = co_await connect_pair();
    p.a.set_send_buffer(16 * 1024); // small buffers: sendall must wait for room many times
    p.b.set_receive_buffer(16 * 1024);
    std::string data(8 << 20, '\0');
    for (std::size_t i = 0; i < data.size(); ++i)
      data[i] = static_cast<char>((i * 7919) >> 3);
    auto reader = corio::spawn([](corio::socket& s, std::size_t expected) -> task<std::string> {
      std::string got, buf(7000, '\0');
      while (got.size() < expected) {
        std::size_t n = co_await corio::sock_recv(s, buffer(buf));
        if (n == 0)
          break;
        got.append(buf.data(), n);
        co_await corio::sleep(0s); // let the writer run between reads
      }
      co_return got;
    }(p.b, data.size()));
    co_await corio::sock_sendall(p.a, data);
    std::string got = co_await reader;
    EXPECT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data) << "data corrupted or reordered";
    expect_only_main_task();
  });
}

TEST(NetSocket, SendToAResetPeerRaisesInsteadOfSigpipe) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    tcp_pair p = co_await connect_pair();
    p.b.set_linger_reset();
    p.b.close(); // RST
    int err = 0;
    try {
      for (int i = 0; i < 100; ++i) // the first send may still succeed before the RST is seen
        co_await corio::sock_sendall(p.a, std::string(1000, 'x'));
    } catch (const std::system_error& e) {
      err = e.code().value();
    }
    EXPECT_TRUE(err == EPIPE || err == ECONNRESET) << err;
    expect_only_main_task();
  });
}

TEST(NetSocket, RecvFromAResetPeerRaisesEconnreset) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    tcp_pair p = co_await connect_pair();
    p.b.set_linger_reset();
    p.b.close();
    std::string buf(16, '\0');
    try {
      (void)co_await corio::sock_recv(p.a, buffer(buf));
      ADD_FAILURE();
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNRESET);
    }
  });
}

TEST(NetSocket, AcceptIsCancellable) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    corio::socket listener = corio::listen_on(address::loopback_ipv6());
    auto acceptor = corio::spawn(corio::sock_accept(listener));
    co_await corio::sleep(1s);
    acceptor.cancel();
    EXPECT_THROW(co_await acceptor, corio::cancelled_error);
    expect_only_main_task();
  });
}

// ---- sock_sendfile -----------------------------------------------------------------------------------

/// n bytes that do not repeat at any short period: a misplaced or reordered byte shows.
std::string file_pattern(std::size_t n) {
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
    ::lseek(fd, 0, SEEK_SET);
  }
  temp_file(const temp_file&) = delete;
  ~temp_file() { ::close(fd); }
};

/// Reads at least `n` bytes (exactly n when no more come), or until end of file, from `s`.
task<std::string> recv_bytes(corio::socket& s, std::size_t n) {
  std::string got, buf(7000, '\0');
  while (got.size() < n) {
    std::size_t k = co_await corio::sock_recv(s, buffer(buf));
    if (k == 0)
      break;
    got.append(buf.data(), k);
  }
  co_return got;
}

TEST(NetSocket, SendfileRangesOfAFileLargerThanTheSocketBuffers) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    tcp_pair p = co_await connect_pair();
    p.a.set_send_buffer(16 * 1024); // sendfile must wait for room many times
    p.b.set_receive_buffer(16 * 1024);
    const std::string data = file_pattern((4 << 20) + 123);
    temp_file f(data);
    ::lseek(f.fd, 77, SEEK_SET); // the file position is neither used nor moved
    // The whole file, a range in the middle, a count beyond the end, a count of 0, from an offset to the end.
    const std::string expected =
        data + data.substr(1000003, 777777) + data.substr(data.size() - 100) + data.substr(data.size() - 5000);
    auto reader = corio::spawn(recv_bytes(p.b, expected.size()));
    EXPECT_EQ(co_await corio::sock_sendfile(p.a, f.fd), data.size());
    EXPECT_EQ(co_await corio::sock_sendfile(p.a, f.fd, 1000003, 777777), 777777u);
    EXPECT_EQ(co_await corio::sock_sendfile(p.a, f.fd, data.size() - 100, 1000), 100u);
    EXPECT_EQ(co_await corio::sock_sendfile(p.a, f.fd, 5, 0), 0u);
    EXPECT_EQ(co_await corio::sock_sendfile(p.a, f.fd, data.size() - 5000), 5000u);
    EXPECT_EQ(co_await corio::sock_sendfile(p.a, f.fd, data.size() + 10), 0u); // past the end: nothing
    std::string got = co_await reader;
    EXPECT_EQ(got.size(), expected.size());
    EXPECT_TRUE(got == expected) << "data corrupted or reordered";
    EXPECT_EQ(::lseek(f.fd, 0, SEEK_CUR), 77);
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

TEST(NetSocket, SendfileFromAPipeReadsAndSends) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    tcp_pair p = co_await connect_pair();
    p.a.set_send_buffer(16 * 1024);
    p.b.set_receive_buffer(16 * 1024);
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    const std::string data = file_pattern(1 << 20);
    auto writer = corio::spawn(feed_pipe(fds[1], data));
    auto reader = corio::spawn(recv_bytes(p.b, data.size() - 10 - 1000));
    // sendfile(2) cannot read a pipe at an offset: the bytes are read and sent; the offset is skipped.
    EXPECT_EQ(co_await corio::sock_sendfile(p.a, fds[0], 10, data.size() - 10 - 1000), data.size() - 10 - 1000);
    std::string got = co_await reader;
    EXPECT_TRUE(got == data.substr(10, data.size() - 10 - 1000)) << "data corrupted or reordered";
    // The rest, to the end of the pipe.
    auto rest = corio::spawn(recv_bytes(p.b, 1000));
    EXPECT_EQ(co_await corio::sock_sendfile(p.a, fds[0]), 1000u);
    EXPECT_TRUE(co_await rest == data.substr(data.size() - 1000));
    co_await writer;
    ::close(fds[0]);
    expect_only_main_task();
  });
}

TEST(NetSocket, SendfileOfABadFdIsAClearError) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    tcp_pair p = co_await connect_pair();
    int closed_fd = -1;
    {
      temp_file f("some bytes");
      closed_fd = ::dup(f.fd);
      ::close(closed_fd);
    }
    for (int fd : {closed_fd, -1}) {
      try {
        (void)co_await corio::sock_sendfile(p.a, fd);
        ADD_FAILURE() << fd;
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EBADF);
        EXPECT_NE(std::string(e.what()).find("file fd " + std::to_string(fd)), std::string::npos) << e.what();
      }
    }
    // A file open for writing only.
    char name[] = "/tmp/corio-sendfile-XXXXXX";
    int wfd = ::mkstemp(name);
    ::unlink(name);
    int wronly = ::open(("/proc/self/fd/" + std::to_string(wfd)).c_str(), O_WRONLY | O_CLOEXEC);
    EXPECT_THROW((void)co_await corio::sock_sendfile(p.a, wronly), std::system_error);
    ::close(wronly);
    ::close(wfd);
    // Nothing was sent: the connection is as it was.
    co_await corio::sock_sendall(p.a, "after");
    EXPECT_EQ(co_await recv_bytes(p.b, 5), "after");
    expect_only_main_task();
  });
}

TEST(NetSocket, SendfileToAResetPeerRaises) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    tcp_pair p = co_await connect_pair();
    tcp_pair other = co_await connect_pair();
    temp_file f(file_pattern(4 << 20));
    // The peer reads a little, then resets the connection while the sendfile waits for room.
    auto resetter = corio::spawn([](corio::socket& s) -> task<> {
      std::string got = co_await recv_bytes(s, 100000);
      EXPECT_GE(got.size(), 100000u);
      s.set_linger_reset();
      s.close(); // RST
    }(p.b));
    int err = 0;
    try {
      for (int i = 0; i < 10; ++i) // a sendfile may end before the RST is seen: the next one raises
        (void)co_await corio::sock_sendfile(p.a, f.fd);
    } catch (const std::system_error& e) {
      err = e.code().value();
    }
    EXPECT_TRUE(err == EPIPE || err == ECONNRESET) << err;
    co_await resetter;
    // The other connection is untouched.
    auto reader = corio::spawn(recv_bytes(other.b, 4 << 20));
    EXPECT_EQ(co_await corio::sock_sendfile(other.a, f.fd), 4u << 20);
    EXPECT_TRUE(co_await reader == file_pattern(4 << 20));
    expect_only_main_task();
  });
}

TEST(NetSocket, SendfileIsCancellable) {
  corio::testing::leak_check leaks;
  run_mock([](corio::testing::mock_clock*) -> task<> {
    tcp_pair p = co_await connect_pair();
    p.a.set_send_buffer(16 * 1024);
    p.b.set_receive_buffer(16 * 1024);
    temp_file f(file_pattern(4 << 20));
    auto start = corio::event_loop::current()->time();
    try {
      auto deadline = corio::timeout(5s); // nobody reads: the sendfile waits for room until then
      (void)co_await corio::sock_sendfile(p.a, f.fd);
      ADD_FAILURE();
    } catch (const corio::timeout_error&) {
    }
    EXPECT_EQ(corio::event_loop::current()->time() - start, 5s);
    EXPECT_EQ(corio::event_loop::current()->io_waiter_count(), 0u);
    // Part of the file went (how much is not known); the socket still works for the next operation.
    p.b.close();
    expect_only_main_task();
  });
}

TEST(NetSocket, OptionsAndBadFds) {
  corio::testing::leak_check leaks;
  corio::socket s = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
  s.set_reuse_address(true);
  EXPECT_NE(s.get_option(SOL_SOCKET, SO_REUSEADDR), 0);
  s.set_keep_alive(true);
  s.set_no_delay(true);
  EXPECT_THROW((void)s.peer_address(), std::system_error); // not connected
  EXPECT_THROW(corio::socket(-1), std::system_error);
  EXPECT_THROW((void)corio::socket::open(corio::address_family::unspecified, corio::socket_type::stream),
               std::system_error);
  corio::socket moved = std::move(s);
  EXPECT_FALSE(s.is_open());
  EXPECT_TRUE(moved.is_open());
  try {
    corio::socket other = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
    other.bind(moved.local_address().with_port(1)); // port 1 needs privileges, or another error: named
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("bind to 0.0.0.0:1"), std::string::npos) << e.what();
  }
}

// ---- names -------------------------------------------------------------------------------------------

TEST(NetResolve, DnsLookupOnTheThreadPool) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    std::vector<address> found = co_await corio::resolve_dns("localhost", 8080); // /etc/hosts, via getaddrinfo
    EXPECT_NE(std::find(found.begin(), found.end(), address::loopback_ipv4(8080)), found.end());
    for (const address& a : found)
      EXPECT_EQ(a.port(), 8080);
    std::vector<address> v4 = co_await corio::resolve_dns("127.0.0.1", 1, corio::address_family::ipv4);
    EXPECT_EQ(v4, std::vector<address>{address::loopback_ipv4(1)});
    expect_only_main_task();
  });
}

TEST(NetResolve, UnknownNamesAreClearErrors) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    try {
      (void)co_await corio::resolve("no-such-host.invalid", 80); // RFC 6761: never resolves
      ADD_FAILURE();
    } catch (const std::system_error& e) {
      EXPECT_NE(std::string(e.what()).find("cannot resolve \"no-such-host.invalid\""), std::string::npos) << e.what();
    }
    expect_only_main_task();
  });
}

TEST(NetResolve, CancelledLookupReturnsAtOnce) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    auto lookup = corio::spawn(corio::resolve_dns("localhost", 80));
    co_await corio::sleep(0s); // queued on the pool
    lookup.cancel();
    EXPECT_THROW(co_await lookup, corio::cancelled_error);
    expect_only_main_task();
  });
}

TEST(NetResolve, NamesOfAddresses) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    corio::name_info numeric = co_await corio::resolve_name(
        address::loopback_ipv4(80), corio::name_flags::numeric_host | corio::name_flags::numeric_service);
    EXPECT_EQ(numeric.host, "127.0.0.1");
    EXPECT_EQ(numeric.service, "80");
    // Whatever /etc/hosts calls 127.0.0.1 (usually "localhost"), the name leads back to it.
    corio::name_info named = co_await corio::resolve_name(address::loopback_ipv4(8080));
    EXPECT_FALSE(named.host.empty());
    EXPECT_FALSE(named.service.empty()); // "http-alt" from /etc/services, or "8080"
    std::vector<address> back = co_await corio::resolve_dns(named.host, 8080);
    EXPECT_NE(std::find(back.begin(), back.end(), address::loopback_ipv4(8080)), back.end()) << named.host;
    corio::name_info v6 = co_await corio::resolve_name(address::loopback_ipv6(443), corio::name_flags::numeric_host);
    EXPECT_EQ(v6.host, "::1");
    EXPECT_THROW(co_await corio::resolve_name(address::unix_path("/tmp/x")), std::invalid_argument);
    expect_only_main_task();
  });
}

/// Awaits t and says how it ended: the what() of the std::invalid_argument it raised, "other error: ..."
/// for another exception, or "<who> accepted it".
template <class T> task<std::string> refusal(task<T> t, std::string who) {
  std::string out = who + " accepted it";
  try {
    (void)co_await std::move(t);
  } catch (const std::invalid_argument& x) {
    out = x.what();
  } catch (const std::exception& x) {
    out = std::string("other error: ") + x.what();
  }
  co_return out;
}

// getaddrinfo() would look up only what comes before a NUL byte: "localhost\0.evil.example" is refused
// by every call that takes a host name, before any lookup or socket (asyncio: ValueError).
TEST(NetResolve, HostNamesWithANulByteAreRefused) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    const std::string evil("localhost\0.evil.example", 23);
    const std::string shown = "the host name \"localhost\\0.evil.example\" contains a NUL byte";
    corio::server srv = co_await corio::start_server(
        [](corio::stream_reader, corio::stream_writer) -> task<> { co_return; }, "127.0.0.1", 0);
    std::vector<std::string> errors;
    errors.push_back(co_await refusal(corio::resolve(evil, 80), "resolve()"));
    errors.push_back(co_await refusal(corio::resolve(std::string("127.0.0.1\0.evil", 15), 80), "resolve()"));
    errors.push_back(co_await refusal(corio::resolve_dns(evil, 80), "resolve_dns()"));
    errors.push_back(co_await refusal(corio::open_connection(evil, srv.port()), "open_connection()"));
    errors.push_back(co_await refusal(
        corio::start_server([](corio::stream_reader, corio::stream_writer) -> task<> { co_return; }, evil, 0),
        "start_server()"));
    errors.push_back(
        co_await refusal(corio::datagram_endpoint::connect(evil, srv.port()), "datagram_endpoint::connect()"));
    const std::vector<std::string> expected{
        "corio: resolve(): " + shown,      "corio: resolve(): the host name \"127.0.0.1\\0.evil\" contains a NUL byte",
        "corio: resolve_dns(): " + shown,  "corio: open_connection(): " + shown,
        "corio: start_server(): " + shown, "corio: datagram_endpoint::connect(): " + shown,
    };
    EXPECT_EQ(errors, expected);
    srv.close();
    co_await srv.wait_closed();
    expect_only_main_task();
  });
}

// DNS answers IP addresses only: a Unix family is a mistake, not "any family".
TEST(NetResolve, DnsRefusesTheUnixFamily) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    std::string error = "accepted";
    try {
      (void)co_await corio::resolve_dns("localhost", 80, corio::address_family::unix_path);
    } catch (const std::invalid_argument& e) {
      error = e.what();
    }
    EXPECT_EQ(error, "corio: resolve_dns(\"localhost\"): DNS answers only address_family::ipv4, ipv6 or unspecified "
                     "(both), not unix_path");
    expect_only_main_task();
  });
}

// ---- datagrams ----------------------------------------------------------------------------------------

task<> datagram_round_trip(address loopback) {
  auto server = corio::datagram_endpoint::open({.local = loopback});
  address server_addr = server.local_address();
  auto client = corio::datagram_endpoint::open({.local = loopback, .remote = server_addr});
  EXPECT_EQ(co_await client.send("ping"), 4u);
  corio::datagram d = co_await server.recvfrom();
  EXPECT_EQ(d.data, "ping");
  EXPECT_EQ(d.from, client.local_address());
  EXPECT_EQ(co_await server.sendto("pong!", d.from), 5u);
  EXPECT_EQ(co_await client.recv(), "pong!");
  // Datagram boundaries are kept, in order.
  for (int i = 0; i < 10; ++i)
    (void)co_await client.send(std::string(static_cast<std::size_t>(i + 1), char('a' + i)));
  for (int i = 0; i < 10; ++i) {
    corio::datagram m = co_await server.recvfrom();
    EXPECT_EQ(m.data, std::string(static_cast<std::size_t>(i + 1), char('a' + i)));
  }
  // A datagram longer than the buffer is truncated, as recvfrom does, and says so.
  (void)co_await client.send(std::string(100, 'z'));
  corio::datagram cut = co_await server.recvfrom(10);
  EXPECT_EQ(cut.data, std::string(10, 'z'));
  EXPECT_TRUE(cut.truncated);
  EXPECT_EQ(cut.size, 100u);
  EXPECT_FALSE(d.truncated);
  EXPECT_EQ(d.size, 4u);
  // A max_size beyond any datagram allocates only what the largest one needs (it raised length_error).
  (void)co_await client.send(std::string(65000, 'y'));
  corio::datagram big = co_await server.recvfrom(SIZE_MAX);
  EXPECT_EQ(big.data, std::string(65000, 'y'));
  EXPECT_FALSE(big.truncated);
  EXPECT_LE(big.data.capacity(), 65536u + 64u);
  (void)co_await server.sendto("back", client.local_address());
  EXPECT_EQ(co_await client.recv(SIZE_MAX), "back");
  expect_only_main_task();
}

TEST(NetDatagram, RoundTripIpv4) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) { return datagram_round_trip(address::loopback_ipv4()); });
}

TEST(NetDatagram, RoundTripIpv6) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) { return datagram_round_trip(address::loopback_ipv6()); });
}

TEST(NetDatagram, UnixDatagrams) {
  corio::testing::leak_check leaks;
  std::string a_path = corio::testing::unique_socket_path("dgram-a");
  std::string b_path = corio::testing::unique_socket_path("dgram-b");
  run_mock([&](auto*) -> task<> {
    auto a = corio::datagram_endpoint::open({.local = address::unix_path(a_path)});
    auto b = corio::datagram_endpoint::open({.local = address::unix_path(b_path)});
    (void)co_await b.sendto("over a unix datagram", address::unix_path(a_path));
    corio::datagram d = co_await a.recvfrom();
    EXPECT_EQ(d.data, "over a unix datagram");
    EXPECT_EQ(d.from.path(), b_path);
    (void)co_await b.sendto(std::string(100000, 'u'), address::unix_path(a_path)); // beyond UDP's 64 KiB
    corio::datagram big = co_await a.recvfrom(SIZE_MAX);
    EXPECT_EQ(big.data, std::string(100000, 'u'));
    EXPECT_FALSE(big.truncated);
    expect_only_main_task();
  });
  ::unlink(a_path.c_str());
  ::unlink(b_path.c_str());
}

/// Runs `op` (a task) bounded by a real-time watchdog: a receive that never completes fails the test
/// instead of hanging it (a mock clock cannot bound a wait for I/O). Returns whether it finished.
template <class T> task<bool> bounded(task<T> op, T* out, const char* what) {
  corio::testing::callback_watch w;
  bool done = false;
  auto body = [&]() -> task<> {
    *out = co_await std::move(op);
    done = true;
    w.poke();
  };
  auto running = corio::spawn(body());
  while (!done && !w.expired()) {
    try {
      co_await w.next(what);
    } catch (const std::runtime_error&) {
    }
  }
  if (!done) {
    ADD_FAILURE() << "timed out: " << what;
    running.cancel();
  }
  try {
    co_await running;
  } catch (const corio::cancelled_error&) {
  }
  co_return done;
}

/// Sends one datagram on a plain non-blocking socket; 0 or the errno.
int send_now(const corio::socket& s, const std::string& data, const address& to) {
  for (;;) {
    if (::sendto(s.fd(), data.data(), data.size(), MSG_DONTWAIT, static_cast<const sockaddr*>(to.data()),
                 static_cast<socklen_t>(to.size())) >= 0)
      return 0;
    if (errno != EINTR)
      return errno;
  }
}

// Unix datagrams longer than 64 KiB, on the io_uring backend and on epoll: recvfrom(max_size) gives a
// datagram that fits whole (truncated false, size its length); one longer than max_size is cut to
// max_size and says so (truncated, size its real length); a larger max_size then takes the next one of
// that size whole. recv() of a connected endpoint takes a datagram longer than the ring's 16 KiB buffers
// whole, and cuts one longer than max_size there (documented). Bytes checked against what was sent.
TEST(NetDatagram, UnixDatagramsLongerThanMaxSizeAreMarkedTruncated) {
  constexpr std::size_t medium = 200 * 1024, big = 300 * 1024, small_max = 256 * 1024;
  {
    corio::socket probe = corio::socket::open(corio::address_family::unix_path, corio::socket_type::datagram);
    int want = 1 << 20, got = 0;
    socklen_t len = sizeof got;
    (void)::setsockopt(probe.fd(), SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
    (void)::getsockopt(probe.fd(), SOL_SOCKET, SO_SNDBUF, &got, &len);
    if (got < static_cast<int>(big + 4096))
      GTEST_SKIP() << "SO_SNDBUF cannot reach 300 KiB here (net.core.wmem_max)";
  }
  corio::testing::leak_check leaks;
  const std::string rx_path = corio::testing::unique_socket_path("dgram-big-rx");
  const std::string tx_path = corio::testing::unique_socket_path("dgram-big-tx");
  run_mock([&](auto*) -> task<> {
    auto rx = corio::datagram_endpoint::open({.local = address::unix_path(rx_path)});
    auto tx = corio::datagram_endpoint::open({.local = address::unix_path(tx_path)});
    int sndbuf = 1 << 20;
    EXPECT_EQ(::setsockopt(tx.raw().fd(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
    const address to = address::unix_path(rx_path);
    const std::vector<std::string> sent = {corio::testing::pattern(medium, 1), corio::testing::pattern(big, 2),
                                           corio::testing::pattern(big, 3), corio::testing::pattern(100, 4)};
    const std::vector<std::size_t> max_sizes = {small_max, small_max, 512 * 1024, 65536};
    for (std::size_t i = 0; i < sent.size(); ++i) {
      EXPECT_EQ(send_now(tx.raw(), sent[i], to), 0) << "datagram " << i;
      corio::datagram d;
      if (!co_await bounded(rx.recvfrom(max_sizes[i]), &d, "a datagram"))
        break;
      EXPECT_EQ(d.from.path(), tx_path);
      EXPECT_EQ(d.size, sent[i].size()) << "datagram " << i;
      if (i == 1) { // longer than max_size
        EXPECT_TRUE(d.truncated);
        EXPECT_EQ(d.data.size(), small_max);
        EXPECT_TRUE(d.data == sent[i].substr(0, small_max)) << "the first max_size bytes differ";
      } else {
        EXPECT_FALSE(d.truncated) << "datagram " << i;
        EXPECT_EQ(d.data.size(), sent[i].size()) << "datagram " << i;
        EXPECT_TRUE(d.data == sent[i]) << "datagram " << i << " differs";
      }
    }

    // recv() on a connected endpoint: longer than the ring's 16 KiB buffers, whole; longer than max_size,
    // cut there.
    rx.close();
    ::unlink(rx_path.c_str());
    auto crx = corio::datagram_endpoint::open({.local = address::unix_path(rx_path), .remote = tx.local_address()});
    const std::string mid = corio::testing::pattern(40000, 5);
    EXPECT_EQ(send_now(tx.raw(), mid, to), 0);
    std::string r;
    if (co_await bounded(crx.recv(), &r, "recv of a 40000-byte datagram")) {
      EXPECT_EQ(r.size(), mid.size());
      EXPECT_TRUE(r == mid) << "recv() differs";
    }
    EXPECT_EQ(send_now(tx.raw(), sent[0], to), 0);
    if (co_await bounded(crx.recv(1000), &r, "recv of a 200 KiB datagram")) {
      EXPECT_TRUE(r == sent[0].substr(0, 1000));
    }
    EXPECT_EQ(send_now(tx.raw(), sent[3], to), 0);
    if (co_await bounded(crx.recv(), &r, "recv of a small datagram")) {
      EXPECT_TRUE(r == sent[3]) << "the datagram after a cut one differs";
    }
    expect_only_main_task();
  });
  ::unlink(rx_path.c_str());
  ::unlink(tx_path.c_str());
}

TEST(NetDatagram, ReceiveIsCancellableAndTimesOut) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    auto ep = corio::datagram_endpoint::open({.local = address::loopback_ipv4()});
    auto r = corio::spawn(ep.recvfrom());
    co_await corio::sleep(1s);
    r.cancel();
    EXPECT_THROW(co_await r, corio::cancelled_error);
    EXPECT_THROW(co_await corio::wait_for(ep.recv(), 2s), corio::timeout_error);
    // Nothing was lost: a datagram sent now is the next one received.
    auto sender = corio::datagram_endpoint::open({.remote = ep.local_address()});
    (void)co_await sender.send("late");
    EXPECT_EQ(co_await ep.recv(), "late");
    expect_only_main_task();
  });
}

/// The code and message of the std::system_error `op` raises (0 and "" if it raises none).
template <class Op> task<std::pair<int, std::string>> system_error_of(Op op) {
  try {
    (void)co_await op();
  } catch (const std::system_error& e) {
    co_return std::pair<int, std::string>{e.code().value(), e.what()};
  }
  co_return std::pair<int, std::string>{0, ""};
}

// A datagram endpoint's errors name the operation, the destination (sendto) and the endpoint: its local
// address and, when connected, its peer (as the datagram protocol's errors do).
TEST(NetDatagram, ErrorsNameTheEndpointAndItsPeer) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    address peer; // a port nobody listens on
    {
      auto gone = corio::datagram_endpoint::open({.local = address::loopback_ipv4()});
      peer = gone.local_address();
    }
    auto c = corio::datagram_endpoint::open({.remote = peer});
    const std::string who = "(endpoint " + c.local_address().to_string() + " connected to " + peer.to_string() + ")";
    // Each refusal (ICMP port unreachable) is waited for, then taken by the call under test.
    auto refused = [&c]() -> task<> {
      (void)co_await c.send("anyone there?");
      co_await corio::readable(c.raw()); // the error arrived
    };
    co_await refused();
    auto recv = [&c]() { return c.recv(); };
    auto [recv_code, recv_what] = co_await system_error_of(recv);
    EXPECT_EQ(recv_code, ECONNREFUSED) << recv_what;
    EXPECT_NE(recv_what.find("corio: recv " + who + ": "), std::string::npos) << recv_what;
    co_await refused();
    auto send = [&c]() { return c.send("again"); };
    auto [send_code, send_what] = co_await system_error_of(send);
    EXPECT_EQ(send_code, ECONNREFUSED) << send_what;
    EXPECT_NE(send_what.find("corio: send " + who + ": "), std::string::npos) << send_what;
    co_await refused();
    auto recvfrom = [&c]() { return c.recvfrom(); };
    auto [from_code, from_what] = co_await system_error_of(recvfrom);
    EXPECT_EQ(from_code, ECONNREFUSED) << from_what;
    EXPECT_NE(from_what.find("corio: recvfrom " + who + ": "), std::string::npos) << from_what;

    // Not connected: the destination of sendto, and the endpoint's own address.
    auto u = corio::datagram_endpoint::open({.local = address::loopback_ipv4()});
    const std::string mine = "(endpoint " + u.local_address().to_string() + ")";
    auto too_long = [&u, &peer]() { return u.sendto(std::string(70000, 'x'), peer); };
    auto [long_code, long_what] = co_await system_error_of(too_long);
    EXPECT_EQ(long_code, EMSGSIZE) << long_what;
    EXPECT_NE(long_what.find("corio: sendto " + peer.to_string() + " " + mine + ": "), std::string::npos) << long_what;
    // Closed under a waiting receive: EBADF, naming the endpoint as it was.
    auto waiting = corio::spawn([](corio::datagram_endpoint* ep) -> task<std::pair<int, std::string>> {
      auto op = [ep]() { return ep->recvfrom(); };
      co_return co_await system_error_of(op);
    }(&u));
    co_await corio::sleep(1s);
    u.close();
    auto [closed_code, closed_what] = co_await waiting;
    EXPECT_EQ(closed_code, EBADF) << closed_what;
    EXPECT_NE(closed_what.find("corio: recvfrom " + mine + ": socket closed"), std::string::npos) << closed_what;
    expect_only_main_task();
  });
}

// sock_recv on a connected UDP socket reads one datagram per call, whole when it fits (40000 bytes: more
// than io_uring's 16 KiB ring buffers) and cut to the buffer otherwise, as recv(2) does; the rest of a cut
// datagram never comes back as a datagram of its own. On both backends.
TEST(NetDatagram, SockRecvOnADatagramSocketKeepsDatagramsApart) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    corio::socket rx = corio::socket::open(corio::address_family::ipv4, corio::socket_type::datagram);
    corio::socket tx = corio::socket::open(corio::address_family::ipv4, corio::socket_type::datagram);
    rx.bind(address::loopback_ipv4());
    tx.bind(address::loopback_ipv4());
    co_await corio::sock_connect(rx, tx.local_address());
    EXPECT_FALSE(rx.is_stream());
    const std::string big = corio::testing::pattern(40000, 5), cut = corio::testing::pattern(5000, 6);
    const address to = rx.local_address();
    EXPECT_EQ(send_now(tx, big, to), 0);
    EXPECT_EQ(send_now(tx, cut, to), 0);
    EXPECT_EQ(send_now(tx, "small", to), 0);
    std::string buf(65536, '\0');
    std::size_t n = 0;
    if (co_await bounded(corio::sock_recv(rx, std::span<char>(buf)), &n, "a 40000-byte datagram")) {
      EXPECT_EQ(n, big.size());
      EXPECT_TRUE(buf.compare(0, n, big) == 0) << "the datagram differs";
    }
    if (co_await bounded(corio::sock_recv(rx, std::span<char>(buf.data(), 1000)), &n, "a cut datagram")) {
      EXPECT_EQ(n, 1000u);
      EXPECT_TRUE(buf.compare(0, n, cut.substr(0, 1000)) == 0);
    }
    if (co_await bounded(corio::sock_recv(rx, std::span<char>(buf)), &n, "the next datagram")) {
      EXPECT_EQ(std::string_view(buf.data(), n), "small") << "the rest of the cut datagram came back";
    }
    // datagram binds as {data, from}, as before it had size and truncated.
    auto ep = corio::datagram_endpoint::open({.local = address::loopback_ipv4()});
    EXPECT_EQ(send_now(tx, "bound", ep.local_address()), 0);
    corio::datagram d;
    if (co_await bounded(ep.recvfrom(), &d, "a datagram to bind")) {
      auto [data, from] = std::move(d);
      EXPECT_EQ(data, "bound");
      EXPECT_EQ(from, tx.local_address());
      const corio::datagram& cd = d;
      const auto& [cdata, cfrom] = cd;
      EXPECT_EQ(cfrom, tx.local_address());
      (void)cdata;
    }
    corio::socket stream_socket = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
    EXPECT_TRUE(stream_socket.is_stream());
    expect_only_main_task();
  });
}

// sock_recvfrom on a plain datagram socket: the datagram and its sender; one longer than the buffer is cut
// and says so (truncated, full_size), and the next datagram is whole. Binds as {size, from}.
TEST(NetDatagram, SockRecvfromReportsTruncation) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    corio::socket rx = corio::socket::open(corio::address_family::ipv4, corio::socket_type::datagram);
    corio::socket tx = corio::socket::open(corio::address_family::ipv4, corio::socket_type::datagram);
    rx.bind(address::loopback_ipv4());
    tx.bind(address::loopback_ipv4());
    const address to = rx.local_address();
    const std::string whole = corio::testing::pattern(3000, 1), longer = corio::testing::pattern(5000, 2);
    EXPECT_EQ(co_await corio::sock_sendto(tx, whole, to), whole.size());
    EXPECT_EQ(co_await corio::sock_sendto(tx, longer, to), longer.size());
    EXPECT_EQ(co_await corio::sock_sendto(tx, "next", to), 4u);
    std::string buf(4096, '\0');
    corio::received_from r;
    if (co_await bounded(corio::sock_recvfrom(rx, std::span<char>(buf)), &r, "a whole datagram")) {
      EXPECT_EQ(r.size, whole.size());
      EXPECT_EQ(r.full_size, whole.size());
      EXPECT_FALSE(r.truncated);
      EXPECT_EQ(r.from, tx.local_address());
      EXPECT_TRUE(buf.compare(0, r.size, whole) == 0);
    }
    if (co_await bounded(corio::sock_recvfrom(rx, std::span<char>(buf)), &r, "a datagram longer than the buffer")) {
      EXPECT_EQ(r.size, buf.size());
      EXPECT_EQ(r.full_size, longer.size());
      EXPECT_TRUE(r.truncated);
      EXPECT_TRUE(buf.compare(0, r.size, longer.substr(0, buf.size())) == 0);
    }
    if (co_await bounded(corio::sock_recvfrom(rx, std::span<char>(buf)), &r, "the next datagram")) {
      auto [n, from] = r;
      EXPECT_EQ(std::string_view(buf.data(), n), "next") << "the rest of the cut datagram came back";
      EXPECT_EQ(from, tx.local_address());
      EXPECT_FALSE(r.truncated);
    }
    expect_only_main_task();
  });
}

/// Records what a datagram protocol receives (for the connect-by-name test).
struct received_log : corio::datagram_protocol {
  std::vector<std::string> got;
  corio::testing::callback_watch* w = nullptr;
  void datagram_received(std::string_view d, const address&) override {
    got.emplace_back(d);
    w->poke();
  }
};

// A remote given by name (asyncio's remote_addr=(host, port)): datagram_endpoint::connect and
// create_datagram_endpoint resolve it, keep to options.local's family, and say clearly what is wrong.
TEST(NetDatagram, ConnectByHostName) {
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    auto rx = corio::datagram_endpoint::open({.local = address::loopback_ipv4()});
    const std::uint16_t port = rx.local_address().port();
    corio::datagram_options v4{.local = address::loopback_ipv4()};
    auto tx = co_await corio::datagram_endpoint::connect("localhost", port, v4);
    EXPECT_EQ(tx.remote_address(), rx.local_address());
    (void)co_await tx.send("by name");
    corio::datagram d;
    if (co_await bounded(rx.recvfrom(), &d, "a datagram sent by name")) {
      EXPECT_EQ(d.data, "by name");
      EXPECT_EQ(d.from, tx.local_address());
    }
    // The protocol form.
    corio::testing::callback_watch w;
    auto log = std::make_shared<received_log>();
    log->w = &w;
    auto factory = [log] { return log; }; // named: g++ 12 and temporaries in a co_await (HAZARDS.md 2)
    auto made = co_await corio::create_datagram_endpoint(factory, "127.0.0.1", port, v4);
    made.transport->sendto("from the protocol's endpoint");
    if (co_await bounded(rx.recvfrom(), &d, "a datagram from the protocol endpoint")) {
      EXPECT_EQ(d.data, "from the protocol's endpoint");
    }
    (void)co_await rx.sendto("back", made.transport->sockname());
    while (log->got.empty())
      co_await w.next("datagram_received");
    EXPECT_EQ(log->got.at(0), "back");
    made.transport->close();
    // Errors.
    corio::datagram_options both{.remote = rx.local_address()};
    bool both_refused = false;
    try {
      (void)co_await corio::datagram_endpoint::connect("localhost", port, both);
    } catch (const std::invalid_argument&) {
      both_refused = true;
    }
    EXPECT_TRUE(both_refused);
    corio::datagram_options unix_local{.local = address::unix_path(corio::testing::unique_socket_path("dg-by-name"))};
    int code = 0;
    try {
      (void)co_await corio::datagram_endpoint::connect("127.0.0.1", port, unix_local);
    } catch (const std::system_error& e) {
      code = e.code().value();
      EXPECT_NE(std::string(e.what()).find("127.0.0.1"), std::string::npos) << e.what();
    }
    EXPECT_EQ(code, EAFNOSUPPORT);
    co_await corio::sleep(0s); // the transport's task ends
    expect_only_main_task();
  });
}

TEST(NetDatagram, BadOptionsAreClearErrors) {
  corio::testing::leak_check leaks;
  EXPECT_THROW((void)corio::datagram_endpoint::open({}), std::invalid_argument);
  EXPECT_THROW(
      (void)corio::datagram_endpoint::open({.local = address::loopback_ipv4(), .remote = address::loopback_ipv6(9)}),
      std::invalid_argument);
  run_mock([](auto*) -> task<> {
    auto ep = corio::datagram_endpoint::open({.local = address::loopback_ipv4()});
    try {
      (void)co_await ep.send("nowhere"); // not connected
      ADD_FAILURE();
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EDESTADDRREQ);
    }
  });
}

} // namespace
