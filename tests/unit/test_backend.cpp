// Choosing the I/O backend (options, CORIO_BACKEND, auto's fallback) and a conformance check that runs
// the same readiness scenarios on epoll and io_uring. (scripts/test also runs the whole suite on each.)
#include "leak_check.hpp"
#include "loop_fixture.hpp"
#include <arpa/inet.h>
#include <array>
#include <chrono>
#include <corio/files.hpp>
#include <corio/io.hpp>
#include <corio/net.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/testing/mock_clock.hpp>
#include <corio/timeout.hpp>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <string>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using namespace std::chrono_literals;
using corio::backend_kind;
using corio::event_loop;
using corio::task;

bool uring_available() {
  try {
    event_loop loop({.backend = backend_kind::io_uring});
    return true;
  } catch (const corio::loop_error&) {
    return false;
  }
}

/// Sets an environment variable for one scope.
class env_var {
public:
  env_var(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name))
      old_ = old, had_ = true;
    ::setenv(name, value, 1);
  }
  env_var(const env_var&) = delete;
  env_var& operator=(const env_var&) = delete;
  ~env_var() {
    if (had_)
      ::setenv(name_, old_.c_str(), 1);
    else
      ::unsetenv(name_);
  }

private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

/// Sets CORIO_BACKEND for one scope.
struct env_backend : env_var {
  explicit env_backend(const char* value) : env_var("CORIO_BACKEND", value) {}
};

TEST(Backend, TheOptionChoosesEpoll) {
  env_backend env("io_uring"); // the option wins over the environment
  event_loop loop({.backend = backend_kind::epoll});
  EXPECT_EQ(loop.backend(), backend_kind::epoll);
  EXPECT_STREQ(loop.backend_name(), "epoll");
}

TEST(Backend, TheOptionChoosesIoUringOrSaysWhyNot) {
  try {
    event_loop loop({.backend = backend_kind::io_uring});
    EXPECT_EQ(loop.backend(), backend_kind::io_uring);
    EXPECT_STREQ(loop.backend_name(), "io_uring");
  } catch (const corio::loop_error& e) {
    EXPECT_NE(std::string(e.what()).find("io_uring backend is unavailable"), std::string::npos) << e.what();
    GTEST_SKIP() << "io_uring unavailable here: " << e.what();
  }
}

TEST(Backend, TheEnvironmentChooses) {
  {
    env_backend env("epoll");
    event_loop loop;
    EXPECT_EQ(loop.backend(), backend_kind::epoll);
  }
  {
    env_backend env("auto");
    event_loop loop;
    EXPECT_EQ(loop.backend(), uring_available() ? backend_kind::io_uring : backend_kind::epoll);
  }
  if (uring_available()) {
    env_backend env("io_uring");
    event_loop loop;
    EXPECT_EQ(loop.backend(), backend_kind::io_uring);
  }
}

TEST(Backend, ABadEnvironmentValueIsAClearError) {
  env_backend env("kqueue");
  try {
    event_loop loop;
    ADD_FAILURE() << "no error";
  } catch (const corio::loop_error& e) {
    EXPECT_NE(std::string(e.what()).find("CORIO_BACKEND=kqueue"), std::string::npos) << e.what();
  }
}

// A child process blocks io_uring_setup with a seccomp filter (as container runtimes do): `auto` must
// fall back to epoll with one line on stderr, and an explicit io_uring must throw saying why.
TEST(Backend, AutoFallsBackToEpollWhenSeccompBlocksIoUring) {
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(pipefd[1], 2); // stderr into the pipe
    ::close(pipefd[0]);
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
      ::_exit(3);
    int code = 0;
    try {
      event_loop loop({.backend = backend_kind::automatic});
      if (loop.backend() != backend_kind::epoll)
        code = 4;
    } catch (...) {
      code = 5;
    }
    try {
      event_loop loop({.backend = backend_kind::io_uring});
      code = 6;
    } catch (const corio::loop_error&) {
    }
    ::_exit(code);
  }
  ::close(pipefd[1]);
  std::string err;
  char buf[512];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;)
    err.append(buf, static_cast<std::size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "3: no seccomp, 4: auto did not fall back, 5: auto threw, 6: io_uring did not throw";
  EXPECT_NE(err.find("corio: io_uring unavailable"), std::string::npos) << err;
  EXPECT_NE(err.find("using epoll"), std::string::npos) << err;
}

