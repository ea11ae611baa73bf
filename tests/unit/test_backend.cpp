// Choosing the I/O backend (options, CORIO_BACKEND, auto's fallback) and a conformance check that runs
// the same readiness scenarios on epoll and io_uring. (scripts/test also runs the whole suite on each.)
#include "leak_check.hpp"
#include <chrono>
#include <corio/io.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/testing/mock_clock.hpp>
#include <corio/timeout.hpp>
#include <cstddef>
#include <cstdlib>
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

/// Sets CORIO_BACKEND for one scope.
class env_backend {
public:
  explicit env_backend(const char* value) {
    if (const char* old = std::getenv("CORIO_BACKEND"))
      old_ = old, had_ = true;
    ::setenv("CORIO_BACKEND", value, 1);
  }
  ~env_backend() {
    if (had_)
      ::setenv("CORIO_BACKEND", old_.c_str(), 1);
    else
      ::unsetenv("CORIO_BACKEND");
  }

private:
  std::string old_;
  bool had_ = false;
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

INSTANTIATE_TEST_SUITE_P(Backends, Conformance, ::testing::Values(backend_kind::epoll, backend_kind::io_uring),
                         [](const auto& info) { return info.param == backend_kind::epoll ? "epoll" : "io_uring"; });

} // namespace