// ---- the same scenarios on each backend ---------------------------------------------------------------

class Conformance : public ::testing::TestWithParam<backend_kind> {
protected:
  void SetUp() override {
    if (GetParam() == backend_kind::io_uring && !uring_available())
      GTEST_SKIP() << "io_uring unavailable here";
  }
  template <class F> void run(F body) {
    corio::testing::mock_clock clock;
    corio::run(body(), {.clock = &clock, .backend = GetParam()});
  }
};

struct socket_pair {
  int fd[2]{-1, -1};
  socket_pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd), 0); }
  ~socket_pair() {
    for (int f : fd)
      if (f >= 0)
        ::close(f);
  }
};

TEST_P(Conformance, PingPongOverManySocketPairs) {
  corio::testing::leak_check leaks;
  run([]() -> task<> {
    constexpr int pairs = 50, rounds = 20;
    std::vector<std::unique_ptr<socket_pair>> sp;
    for (int i = 0; i < pairs; ++i)
      sp.push_back(std::make_unique<socket_pair>());
    std::vector<corio::join_handle<int>> echoers;
    for (int i = 0; i < pairs; ++i)
      echoers.push_back(corio::spawn([](int fd) -> task<int> {
        int got = 0;
        for (;;) {
          co_await corio::readable(fd);
          char c;
          auto n = ::read(fd, &c, 1);
          if (n == 0)
            co_return got;
          if (n < 0)
            continue;
          ++got;
          EXPECT_EQ(::write(fd, &c, 1), 1);
        }
      }(sp[static_cast<std::size_t>(i)]->fd[1])));
    for (int r = 0; r < rounds; ++r) {
      for (auto& p : sp)
        EXPECT_EQ(::write(p->fd[0], "x", 1), 1);
      for (auto& p : sp) {
        co_await corio::readable(p->fd[0]);
        char c = 0;
        EXPECT_EQ(::read(p->fd[0], &c, 1), 1);
        EXPECT_EQ(c, 'x');
      }
    }
    for (auto& p : sp)
      ::shutdown(p->fd[0], SHUT_WR);
    for (auto& e : echoers)
      EXPECT_EQ(co_await e, rounds);
    EXPECT_EQ(event_loop::current()->io_waiter_count(), 0u);
  });
}

TEST_P(Conformance, ACancelledWaitIsWithdrawnAndTheFdCanBeWaitedOnAgain) {
  run([]() -> task<> {
    socket_pair sp;
    for (int i = 0; i < 3; ++i) {
      bool timed_out = false;
      try {
        co_await corio::wait_for([](int fd) -> task<> { co_await corio::readable(fd); }(sp.fd[0]), 1s);
      } catch (const corio::timeout_error&) {
        timed_out = true;
      }
      EXPECT_TRUE(timed_out);
      EXPECT_EQ(event_loop::current()->io_waiter_count(), 0u);
    }
    EXPECT_EQ(::write(sp.fd[1], "y", 1), 1);
    co_await corio::readable(sp.fd[0]);
  });
}

TEST_P(Conformance, WritableAndHangUpAreDelivered) {
  run([]() -> task<> {
    socket_pair sp;
    co_await corio::writable(sp.fd[0]);
    auto reader = corio::spawn([](int fd) -> task<> { co_await corio::readable(fd); }(sp.fd[0]));
    co_await corio::sleep(1s);
    ::close(sp.fd[1]);
    sp.fd[1] = -1;
    co_await reader; // the peer's close reads as end of file
  });
}

TEST_P(Conformance, AnotherThreadWakesABlockedLoop) {
  event_loop loop({.backend = GetParam()});
  std::thread t([&] {
    std::this_thread::sleep_for(20ms);
    loop.call_soon_threadsafe([&] { loop.stop(); });
  });
  loop.run_forever(); // blocks in the backend with no timer: only wake() can end it
  t.join();
  loop.close();
}

TEST_P(Conformance, BadFdsAreClearErrors) {
  run([]() -> task<> {
    EXPECT_THROW(co_await corio::readable(12345), std::system_error);
    char path[] = "/tmp/corio_backend_XXXXXX";
    int f = ::mkstemp(path);
    ::unlink(path);
    EXPECT_THROW(co_await corio::readable(f), std::system_error); // a regular file
    ::close(f);
  });
}

// ---- receiving: on io_uring a completion-based recv into the loop's buffers ----------------------------

/// A connected pair of corio::sockets (AF_UNIX stream).
std::pair<corio::socket, corio::socket> socket_pair_owned() {
  int fd[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd), 0);
  return {corio::socket::adopt(fd[0]), corio::socket::adopt(fd[1])};
}

// A recv cancelled by a timeout must not lose what the kernel took for it: the bytes are returned by
// that recv (as asyncio's wait_for returns a result that came with its timeout), or by the next one, in
// order, whatever the timing of the cancel against the arrival.
TEST_P(Conformance, ACancelledSockRecvLosesNoBytes) {
  corio::testing::leak_check leaks;
  run([]() -> task<> {
    auto [a, b] = socket_pair_owned();
    std::string got, want;
    for (int i = 0; i < 20; ++i) {
      std::array<char, 64> buf{};
      want += "m" + std::to_string(i) + ";";
      // The writer lands in the same iteration as the timeout (both due at 1 s): either may win.
      auto sender = corio::spawn([](corio::socket& s, int k) -> task<> {
        co_await corio::sleep(1s);
        std::string msg = "m" + std::to_string(k) + ";";
        co_await corio::sock_sendall(s, msg);
      }(b, i));
      try {
        std::size_t n = co_await corio::wait_for(corio::sock_recv(a, buf), 1s);
        got.append(buf.data(), n); // the bytes came with the timeout: returned, not lost
      } catch (const corio::timeout_error&) {
      }
      co_await sender;
      for (int reads = 0; reads < 10 && got.size() < want.size(); ++reads) {
        std::size_t n = co_await corio::sock_recv(a, buf);
        got.append(buf.data(), n);
      }
    }
    EXPECT_EQ(got, want);
    EXPECT_EQ(event_loop::current()->io_waiter_count(), 0u);
  });
}

TEST_P(Conformance, ACancelledStreamReadLosesNoBytes) {
  corio::testing::leak_check leaks;
  run([]() -> task<> {
    auto [a, b] = socket_pair_owned();
    auto [reader, writer] = corio::make_streams(std::move(a));
    std::string got;
    for (int i = 0; i < 20; ++i) {
      auto sender = corio::spawn([](corio::socket& s, int k) -> task<> {
        co_await corio::sleep(1s);
        std::string msg = "line " + std::to_string(k) + "\n";
        co_await corio::sock_sendall(s, msg);
      }(b, i));
      try {
        (void)co_await corio::wait_for(reader.readline(), 1s);
        ADD_FAILURE() << "a line before it was sent";
      } catch (const corio::timeout_error&) {
      }
      co_await sender;
      got += co_await reader.readline();
    }
    std::string want;
    for (int i = 0; i < 20; ++i)
      want += "line " + std::to_string(i) + "\n";
    EXPECT_EQ(got, want);
    b.close();
    EXPECT_EQ(co_await reader.read(100), "");
    EXPECT_TRUE(reader.at_eof());
    writer.close();
    co_await writer.wait_closed();
  });
}

// The bytes reach the kernel's recv (io_uring completes it at once) and the reader is cancelled before
// the loop collects the completion: the bytes must not be dropped. A sock_recv returns them (its cancel
// waits for the kernel's answer; the cancellation is raised at the next await); on epoll nothing was
// read and the next recv gets them. A stream's read stashes them for the next read.
TEST_P(Conformance, BytesTakenByARecvCancelledBeforeItsCompletionAreReadNext) {
  corio::testing::leak_check leaks;
  run([]() -> task<> {
    auto [a, b] = socket_pair_owned();
    for (int i = 0; i < 10; ++i) {
      auto reader = corio::spawn([](corio::socket& s) -> task<std::string> {
        std::array<char, 64> buf{};
        std::size_t n = co_await corio::sock_recv(s, buf);
        co_return std::string(buf.data(), n);
      }(a));
      co_await corio::sleep(1s); // it waits in the ring now
      std::string msg = "chunk" + std::to_string(i);
      EXPECT_EQ(::send(b.fd(), msg.data(), msg.size(), 0), static_cast<ssize_t>(msg.size()));
      reader.cancel();
      std::string returned;
      try {
        returned = co_await reader;
      } catch (const corio::cancelled_error&) {
      }
      if (!returned.empty()) {
        EXPECT_TRUE(event_loop::current()->can_recv()) << "epoll's recv(2) follows readiness, never a cancel";
        EXPECT_EQ(returned, msg);
        continue;
      }
      if (i % 2 == 1)
        co_await corio::sleep(1s);
      std::array<char, 64> buf{};
      std::size_t n = co_await corio::sock_recv(a, buf);
      EXPECT_EQ(std::string(buf.data(), n), msg);
    }
    // The same through a stream reader, with the end of file taken by the cancelled recv.
    auto [reader, writer] = corio::make_streams(std::move(a));
    auto waiting =
        corio::spawn([](corio::stream_reader& r) -> task<std::string> { co_return co_await r.read(64); }(reader));
    co_await corio::sleep(1s);
    EXPECT_EQ(::send(b.fd(), "tail", 4, 0), 4);
    waiting.cancel();
    EXPECT_THROW((void)co_await waiting, corio::cancelled_error);
    EXPECT_EQ(co_await reader.read(64), "tail");
    waiting = corio::spawn([](corio::stream_reader& r) -> task<std::string> { co_return co_await r.read(64); }(reader));
    co_await corio::sleep(1s);
    b.close();
    waiting.cancel();
    EXPECT_THROW((void)co_await waiting, corio::cancelled_error);
    co_await corio::sleep(1s);
    EXPECT_EQ(co_await reader.read(64), "");
    EXPECT_TRUE(reader.at_eof());
    writer.close();
    co_await writer.wait_closed();
  });
}

// More readers waiting than the loop has receive buffers (256): the ones the kernel cannot give a buffer
// get ENOBUFS and fall back to recv(2). Every byte still arrives.
TEST_P(Conformance, MoreReadersThanBuffers) {
  corio::testing::leak_check leaks;
  run([]() -> task<> {
    constexpr int pairs = 300;
    std::vector<std::pair<corio::socket, corio::socket>> sp;
    for (int i = 0; i < pairs; ++i)
      sp.push_back(socket_pair_owned());
    std::vector<corio::join_handle<std::string>> readers;
    for (auto& p : sp)
      readers.push_back(corio::spawn([](corio::socket& s) -> task<std::string> {
        std::string all;
        std::array<char, 100> buf{};
        for (std::size_t n; (n = co_await corio::sock_recv(s, buf)) > 0;)
          all.append(buf.data(), n);
        co_return all;
      }(p.first)));
    co_await corio::sleep(1s); // every reader waits now
    for (int i = 0; i < pairs; ++i) {
      std::string msg(150, static_cast<char>('a' + i % 26));
      co_await corio::sock_sendall(sp[static_cast<std::size_t>(i)].second, msg);
      sp[static_cast<std::size_t>(i)].second.close();
    }
    for (int i = 0; i < pairs; ++i)
      EXPECT_EQ(co_await readers[static_cast<std::size_t>(i)], std::string(150, static_cast<char>('a' + i % 26)));
  });
}

TEST_P(Conformance, ClosingASocketWakesItsReceiverWithAClearError) {
  corio::testing::leak_check leaks;
  run([]() -> task<> {
    auto [a, b] = socket_pair_owned();
    auto reader = corio::spawn([](corio::socket& s) -> task<> {
      std::array<char, 16> buf{};
      try {
        (void)co_await corio::sock_recv(s, buf);
        ADD_FAILURE() << "no error";
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EBADF);
        EXPECT_NE(std::string(e.what()).find("socket closed"), std::string::npos) << e.what();
      }
    }(a));
    co_await corio::sleep(1s);
    a.close();
    co_await reader;
  });
}

task<> large_transfer_through_streams() {
  auto [a, b] = socket_pair_owned();
  auto [r1, w1] = corio::make_streams(std::move(a));
  auto [r2, w2] = corio::make_streams(std::move(b));
  std::string big(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>(i * 131 % 251);
  auto sender = corio::spawn([](corio::stream_writer& w, const std::string& data) -> task<> {
    w.write(data);
    co_await w.drain();
    w.write_eof();
  }(w1, big));
  std::string got = co_await r2.read();
  co_await sender;
  EXPECT_EQ(got.size(), big.size());
  EXPECT_TRUE(got == big);
  w1.close();
  w2.close();
  co_await w1.wait_closed();
  co_await w2.wait_closed();
}

TEST_P(Conformance, ALargeTransferThroughStreamsArrivesIntact) {
  corio::testing::leak_check leaks;
  run(large_transfer_through_streams);
}

/// Whether a stream's recv stays in flight between reads (io_uring's multishot recv: with
/// CORIO_URING_MULTISHOT_RECV=1, unless the kernel refused it at the first one).
bool kept_recvs() { return event_loop::current()->keeps_recv(); }

/// The bytes of fd that the loop's backend received for nobody (io_uring's stash; none on epoll).
std::string take_all_stashed(int fd) {
  std::string out;
  std::array<char, 4096> buf{};
  int err = 0;
  for (long k; (k = event_loop::current()->take_stashed(fd, buf.data(), buf.size(), err)) > 0;)
    out.append(buf.data(), static_cast<std::size_t>(k));
  return out;
}

// With multishot recvs (io_uring, CORIO_URING_MULTISHOT_RECV=1: the KeptRecv tests below) a stream's recv
// stays in flight between reads: bytes that arrive while nobody reads are received at once and kept, in
// order, for the next read. Otherwise they wait in the socket. Either way every byte arrives once, in
// order, and the end of file after them.
task<> bytes_arriving_between_stream_reads() {
  auto [a, b] = socket_pair_owned();
  const int fd = a.fd();
  auto [reader, writer] = corio::make_streams(std::move(a));
  auto first =
      corio::spawn([](corio::stream_reader& r) -> task<std::string> { co_return co_await r.read(100); }(reader));
  co_await corio::sleep(1s); // it waits in the ring (io_uring) now
  co_await corio::sock_sendall(b, "one");
  EXPECT_EQ(co_await first, "one");
  co_await corio::sock_sendall(b, "two");
  co_await corio::sock_sendall(b, "three");
  co_await corio::sleep(1s); // the loop polls; nobody reads
  if (kept_recvs())
    EXPECT_EQ(take_all_stashed(fd), "twothree"); // received for the next reader: the recv was kept
  else
    EXPECT_EQ(co_await reader.read(100), "twothree");
  co_await corio::sock_sendall(b, "four");
  b.close();
  co_await corio::sleep(1s);
  EXPECT_EQ(co_await reader.read(100), "four");
  EXPECT_EQ(co_await reader.read(100), "");
  EXPECT_TRUE(reader.at_eof());
  writer.close();
  co_await writer.wait_closed();
}

TEST_P(Conformance, BytesArrivingBetweenStreamReadsAreReadInOrder) {
  corio::testing::leak_check leaks;
  run(bytes_arriving_between_stream_reads);
}

// A reader that does not read while the peer sends a lot: with multishot recvs the kernel ends the kept
// recv after 64 KiB, so TCP's flow control pushes back on the sender instead of the stash growing; every byte still
// arrives once, in order.
task<> slow_stream_reader() {
  auto [a, b] = socket_pair_owned();
  const int fd = a.fd();
  auto [reader, writer] = corio::make_streams(std::move(a));
  std::string big(1024 * 1024 + 5, '\0');
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>(i * 131 % 251);
  auto first = corio::spawn([](corio::stream_reader& r) -> task<std::string> { co_return co_await r.read(1); }(reader));
  co_await corio::sleep(1s); // it waits in the ring (io_uring) now
  auto sender = corio::spawn([](corio::socket& s, const std::string& data) -> task<> {
    co_await corio::sock_sendall(s, data);
    s.close();
  }(b, big));
  std::string got = co_await first;
  for (int i = 0; i < 5; ++i)
    co_await corio::sleep(1s); // the sender fills what the kernel buffers; nobody reads
  if (reader.buffered() > 0)
    got += co_await reader.read(reader.buffered()); // what the first recv brought beyond the 1 byte
  if (kept_recvs()) {
    std::string stashed = take_all_stashed(fd);
    EXPECT_GT(stashed.size(), 0u);
    EXPECT_LE(stashed.size(), 64u * 1024 + 16 * 1024) << "the kept recv went on receiving for nobody";
    got += stashed;
  }
  got += co_await reader.read();
  co_await sender;
  EXPECT_EQ(got.size(), big.size());
  EXPECT_TRUE(got == big);
  writer.close();
  co_await writer.wait_closed();
}

TEST_P(Conformance, ASlowStreamReaderBoundsWhatIsReceivedForItAndLosesNothing) {
  corio::testing::leak_check leaks;
  run(slow_stream_reader);
}

/// Threads of the default pool ("corio-pool"; io_uring's own kernel workers, iou-wrk-*, are not counted).
int thread_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.')
        continue;
      std::string comm;
      if (std::FILE* f = std::fopen(("/proc/self/task/" + std::string(e->d_name) + "/comm").c_str(), "r")) {
        char buf[64] = {};
        if (std::fgets(buf, sizeof buf, f) != nullptr)
          comm = buf;
        std::fclose(f);
      }
      n += comm.rfind("corio-pool", 0) == 0;
    }
    ::closedir(d);
  }
  return n;
}

// On io_uring, read_file / write_file / append_file run in the loop's ring: no thread pool is started.
// On epoll they use the pool. The results are the same.
TEST_P(Conformance, FileHelpersUseTheRingOnIoUringAndThePoolOnEpoll) {
  corio::testing::leak_check leaks;
  char dir[] = "/tmp/corio_files_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/f";
  const int before = thread_count();
  int during = 0;
  run([&]() -> task<> {
    std::string big(200 * 1024 + 3, 'q');
    co_await corio::write_file(path, big);
    co_await corio::append_file(path, "tail");
    EXPECT_EQ(co_await corio::read_file(path), big + "tail");
    try {
      (void)co_await corio::read_file(path + ".missing");
      ADD_FAILURE() << "no error";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
      EXPECT_NE(std::string(e.what()).find("read_file: cannot open \"" + path + ".missing\""), std::string::npos)
          << e.what();
    }
    during = thread_count();
  });
  EXPECT_EQ(during > before, GetParam() == backend_kind::epoll) << before << " threads before, " << during << " during";
  ::unlink(path.c_str());
  ::rmdir(dir);
}

// The loop closes while a cancelled read_file is still waiting for data (a FIFO with a writer and no data:
// in the kernel on io_uring, polled on the pool on epoll) and a cancelled recv is still in flight: nothing
// hangs, and the file the job opened is closed.
TEST_P(Conformance, TheLoopClosesWithAFileJobAndARecvStillInFlight) {
  corio::testing::leak_check leaks;
  char dir[] = "/tmp/corio_fifo_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string fifo = std::string(dir) + "/f";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int writer = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(writer, 0);
  auto [a, b] = socket_pair_owned();
  corio::run(
      [](std::string path, corio::socket& s) -> task<> {
        auto reader =
            corio::spawn([](std::string p) -> task<std::string> { co_return co_await corio::read_file(p); }(path));
        auto receiver = corio::spawn([](corio::socket& sock) -> task<std::size_t> {
          std::array<char, 16> buf{};
          co_return co_await corio::sock_recv(sock, buf);
        }(s));
        co_await corio::sleep(20ms);
        reader.cancel();
        receiver.cancel();
        EXPECT_TRUE(co_await corio::testing::was_cancelled(reader));
        EXPECT_TRUE(co_await corio::testing::was_cancelled(receiver));
      }(fifo, a),
      {.backend = GetParam()});
  ::close(writer); // the loop's close cancelled the read blocked in the kernel
  a.close();
  b.close();
  ::unlink(fifo.c_str());
  ::rmdir(dir);
}

// ---- accept and connect (completion-based on io_uring) ----------------------------------------------

/// A client socket connected with a blocking connect(2) from the loop's thread: on loopback the handshake
/// is done when it returns, and the connection waits in the listener's queue (or was taken by an accept
/// in flight on io_uring).
int connect_blocking(const corio::address& to) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::connect(fd, static_cast<const sockaddr*>(to.data()), static_cast<socklen_t>(to.size())), 0);
  return fd;
}

std::uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  return ntohs(a.sin_port);
}

// An accept cancelled while (on io_uring) the kernel completes it for a connection: the connection is
// not lost but handed to the next accept, with its peer's address, whether the loop collected the
// completion before that accept (kept for the listener) or not (the next accept adopts the op).
TEST_P(Conformance, ACancelledAcceptLosesNoConnection) {
  corio::testing::leak_check leaks;
  run([]() -> task<> {
    corio::socket listener = corio::listen_on(corio::address::loopback_ipv4(0));
    const corio::address where = listener.local_address();
    for (int i = 0; i < 10; ++i) {
      auto acceptor = corio::spawn(
          [](corio::socket& l) -> task<corio::accepted> { co_return co_await corio::sock_accept(l); }(listener));
      co_await corio::sleep(1s); // it waits (in the ring, on io_uring)
      const int client = connect_blocking(where);
      acceptor.cancel();
      EXPECT_THROW((void)co_await acceptor, corio::cancelled_error);
      if (i % 2 == 1)
        co_await corio::sleep(1s); // the loop collects the accept's completion first
      corio::accepted a = co_await corio::wait_for(corio::sock_accept(listener), 10s); // not lost: no timeout
      EXPECT_EQ(a.peer.port(), local_port(client));
      const std::string msg = "hello" + std::to_string(i);
      EXPECT_EQ(::send(client, msg.data(), msg.size(), 0), static_cast<ssize_t>(msg.size()));
      std::array<char, 32> buf{};
      std::size_t n = co_await corio::sock_recv(a.conn, buf);
      EXPECT_EQ(std::string(buf.data(), n), msg);
      ::close(client);
    }
    // A connection taken for a cancelled accept and never asked for is closed with the listener, as the
    // kernel resets those still queued: the client sees its connection end.
    auto acceptor = corio::spawn(
        [](corio::socket& l) -> task<corio::accepted> { co_return co_await corio::sock_accept(l); }(listener));
    co_await corio::sleep(1s);
    const int client = connect_blocking(where);
    acceptor.cancel();
    EXPECT_THROW((void)co_await acceptor, corio::cancelled_error);
    co_await corio::sleep(1s);
    listener.close();
    char c;
    EXPECT_LE(::recv(client, &c, 1, 0), 0); // end of file, or a reset
    ::close(client);
    EXPECT_EQ(event_loop::current()->io_waiter_count(), 0u);
  });
}

// Many clients connect while the server's loop does not run (on io_uring its multishot accept takes them
// from the kernel's queue, up to a bound, and the rest wait there): every one is served.
TEST_P(Conformance, AServerServesEveryConnectionThatArrivedWhileItWasBusy) {
  corio::testing::leak_check leaks;
  run([]() -> task<> {
    corio::server srv = co_await corio::start_server(
        [](corio::stream_reader r, corio::stream_writer w) -> task<> {
          std::string line = co_await r.readline();
          w.write(line);
          co_await w.drain();
        },
        "127.0.0.1", 0);
    const corio::address where = srv.addresses().front();
    co_await corio::sleep(1s);
    std::vector<int> clients;
    for (int i = 0; i < 150; ++i) // more than the bound of connections kept unclaimed (64)
      clients.push_back(connect_blocking(where));
    for (int i = 0; i < 150; ++i) {
      const std::string msg = std::to_string(i) + "\n";
      EXPECT_EQ(::send(clients[static_cast<std::size_t>(i)], msg.data(), msg.size(), 0),
                static_cast<ssize_t>(msg.size()));
    }
    co_await corio::sleep(1s);
    int served = 0;
    for (int i = 0; i < 150; ++i) {
      const int fd = clients[static_cast<std::size_t>(i)];
      std::string got;
      std::array<char, 16> buf{};
      for (int tries = 0; tries < 100 && got.find('\n') == std::string::npos; ++tries) {
        auto n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n > 0)
          got.append(buf.data(), static_cast<std::size_t>(n));
        else
          co_await corio::sleep(10ms);
      }
      served += got == std::to_string(i) + "\n";
      ::close(fd);
    }
    EXPECT_EQ(served, 150);
    srv.close();
    co_await srv.wait_closed();
  });
}

// A connect that cannot complete (the listener's queue is full, so the SYN is dropped) is cancelled by a
// timeout: nothing is left waiting, and the socket closes cleanly.
TEST_P(Conformance, ACancelledConnectLeavesNothingBehind) {
  corio::testing::leak_check leaks;
  run([]() -> task<> {
    corio::socket listener = corio::listen_on(corio::address::loopback_ipv4(0), 0);
    const corio::address where = listener.local_address();
    const int first = connect_blocking(where); // fills the queue of a backlog of 0
    corio::socket s = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
    EXPECT_THROW(co_await corio::wait_for(corio::sock_connect(s, where), 5s), corio::timeout_error);
    EXPECT_EQ(event_loop::current()->io_waiter_count(), 0u);
    s.close();
    corio::accepted a = co_await corio::wait_for(corio::sock_accept(listener), 10s);
    EXPECT_EQ(a.peer.port(), local_port(first));
    ::close(first);
    // A connect that completes, and one refused, through the same path.
    corio::socket ok = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
    co_await corio::sock_connect(ok, where);
    corio::accepted b = co_await corio::wait_for(corio::sock_accept(listener), 10s);
    EXPECT_EQ(b.peer.port(), ok.local_address().port());
    listener.close();
    corio::socket refused = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
    try {
      co_await corio::sock_connect(refused, where);
      ADD_FAILURE() << "connected to a closed port";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNREFUSED) << e.what();
    }
  });
}

// Closing a listener while a task accepts on it, or a socket while a task connects it: the task wakes with
// EBADF ("socket closed"), and the port of the listener is free at once (no accept left holding it).
TEST_P(Conformance, ClosingASocketWakesItsAcceptorAndItsConnectorWithAClearError) {
  corio::testing::leak_check leaks;
  run([]() -> task<> {
    auto expect_closed = [](const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
      EXPECT_NE(std::string(e.what()).find("socket closed"), std::string::npos) << e.what();
    };
    corio::socket listener = corio::listen_on(corio::address::loopback_ipv4(0), 0);
    const corio::address where = listener.local_address();
    auto acceptor = corio::spawn([](corio::socket& l, auto check) -> task<> {
      try {
        (void)co_await corio::sock_accept(l);
        ADD_FAILURE() << "no error";
      } catch (const std::system_error& e) {
        check(e);
      }
    }(listener, expect_closed));
    co_await corio::sleep(1s);
    listener.close();
    co_await acceptor;
    corio::socket again = corio::listen_on(where, 0); // the port is free
    const int first = connect_blocking(where);        // fills the queue of a backlog of 0
    corio::socket s = corio::socket::open(corio::address_family::ipv4, corio::socket_type::stream);
    auto connector = corio::spawn([](corio::socket& sock, corio::address to, auto check) -> task<> {
      try {
        co_await corio::sock_connect(sock, to);
        ADD_FAILURE() << "no error";
      } catch (const std::system_error& e) {
        check(e);
      }
    }(s, where, expect_closed));
    co_await corio::sleep(1s);
    s.close();
    co_await connector;
    ::close(first);
    EXPECT_EQ(event_loop::current()->io_waiter_count(), 0u);
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, Conformance, ::testing::Values(backend_kind::epoll, backend_kind::io_uring),
                         [](const auto& info) { return info.param == backend_kind::epoll ? "epoll" : "io_uring"; });

// The stream scenarios again with io_uring's multishot recvs, which are off by default (one-shot recvs
// measured faster: docs/design.md) and turned on with CORIO_URING_MULTISHOT_RECV=1.
class KeptRecv : public ::testing::Test {
protected:
  void SetUp() override {
    if (!uring_available())
      GTEST_SKIP() << "io_uring unavailable here";
  }
  template <class F> void run(F body) {
    env_var multishot("CORIO_URING_MULTISHOT_RECV", "1");
    corio::testing::mock_clock clock;
    bool kept = false;
    corio::run(
        [](F body, bool& kept) -> task<> {
          co_await body();
          kept = kept_recvs();
        }(body, kept),
        {.clock = &clock, .backend = backend_kind::io_uring});
    if (!kept)
      GTEST_SKIP() << "the kernel refused multishot recv; the scenario ran with one-shot recvs";
  }
};

TEST_F(KeptRecv, ALargeTransferThroughStreamsArrivesIntact) {
  corio::testing::leak_check leaks;
  run(large_transfer_through_streams);
}

TEST_F(KeptRecv, BytesArrivingBetweenStreamReadsAreReadInOrder) {
  corio::testing::leak_check leaks;
  run(bytes_arriving_between_stream_reads);
}

TEST_F(KeptRecv, ASlowStreamReaderBoundsWhatIsReceivedForItAndLosesNothing) {
  corio::testing::leak_check leaks;
  run(slow_stream_reader);
}

} // namespace
