// corio::process: create_subprocess_exec / _shell, pipes as streams, wait, communicate, signals, errors,
// reaping (pidfd and the SIGCHLD fallback), loop close. Every test checks that no child (running or
// zombie), fd, frame, task, timer or fd waiter is left.
#include <corio/gather.hpp>
#include <corio/net/pipe.hpp>
#include <corio/process.hpp>
#include <corio/run.hpp>
#include <corio/runtime.hpp>
#include <corio/signals.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/timeout.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "leak_check.hpp"
#include "loop_fixture.hpp"
#include "net_helpers.hpp"

using namespace std::chrono_literals;
using corio::process;
using corio::process_options;
using corio::task;
using corio::testing::expect_only_main_task;
using corio::testing::run_mock;
namespace stdio = corio::stdio;

namespace {

/// True when this process has no child at all, running or zombie (WNOWAIT: nothing is reaped here).
bool no_children() {
  siginfo_t info{};
  return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD;
}

/// True while `pid` is a child of ours that nobody reaped yet (running or zombie).
bool unreaped(int pid) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (i * 31 + i / 251) % 26);
  return s;
}

/// How many of this process's fds are of an anonymous-inode kind: "[pidfd]", "[signalfd]".
int anon_fds(const std::string& kind) {
  int n = 0;
  for (int fd = 0; fd < 1024; ++fd) {
    char target[64] = {};
    std::string link = "/proc/self/fd/" + std::to_string(fd);
    if (::readlink(link.c_str(), target, sizeof target - 1) > 0 && std::string(target) == "anon_inode:" + kind)
      ++n;
  }
  return n;
}

/// CORIO_NO_PIDFD=1: every child is watched through SIGCHLD, whatever process_options::use_pidfd says.
bool pidfd_forced_off() {
  const char* no = ::getenv("CORIO_NO_PIDFD");
  return no != nullptr && std::string(no) == "1";
}

process_options piped(bool use_pidfd = true) {
  return {.stdin_ = stdio::pipe, .stdout_ = stdio::pipe, .stderr_ = stdio::pipe, .use_pidfd = use_pidfd};
}

/// Each test: nothing leaked (frames, fds) and no child left, running or zombie.
class Process : public ::testing::TestWithParam<bool> {
protected:
  bool pidfd() const { return GetParam(); }
  corio::testing::leak_check leaks_;
  ~Process() override { EXPECT_TRUE(no_children()) << "a child process was left (running or zombie)"; }
};

// Every test runs twice: with a pidfd per child, and with the SIGCHLD fallback.
INSTANTIATE_TEST_SUITE_P(Watchers, Process, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "pidfd" : "sigchld"; });

TEST_P(Process, CatRoundTrip) {
  run_mock([this](auto*) -> task<> {
    auto start_p = corio::create_subprocess_exec("/bin/cat", {}, piped(pidfd()));
    process p = co_await start_p;
    EXPECT_GT(p.pid(), 0);
    EXPECT_EQ(p.stdout_.limit(), 64u * 1024);
    EXPECT_FALSE(p.returncode());
    p.stdin_.write("hello\n");
    EXPECT_EQ(co_await p.stdout_.readline(), "hello\n");
    p.stdin_.writelines({"a", "b", "c\n"});
    co_await p.stdin_.drain();
    EXPECT_EQ(co_await p.stdout_.readline(), "abc\n");
    p.stdin_.write_eof(); // a pipe's write_eof closes it: cat sees end of file
    EXPECT_EQ(co_await p.stdout_.read(), "");
    EXPECT_TRUE(p.stdout_.at_eof());
    EXPECT_EQ(co_await p.wait(), 0);
    EXPECT_EQ(p.returncode(), 0);
    EXPECT_EQ(co_await p.wait(), 0); // again: at once
    co_await p.stdin_.wait_closed();
    expect_only_main_task();
  });
}

TEST_P(Process, WatchedByAPidfdOrBySigchld) {
  if (pidfd() && pidfd_forced_off())
    GTEST_SKIP() << "CORIO_NO_PIDFD=1 forces the SIGCHLD watcher";
  run_mock([this](auto*) -> task<> {
    const int pidfds = anon_fds("[pidfd]"), signalfds = anon_fds("[signalfd]");
    std::vector<std::string> args{"30"};
    auto start = corio::create_subprocess_exec("sleep", std::move(args), {.use_pidfd = pidfd()});
    process p = co_await start;
    EXPECT_EQ(anon_fds("[pidfd]"), pidfds + (pidfd() ? 1 : 0));
    EXPECT_EQ(anon_fds("[signalfd]"), signalfds + (pidfd() ? 0 : 1));
    EXPECT_EQ(corio::event_loop::current()->io_waiter_count(), 1u); // the pidfd, or the signalfd
    p.kill();
    EXPECT_EQ(co_await p.wait(), -SIGKILL);
    EXPECT_EQ(anon_fds("[pidfd]"), pidfds);
    EXPECT_EQ(anon_fds("[signalfd]"), signalfds); // the SIGCHLD handler went with the last child
    expect_only_main_task();
  });
}

/// What `program` writes to its stdout (piped), run with `args` and `o` until it exits.
task<std::string> stdout_of(std::string program, std::vector<std::string> args, process_options o) {
  o.stdout_ = stdio::pipe;
  auto start = corio::create_subprocess_exec(std::move(program), std::move(args), std::move(o));
  process p = co_await start;
  corio::communicate_result r = co_await p.communicate();
  co_return r.out;
}

/// Starts `program` (no arguments) with `o`, expecting it to fail: the std::system_error's code and
/// what(); {0, ""} if it started (then it is waited for).
task<std::pair<int, std::string>> start_error(std::string program, process_options o) {
  int code = 0;
  std::string what;
  try {
    auto start = corio::create_subprocess_exec(std::move(program), std::vector<std::string>{}, std::move(o));
    process p = co_await start;
    (void)co_await p.wait();
  } catch (const std::system_error& e) {
    code = e.code().value();
    what = e.what();
  }
  co_return std::pair{code, std::move(what)};
}

/// Starts `program` (no arguments) with `o`, expecting it to be refused before it starts: the
/// std::invalid_argument's what(); nothing if it started (then it is waited for).
task<std::optional<std::string>> start_refusal(std::string program, process_options o) {
  std::optional<std::string> what;
  try {
    auto start = corio::create_subprocess_exec(std::move(program), std::vector<std::string>{}, std::move(o));
    process p = co_await start;
    (void)co_await p.wait();
  } catch (const std::invalid_argument& e) {
    what = e.what();
  }
  co_return what;
}

/// The child's "pgrp sid" as /proc/<its pid>/stat says (fields 5 and 6; `sh` has no space in its name).
task<std::string> group_and_session(process_options o) {
  o.stdout_ = stdio::pipe;
  auto start =
      corio::create_subprocess_shell("read -r _ _ _ _ pgrp sid _ < /proc/$$/stat; echo $$ $pgrp $sid", std::move(o));
  process p = co_await start;
  corio::communicate_result r = co_await p.communicate();
  EXPECT_EQ(r.returncode, 0);
  co_return r.out;
}

// start_new_session and process_group (Python's): the child leads a new session, or a new process group
// in ours, or stays in ours; the whole group of a new session is signalled with killpg (grandchildren
// too). A negative group is refused before anything starts; a group that does not exist is EPERM.
TEST_P(Process, SessionsAndProcessGroups) {
  run_mock([this](auto*) -> task<> {
    const std::string ours = std::to_string(::getpgrp()) + " " + std::to_string(::getsid(0));
    auto fields = [](const std::string& line) {
      std::vector<std::string> f;
      std::string cur;
      for (char ch : line) {
        if (ch == ' ' || ch == '\n') {
          if (!cur.empty())
            f.push_back(cur);
          cur.clear();
        } else {
          cur += ch;
        }
      }
      return f;
    };
    // Options named before each co_await: a braced temporary there is destroyed twice (g++ 12, HAZARDS.md §2).
    process_options plain_o{.use_pidfd = pidfd()};
    std::vector<std::string> plain = fields(co_await group_and_session(plain_o));
    EXPECT_EQ(plain.size(), 3u);
    if (plain.size() == 3) {
      EXPECT_EQ(plain[1] + " " + plain[2], ours) << "a plain child left our group or session";
    }
    process_options session_o{.use_pidfd = pidfd(), .start_new_session = true};
    std::vector<std::string> session = fields(co_await group_and_session(session_o));
    EXPECT_EQ(session.size(), 3u);
    if (session.size() == 3) {
      EXPECT_EQ(session[1], session[0]) << "not the leader of its own group";
      EXPECT_EQ(session[2], session[0]) << "not the leader of its own session";
    }
    process_options group_o{.use_pidfd = pidfd(), .process_group = 0};
    std::vector<std::string> group = fields(co_await group_and_session(group_o));
    EXPECT_EQ(group.size(), 3u);
    if (group.size() == 3) {
      EXPECT_EQ(group[1], group[0]) << "not the leader of a new group";
      EXPECT_EQ(group[2], std::to_string(::getsid(0))) << "a new group left our session";
    }

    // killpg reaches a grandchild: the shell waits for its background sleep, both die with the group.
    process_options o{.stdout_ = stdio::pipe, .use_pidfd = pidfd(), .start_new_session = true};
    auto start = corio::create_subprocess_shell("sleep 30 & echo $!; wait", std::move(o));
    process p = co_await start;
    const std::string grandchild = co_await p.stdout_.readline();
    EXPECT_FALSE(grandchild.empty());
    EXPECT_EQ(::killpg(p.pid(), SIGKILL), 0);
    EXPECT_EQ(co_await p.wait(), -SIGKILL);
    const int gpid = grandchild.empty() ? -1 : std::stoi(grandchild);
    bool gone = false;
    for (int i = 0; i < 500 && !gone; ++i) { // reparented and reaped by init (or a subreaper), or a zombie
      char state = '?';
      if (std::FILE* f = std::fopen(("/proc/" + std::to_string(gpid) + "/stat").c_str(), "r")) {
        (void)std::fscanf(f, "%*d %*s %c", &state);
        std::fclose(f);
      }
      gone = state == '?' || state == 'Z';
      if (!gone) // real time: the kernel's work, which a mock clock's sleep would not wait for
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_TRUE(gone) << "killpg did not reach the grandchild " << gpid;

    process_options negative{.process_group = -3}; // named: g++ 12 (HAZARDS.md 2)
    EXPECT_TRUE(co_await start_refusal("true", std::move(negative)));
    process_options missing{.process_group = 999999};
    auto [code, what] = co_await start_error("true", std::move(missing));
    EXPECT_EQ(code, EPERM) << what;
    expect_only_main_task();
  });
}

// execve, chdir and getpwnam take C strings: a NUL byte in the program, an argument, the cwd or a user
// or group name would silently cut it short (chdir("/tmp\0/x") goes to /tmp). Refused before anything
// starts, naming what has the NUL (Python: ValueError "embedded null byte").
TEST_P(Process, NulBytesInStringsForTheChildAreRefused) {
  run_mock([this](auto*) -> task<> {
    const std::string nul("\0", 1);
    process_options in_cwd{.cwd = "/tmp" + nul + "/no-such-dir", .use_pidfd = pidfd()};
    EXPECT_EQ(co_await start_refusal("true", std::move(in_cwd)),
              "corio: create_subprocess_exec: cwd \"/tmp\\0/no-such-dir\" contains a NUL byte");
    process_options in_user{.use_pidfd = pidfd(), .user = "nobody" + nul + "x"};
    EXPECT_EQ(co_await start_refusal("true", std::move(in_user)),
              "corio: create_subprocess_exec: user \"nobody\\0x\" contains a NUL byte");
    process_options in_group{.use_pidfd = pidfd(), .group = "root" + nul};
    EXPECT_EQ(co_await start_refusal("true", std::move(in_group)),
              "corio: create_subprocess_exec: group \"root\\0\" contains a NUL byte");
    process_options in_extra{.use_pidfd = pidfd(), .extra_groups = std::vector<corio::user_or_group>{"root" + nul}};
    EXPECT_EQ(co_await start_refusal("true", std::move(in_extra)),
              "corio: create_subprocess_exec: extra_groups \"root\\0\" contains a NUL byte");
    process_options plain{.use_pidfd = pidfd()};
    EXPECT_EQ(co_await start_refusal("tr" + nul + "ue", plain),
              "corio: create_subprocess_exec: the program \"tr\\0ue\" contains a NUL byte");
    std::string what;
    try {
      std::vector<std::string> args{"-c", "exit 0" + nul + "; exit 1"};
      auto start = corio::create_subprocess_exec("sh", std::move(args), plain);
      (void)co_await start;
    } catch (const std::invalid_argument& e) {
      what = e.what();
    }
    EXPECT_EQ(what, "corio: create_subprocess_exec: argument 2 \"exit 0\\0; exit 1\" contains a NUL byte");
    EXPECT_TRUE(no_children());
    expect_only_main_task();
  });
}

// pass_fds (Python's): the child gets exactly those fds of ours, at the same numbers, and no other (an
// fd without close-on-exec is not inherited either); writes to a passed pipe end reach our read end.
// Bad fds are refused before anything starts.
TEST_P(Process, PassFds) {
  run_mock([this](auto*) -> task<> {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    int leaky[2];
    EXPECT_EQ(::pipe(leaky), 0);                      // no close-on-exec: closed in the child all the same
    const int w = ::fcntl(p[1], F_DUPFD_CLOEXEC, 40); // a number above the others
    ::close(p[1]);
    // The shell's fds, listed by a plain command (in a pipeline the shell's own pipe is open as ls looks);
    // dash takes one-digit fds in a redirection only, so the write goes through /proc.
    const std::string script = "ls /proc/$$/fd; echo passed > /proc/$$/fd/" + std::to_string(w);
    process_options o{.stdout_ = stdio::pipe, .use_pidfd = pidfd(), .pass_fds = {w}};
    auto start = corio::create_subprocess_shell(script, std::move(o));
    process child = co_await start;
    corio::communicate_result r = co_await child.communicate();
    EXPECT_EQ(r.returncode, 0);
    EXPECT_EQ(r.out, "0\n1\n2\n" + std::to_string(w) + "\n") << "the child's fds";
    ::close(w); // ours; the child's copy is gone with it
    corio::stream_reader from_child = corio::open_pipe_reader(p[0]);
    EXPECT_EQ(co_await from_child.read(), "passed\n");
    EXPECT_GE(::fcntl(leaky[0], F_GETFD), 0) << "the parent's fd was closed";
    ::close(leaky[0]);
    ::close(leaky[1]);

    process_options low{.pass_fds = {1}}; // named: g++ 12 (HAZARDS.md 2)
    EXPECT_TRUE(co_await start_refusal("true", std::move(low)));
    process_options closed{.pass_fds = {987}};
    auto [code, what] = co_await start_error("true", std::move(closed));
    EXPECT_EQ(code, EBADF) << what;
    expect_only_main_task();
  });
}

TEST_P(Process, StdoutAndStderrSeparately) {
  run_mock([this](auto*) -> task<> {
    auto start_p = corio::create_subprocess_shell("echo out; echo err >&2; exit 4", piped(pidfd()));
    process p = co_await start_p;
    corio::communicate_result r = co_await p.communicate();
    EXPECT_EQ(r.out, "out\n");
    EXPECT_EQ(r.err, "err\n");
    EXPECT_EQ(r.returncode, 4);
    expect_only_main_task();
  });
}

TEST_P(Process, StderrMergedIntoStdout) {
  run_mock([this](auto*) -> task<> {
    auto start_p =
        corio::create_subprocess_shell("echo one; echo two >&2; echo three",
                                       {.stdout_ = stdio::pipe, .stderr_ = stdio::stdout_, .use_pidfd = pidfd()});
    process p = co_await start_p;
    EXPECT_FALSE(p.stdin_.valid());
    EXPECT_FALSE(p.stderr_.valid());
    corio::communicate_result r = co_await p.communicate();
    EXPECT_EQ(r.out, "one\ntwo\nthree\n");
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(r.returncode, 0);
    expect_only_main_task();
  });
}

TEST_P(Process, CommunicateSeveralMiBEachWay) {
  run_mock([this](auto*) -> task<> {
    // tee copies stdin to stdout and to stderr: 6 MiB in, 6 MiB out on each pipe, all at once.
    const std::string input = pattern(6 << 20);
    auto start_p = corio::create_subprocess_shell("tee /dev/stderr", piped(pidfd()));
    process p = co_await start_p;
    corio::communicate_result r = co_await p.communicate(input);
    EXPECT_EQ(r.out.size(), input.size());
    EXPECT_TRUE(r.out == input);
    EXPECT_TRUE(r.err == input);
    EXPECT_EQ(r.returncode, 0);
    expect_only_main_task();
  });
}

TEST_P(Process, ExitCodes) {
  run_mock([this](auto*) -> task<> {
    using case_t = std::pair<const char*, int>;
    for (auto [cmd, code] : {case_t{"exit 3", 3}, case_t{"true", 0}, case_t{"false", 1}, case_t{"exit 255", 255}}) {
      auto start_p = corio::create_subprocess_shell(cmd, {.use_pidfd = pidfd()});
      process p = co_await start_p;
      EXPECT_EQ(co_await p.wait(), code) << cmd;
    }
    auto start_p = corio::create_subprocess_shell("no-such-command-corio 2>/dev/null", {.use_pidfd = pidfd()});
    process p = co_await start_p;
    EXPECT_EQ(co_await p.wait(), 127); // the shell's "not found" is a return code, not an exception
    expect_only_main_task();
  });
}

TEST_P(Process, KilledBySignalGivesMinusTheSignal) {
  run_mock([this](auto*) -> task<> {
    auto start_a = corio::create_subprocess_shell("kill -TERM $$", {.use_pidfd = pidfd()});
    process a = co_await start_a;
    EXPECT_EQ(co_await a.wait(), -SIGTERM);
    auto start_b = corio::create_subprocess_shell("kill -KILL $$", {.use_pidfd = pidfd()});
    process b = co_await start_b;
    EXPECT_EQ(co_await b.wait(), -SIGKILL);
    expect_only_main_task();
  });
}

TEST_P(Process, TerminateKillAndSignalAfterReaping) {
  run_mock([this](auto*) -> task<> {
    std::vector<std::string> a_args{"30"}; // named: a braced list inside co_await (HAZARDS.md §2)
    auto start_a = corio::create_subprocess_exec("sleep", std::move(a_args), {.use_pidfd = pidfd()});
    process a = co_await start_a;
    EXPECT_TRUE(a.terminate());
    EXPECT_EQ(co_await a.wait(), -SIGTERM);
    std::vector<std::string> b_args{"30"}; // named: a braced list inside co_await (HAZARDS.md §2)
    auto start_b = corio::create_subprocess_exec("sleep", std::move(b_args), {.use_pidfd = pidfd()});
    process b = co_await start_b;
    EXPECT_TRUE(b.send_signal(0)); // signal 0: "is it there"
    EXPECT_TRUE(b.kill());
    EXPECT_EQ(co_await b.wait(), -SIGKILL);
    // Reaped: the pid may be reused, so nothing is sent (Popen.send_signal's rule).
    EXPECT_FALSE(b.kill());
    EXPECT_FALSE(b.send_signal(SIGTERM));
    std::vector<std::string> c_args{"30"}; // named: a braced list inside co_await (HAZARDS.md §2)
    auto start_c = corio::create_subprocess_exec("sleep", std::move(c_args), {.use_pidfd = pidfd()});
    process c = co_await start_c;
    bool invalid = false;
    try {
      (void)c.send_signal(12345);
    } catch (const std::system_error& e) {
      invalid = e.code().value() == EINVAL && std::string(e.what()).find("sleep") != std::string::npos;
    }
    EXPECT_TRUE(invalid);
    c.kill();
    EXPECT_EQ(co_await c.wait(), -SIGKILL);
    expect_only_main_task();
  });
}

TEST_P(Process, ProgramThatCannotStartRaisesNamingIt) {
  run_mock([this](auto*) -> task<> {
    struct bad {
      std::string program;
      std::string cwd;
      int err;
      const char* named;
    };
    for (const bad& b : {bad{"corio-no-such-program", "", ENOENT, "corio-no-such-program"},
                         bad{"/nonexistent/prog", "", ENOENT, "/nonexistent/prog"},
                         bad{"/etc/passwd", "", EACCES, "/etc/passwd"},                    // not executable
                         bad{"/bin/true", "/nonexistent-dir", ENOENT, "/nonexistent-dir"}, // bad cwd
                         bad{"/bin/true", "/etc/passwd", ENOTDIR, "/etc/passwd"}}) {
      int err = 0;
      std::string what;
      try {
        auto start_p = corio::create_subprocess_exec(
            b.program, {}, {.stdin_ = stdio::pipe, .stdout_ = stdio::pipe, .cwd = b.cwd, .use_pidfd = pidfd()});
        process p = co_await start_p;
      } catch (const std::system_error& e) {
        err = e.code().value();
        what = e.what();
      }
      EXPECT_EQ(err, b.err) << what;
      EXPECT_NE(what.find(b.named), std::string::npos) << what;
      EXPECT_TRUE(no_children());
    }
    expect_only_main_task();
  });
}

// process_options::limit = 0 made every readline() on the child's output fail; it is refused before
// the child starts (asyncio: ValueError).
TEST_P(Process, ALimitOfZeroIsRefusedBeforeTheChildStarts) {
  run_mock([this](auto*) -> task<> {
    process_options o;
    o.stdout_ = stdio::pipe;
    o.limit = 0;
    o.use_pidfd = pidfd();
    try {
      auto start_p = corio::create_subprocess_exec("/bin/echo", {"hi"}, std::move(o));
      process p = co_await start_p;
      ADD_FAILURE() << "started";
      (void)co_await p.wait();
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("process_options::limit must be positive"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(no_children());
    expect_only_main_task();
  });
}

TEST_P(Process, EnvironmentAndWorkingDirectory) {
  run_mock([this](auto*) -> task<> {
    ::setenv("CORIO_TEST_INHERITED", "yes", 1);
    // Options with lists in them are named first: a braced list inside co_await (HAZARDS.md §2).
    process_options extra{.stdout_ = stdio::pipe, .cwd = "/tmp", .use_pidfd = pidfd()};
    extra.extra_env["CORIO_TEST_EXTRA"] = "added";
    auto start_a =
        corio::create_subprocess_shell("echo \"$CORIO_TEST_INHERITED $CORIO_TEST_EXTRA\"; pwd", std::move(extra));
    process a = co_await start_a;
    corio::communicate_result r = co_await a.communicate();
    EXPECT_EQ(r.out, "yes added\n/tmp\n");
    // env replaces everything (no PATH either: the program is given with its path).
    process_options only{.stdout_ = stdio::pipe, .env = corio::environment{{"ONLY", "1"}}, .use_pidfd = pidfd()};
    only.extra_env["TWO"] = "2";
    auto start_b = corio::create_subprocess_exec("/usr/bin/env", {}, std::move(only));
    process b = co_await start_b;
    r = co_await b.communicate();
    EXPECT_EQ(r.out, "ONLY=1\nTWO=2\n");
    ::unsetenv("CORIO_TEST_INHERITED");
    expect_only_main_task();
  });
}

TEST_P(Process, ChildThatExitsEarlyGivesEpipeOnItsStdinOnly) {
  run_mock([this](auto*) -> task<> {
    auto start_p = corio::create_subprocess_shell("echo bye", piped(pidfd()));
    process p = co_await start_p;
    EXPECT_EQ(co_await p.stdout_.read(), "bye\n");
    EXPECT_EQ(co_await p.wait(), 0);
    int err = 0;
    std::string what;
    try {
      p.stdin_.write(pattern(1 << 20)); // nobody reads: EPIPE at once (or at the flush), never SIGPIPE
      co_await p.stdin_.drain();
    } catch (const std::system_error& e) {
      err = e.code().value();
      what = e.what();
    }
    EXPECT_EQ(err, EPIPE);
    EXPECT_NE(what.find("stdin of /bin/sh (pid " + std::to_string(p.pid()) + ")"), std::string::npos) << what;
    sigset_t pending;
    ::sigpending(&pending);
    EXPECT_EQ(::sigismember(&pending, SIGPIPE), 0); // the write's SIGPIPE was taken back
    sigset_t mask;
    ::pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    EXPECT_EQ(::sigismember(&mask, SIGPIPE), 0); // and the mask restored
    EXPECT_EQ(co_await p.stdout_.read(), "");    // the other streams are fine
    p.stdin_.close();
    co_await p.stdin_.wait_closed();
    expect_only_main_task();
  });
}

TEST_P(Process, CommunicateIgnoresAChildThatDoesNotReadItsInput) {
  run_mock([this](auto*) -> task<> {
    // Exits at once without reading; then one that reads 10 bytes of 4 MiB.
    auto start_a = corio::create_subprocess_shell("exit 2", piped(pidfd()));
    process a = co_await start_a;
    corio::communicate_result r = co_await a.communicate(pattern(4 << 20));
    EXPECT_EQ(r.returncode, 2);
    std::vector<std::string> b_args{"-c", "10"}; // named: a braced list inside co_await (HAZARDS.md §2)
    auto start_b = corio::create_subprocess_exec("head", std::move(b_args), piped(pidfd()));
    process b = co_await start_b;
    r = co_await b.communicate(pattern(4 << 20));
    EXPECT_EQ(r.out, pattern(10));
    EXPECT_EQ(r.returncode, 0);
    expect_only_main_task();
  });
}

TEST_P(Process, WaitCancelledByATimeoutLeavesTheChildRunning) {
  run_mock([this](auto*) -> task<> {
    std::vector<std::string> p_args{"5"}; // named: a braced list inside co_await (HAZARDS.md §2)
    auto start_p = corio::create_subprocess_exec("sleep", std::move(p_args), {.use_pidfd = pidfd()});
    process p = co_await start_p;
    bool timed_out = false;
    try {
      (void)co_await corio::wait_for(p.wait(), 1s); // virtual time: the timer fires first, every time
    } catch (const corio::timeout_error&) {
      timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    EXPECT_FALSE(p.returncode());
    EXPECT_TRUE(unreaped(p.pid()));
    // Two waiters at once; one cancelled, the other gets the code.
    auto first = corio::spawn(p.wait());
    auto second = corio::spawn(p.wait());
    co_await corio::sleep(1ms);
    first.cancel();
    EXPECT_TRUE(co_await corio::testing::was_cancelled(first));
    EXPECT_TRUE(p.kill());
    EXPECT_EQ(co_await second, -SIGKILL);
    expect_only_main_task();
  });
}

TEST_P(Process, CommunicateCancelledLeavesTheChildRunning) {
  run_mock([this](auto*) -> task<> {
    auto start_p = corio::create_subprocess_shell("echo started; exec sleep 30", piped(pidfd()));
    process p = co_await start_p;
    bool timed_out = false;
    try {
      (void)co_await corio::wait_for(p.communicate("input"), 1s);
    } catch (const corio::timeout_error&) {
      timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    EXPECT_TRUE(unreaped(p.pid()));
    EXPECT_TRUE(p.kill());
    EXPECT_EQ(co_await p.wait(), -SIGKILL);
    co_await p.stdin_.wait_closed();
    expect_only_main_task();
  });
}

TEST_P(Process, ManyAtOnce) {
  run_mock([this](auto*) -> task<> {
    auto one = [](int i, bool use_pidfd) -> task<int> {
      auto start_p = corio::create_subprocess_shell("exit " + std::to_string(i % 7), {.use_pidfd = use_pidfd});
      process p = co_await start_p;
      co_return co_await p.wait();
    };
    std::vector<task<int>> all;
    for (int i = 0; i < 50; ++i)
      all.push_back(one(i, pidfd()));
    std::vector<int> codes = co_await corio::gather(std::move(all));
    for (int i = 0; i < 50; ++i)
      EXPECT_EQ(codes[static_cast<std::size_t>(i)], i % 7);
    expect_only_main_task();
  });
}

TEST_P(Process, DroppedProcessIsStillReaped) {
  // Real time: nothing waits for the child, so only a bounded poll can see the loop reap it.
  corio::run([this]() -> task<> {
    int pid = 0;
    {
      auto start_p = corio::create_subprocess_exec("true", {}, {.use_pidfd = pidfd()});
      process p = co_await start_p;
      pid = p.pid();
    }
    for (int i = 0; i < 5000 && unreaped(pid); ++i)
      co_await corio::sleep(1ms);
    EXPECT_FALSE(unreaped(pid));
    // (Not expect_only_main_task(): with a real clock, run() watches SIGINT through a signalfd.)
    EXPECT_EQ(corio::event_loop::current()->task_count(), 1u);
    EXPECT_EQ(corio::event_loop::current()->timer_count(), 0u);
  }());
}

TEST_P(Process, LoopCloseHandsRunningChildrenToABackgroundReaper) {
  int pid = 0;
  process kept;
  run_mock([&](auto*) -> task<> {
    std::vector<std::string> p_args{"30"}; // named: a braced list inside co_await (HAZARDS.md §2)
    auto start_p = corio::create_subprocess_exec("sleep", std::move(p_args), {.use_pidfd = pidfd()});
    process p = co_await start_p;
    pid = p.pid();
    kept = std::move(p);
  });
  // The loop is closed; the child runs on, not killed, and is reaped when it ends.
  EXPECT_TRUE(unreaped(pid));
  EXPECT_FALSE(kept.returncode());
  bool refused = false;
  try {
    (void)kept.kill();
  } catch (const corio::loop_error&) {
    refused = true;
  }
  EXPECT_TRUE(refused);
  ASSERT_EQ(::kill(pid, SIGKILL), 0); // safe: not reaped, so the pid is still the child's
  for (int i = 0; i < 5000 && unreaped(pid); ++i)
    std::this_thread::sleep_for(1ms);
  EXPECT_FALSE(unreaped(pid));
}

TEST_P(Process, AChildReapedElsewhereGets255) {
  if (pidfd() && pidfd_forced_off())
    GTEST_SKIP() << "CORIO_NO_PIDFD=1 forces the SIGCHLD watcher";
  // SIGCHLD ignored: the kernel reaps children itself, so the status is lost (asyncio reports 255).
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGCHLD, &ignore, &old);
  struct restore {
    struct sigaction* old;
    ~restore() { ::sigaction(SIGCHLD, old, nullptr); } // also when the body fails: later tests need it
  } guard{&old};
  run_mock([this](auto*) -> task<> {
    auto start = corio::create_subprocess_shell("exit 3", {.use_pidfd = pidfd()});
    if (pidfd()) {
      process p = co_await start;
      EXPECT_EQ(co_await p.wait(), 255);
    } else {
      // No SIGCHLD is sent at all then: the fallback cannot see the exit, and says so (the child it
      // started is killed; the kernel reaps it).
      int err = 0;
      try {
        process p = co_await start;
      } catch (const std::system_error& e) {
        err = e.code().value();
      }
      EXPECT_EQ(err, ECHILD);
    }
    expect_only_main_task();
  });
}

TEST_P(Process, CommunicateOutlivesTheProcessObjectItWasCalledOn) {
  // communicate() runs on: the process object it was called on may be moved (a vector that grows) and
  // destroyed meanwhile. cat reads a pipe of the test's own, so communicate() waits until it is closed.
  run_mock([this](auto*) -> task<> {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    auto start_p = corio::create_subprocess_exec(
        "cat", {}, {.stdin_ = stdio::fd(fds[0]), .stdout_ = stdio::pipe, .use_pidfd = pidfd()});
    std::vector<process> ps;
    ps.push_back(co_await start_p);
    ::close(fds[0]);
    auto h = corio::spawn(ps[0].communicate());
    for (int i = 0; i < 3; ++i)
      co_await corio::sleep(0s);   // communicate() reads cat's stdout now
    ps.reserve(ps.capacity() + 8); // ps[0] moves; the object communicate() was called on is destroyed
    EXPECT_EQ(::write(fds[1], "hi\n", 3), 3);
    ::close(fds[1]); // cat ends
    std::string out, error;
    int code = -1;
    try {
      corio::communicate_result r = co_await h;
      out = r.out;
      code = r.returncode;
    } catch (const std::exception& e) {
      error = e.what();
    }
    EXPECT_EQ(error, "");
    EXPECT_EQ(out, "hi\n");
    EXPECT_EQ(code, 0);
    EXPECT_EQ(ps[0].returncode(), 0);
    expect_only_main_task();
  });
}

TEST_P(Process, StreamsAndRedirections) {
  run_mock([this](auto*) -> task<> {
    // stdin from /dev/null; stdout into a pipe of the test's own (an fd); stderr to /dev/null.
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    auto start_p = corio::create_subprocess_shell(
        "cat; echo to-fd; echo hidden >&2",
        {.stdin_ = stdio::devnull, .stdout_ = stdio::fd(fds[1]), .stderr_ = stdio::devnull, .use_pidfd = pidfd()});
    process p = co_await start_p;
    EXPECT_FALSE(p.stdin_.valid());
    EXPECT_FALSE(p.stdout_.valid());
    EXPECT_EQ(co_await p.wait(), 0);
    EXPECT_EQ(::fcntl(fds[1], F_GETFD), FD_CLOEXEC); // still the caller's
    ::close(fds[1]);
    char buf[64];
    auto n = ::read(fds[0], buf, sizeof buf);
    EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "to-fd\n");
    ::close(fds[0]);
    // stderr to the caller's fd 1 while stdout goes elsewhere: the child's stderr must be what fd 1 was
    // (a duplicate is taken before the child's fd 1 is replaced). The test's fd 1 is a pipe meanwhile.
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    const int saved = ::dup(1);
    ::dup2(fds[1], 1);
    auto start_q = corio::create_subprocess_shell(
        "echo visible >&2; echo hidden", {.stdout_ = stdio::devnull, .stderr_ = stdio::fd(1), .use_pidfd = pidfd()});
    process q = co_await start_q;
    ::dup2(saved, 1);
    ::close(saved);
    ::close(fds[1]);
    EXPECT_EQ(co_await q.wait(), 0);
    n = ::read(fds[0], buf, sizeof buf);
    EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "visible\n");
    ::close(fds[0]);
    expect_only_main_task();
  });
}

TEST_P(Process, ChildGetsOnlyItsStandardFdsAndAnEmptySignalMask) {
  run_mock([this](auto*) -> task<> {
    int leaky = ::fcntl(2, F_DUPFD, 50);                                      // not close-on-exec
    corio::add_signal_handler(*corio::event_loop::current(), SIGUSR1, [] {}); // blocks SIGUSR1 here
    // Run directly (a shell may block signals itself while it waits).
    std::vector<std::string> test_args{"-e", "/proc/self/fd/" + std::to_string(leaky)};
    auto start_t = corio::create_subprocess_exec("test", std::move(test_args), {.use_pidfd = pidfd()});
    process t = co_await start_t;
    EXPECT_EQ(co_await t.wait(), 1); // the fd is not there
    std::vector<std::string> grep_args{"SigBlk", "/proc/self/status"};
    auto start_g =
        corio::create_subprocess_exec("grep", std::move(grep_args), {.stdout_ = stdio::pipe, .use_pidfd = pidfd()});
    process g = co_await start_g;
    corio::communicate_result r = co_await g.communicate();
    EXPECT_EQ(r.out, "SigBlk:\t0000000000000000\n");
    corio::remove_signal_handler(*corio::event_loop::current(), SIGUSR1);
    ::close(leaky);
    expect_only_main_task();
  });
}

// umask, user, group and extra_groups (Python's subprocess options) are not posix_spawn's: the child is
// forked and set up by hand. Everything else holds there too: the fds, the working directory, the
// environment, the signal mask.
TEST_P(Process, UmaskAndTheForkedChildsSetUp) {
  run_mock([this](auto*) -> task<> {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    const int w = ::fcntl(p[1], F_DUPFD_CLOEXEC, 40);
    ::close(p[1]);
    const int leaky = ::fcntl(2, F_DUPFD, w + 1); // not close-on-exec, and next to w: closed in the child
    corio::add_signal_handler(*corio::event_loop::current(), SIGUSR1, [] {}); // blocks SIGUSR1 here
    const std::string script = "umask; pwd; echo $GREETING; ls /proc/$$/fd; "
                               "echo passed > /proc/$$/fd/" +
                               std::to_string(w) + "; echo err >&2; read line; echo $line";
    process_options o{.stdin_ = stdio::pipe,
                      .stdout_ = stdio::pipe,
                      .stderr_ = stdio::stdout_,
                      .cwd = "/tmp",
                      .extra_env = {{"GREETING", "hi"}},
                      .use_pidfd = pidfd(),
                      .pass_fds = {w},
                      .umask = 027};
    auto start = corio::create_subprocess_shell(script, std::move(o));
    process child = co_await start;
    corio::communicate_result r = co_await child.communicate("typed\n");
    EXPECT_EQ(r.returncode, 0);
    EXPECT_EQ(r.out, "0027\n/tmp\nhi\n0\n1\n2\n" + std::to_string(w) + "\nerr\ntyped\n");
    ::close(w);
    corio::stream_reader from_child = corio::open_pipe_reader(p[0]);
    EXPECT_EQ(co_await from_child.read(), "passed\n");
    // The signal mask, read by the child itself (a shell blocks signals around its own forks).
    std::vector<std::string> grep_args{"SigBlk", "/proc/self/status"};
    process_options grep_options{.use_pidfd = pidfd(), .umask = 022};
    EXPECT_EQ(co_await stdout_of("grep", std::move(grep_args), std::move(grep_options)), "SigBlk:\t0000000000000000\n");
    corio::remove_signal_handler(*corio::event_loop::current(), SIGUSR1);
    ::close(leaky);

    // A step that fails in the child raises, naming it, and leaves no child behind.
    process_options no_dir{.cwd = "/no/such/dir", .umask = 022}; // named: g++ 12 (HAZARDS.md 2)
    auto [code, what] = co_await start_error("true", std::move(no_dir));
    EXPECT_EQ(code, ENOENT);
    EXPECT_NE(what.find("in cwd '/no/such/dir'"), std::string::npos) << what;
    process_options with_umask{.umask = 022};
    auto [exec_code, exec_what] = co_await start_error("/", std::move(with_umask)); // exec fails
    EXPECT_EQ(exec_code, EACCES);
    EXPECT_NE(exec_what.find("cannot run '/'"), std::string::npos) << exec_what;
    process_options too_wide{.umask = 01000};
    EXPECT_EQ(co_await start_refusal("true", std::move(too_wide)),
              "corio: create_subprocess_exec: umask 01000 is above 0777"); // octal, as the bound
    expect_only_main_task();
  });
}

TEST_P(Process, UserGroupAndExtraGroups) {
  run_mock([this](auto*) -> task<> {
    const bool root = ::geteuid() == 0;
    std::vector<std::string> args{"-c", "id -u; id -g; id -G"};
    process_options o{.stdout_ = stdio::pipe,
                      .use_pidfd = pidfd(),
                      .user = "nobody",
                      .group = 65534,
                      .extra_groups = std::vector<corio::user_or_group>{1, "daemon", 2u}};
    int code = 0;
    std::string what;
    std::optional<corio::communicate_result> r;
    try {
      auto start = corio::create_subprocess_exec("/bin/sh", std::move(args), std::move(o));
      process child = co_await start;
      r = co_await child.communicate();
    } catch (const std::system_error& e) {
      code = e.code().value();
      what = e.what();
    }
    if (root) {
      EXPECT_EQ(code, 0) << what;
      if (r) {
        EXPECT_EQ(r->returncode, 0);
        EXPECT_EQ(r->out, "65534\n65534\n65534 1 2\n"); // daemon is group 1 on Debian
      }
    } else { // without the privilege: EPERM, naming what could not be set
      EXPECT_EQ(code, EPERM);
      EXPECT_NE(what.find("extra_groups"), std::string::npos) << what;
    }
    // user alone changes neither the group nor the supplementary groups (as in Python)
    if (root) {
      std::vector<std::string> id_args{"-c", "id -u; id -g"};
      process_options only_user{.use_pidfd = pidfd(), .user = 65534};
      EXPECT_EQ(co_await stdout_of("/bin/sh", std::move(id_args), std::move(only_user)), "65534\n0\n");
    }
    // Names that do not exist and negative ids are refused before anything starts.
    for (int k = 0; k < 4; ++k) {
      process_options bad{.use_pidfd = pidfd()};
      if (k == 0)
        bad.user = "no-such-user-corio";
      else if (k == 1)
        bad.group = "no-such-group-corio";
      else if (k == 2)
        bad.extra_groups = std::vector<corio::user_or_group>{"no-such-group-corio"};
      else
        bad.user = -5;
      std::optional<std::string> refusal = co_await start_refusal("true", std::move(bad));
      const std::string message = refusal.value_or("");
      EXPECT_NE(message.find(k == 3 ? "-5" : "no-such-"), std::string::npos) << k << ": " << message;
    }
    expect_only_main_task();
  });
}

TEST_P(Process, BadArguments) {
  run_mock([this](auto*) -> task<> {
    int caught = 0;
    try {
      auto start = corio::create_subprocess_exec("/bin/true", {}, {.stdout_ = stdio::stdout_});
      (void)co_await start;
    } catch (const std::invalid_argument&) {
      ++caught;
    }
    try {
      auto start = corio::create_subprocess_exec("/bin/true", {}, {.stdin_ = stdio::fd(-1)});
      (void)co_await start;
    } catch (const std::system_error& e) {
      caught += e.code().value() == EBADF;
    }
    try {
      auto start = corio::create_subprocess_exec("", {});
      (void)co_await start;
    } catch (const std::invalid_argument&) {
      ++caught;
    }
    try {
      process_options bad_name;
      bad_name.extra_env["A=B"] = "1";
      auto start = corio::create_subprocess_exec("/bin/true", {}, std::move(bad_name));
      (void)co_await start;
    } catch (const std::invalid_argument&) {
      ++caught;
    }
    auto start_p = corio::create_subprocess_exec("/bin/true", {}, {.use_pidfd = pidfd()});
    process p = co_await start_p;
    try {
      (void)co_await p.communicate("input without a pipe");
    } catch (const corio::invalid_state_error&) {
      ++caught;
    }
    EXPECT_EQ(co_await p.wait(), 0);
    EXPECT_EQ(caught, 5);
    EXPECT_TRUE(no_children());
    expect_only_main_task();
  });
}

TEST(ProcessShuffled, NoTestDependsOnTheReadyOrder) {
  corio::testing::leak_check leaks;
  for (std::uint64_t seed : {1u, 7u, 2024u}) {
    run_mock(
        [](auto*) -> task<> {
          const std::string input = pattern(1 << 20);
          std::vector<task<corio::communicate_result>> all;
          auto one = [](std::string in) -> task<corio::communicate_result> {
            auto start = corio::create_subprocess_shell("tee /dev/stderr", piped());
            process p = co_await start;
            co_return co_await p.communicate(std::move(in));
          };
          for (int i = 0; i < 4; ++i)
            all.push_back(one(input));
          std::vector<corio::communicate_result> results = co_await corio::gather(std::move(all));
          for (const corio::communicate_result& r : results) {
            EXPECT_TRUE(r.out == input);
            EXPECT_TRUE(r.err == input);
            EXPECT_EQ(r.returncode, 0);
          }
          expect_only_main_task();
        },
        seed);
  }
  EXPECT_TRUE(no_children());
}

TEST(ProcessDefaults, CallsWithoutOptionsInsideCoAwait) {
  // The overloads without options or arguments are safe to write inside co_await on g++ 12 (a
  // defaulted `process_options = {}` was destroyed twice there).
  corio::testing::leak_check leaks;
  run_mock([](auto*) -> task<> {
    process a = co_await corio::create_subprocess_exec("/bin/true");
    EXPECT_EQ(co_await a.wait(), 0);
    process b = co_await corio::create_subprocess_shell("exit 5");
    corio::communicate_result r = co_await b.communicate();
    EXPECT_EQ(r.returncode, 5);
    std::vector<std::string> args{"-c", "exit 6"};
    process c = co_await corio::create_subprocess_exec("sh", std::move(args));
    EXPECT_EQ(co_await c.wait(), 6);
    expect_only_main_task();
  });
  EXPECT_TRUE(no_children());
}

constexpr int unseen_exit = -1000;

/// Waits for `p` at most 10 s: its return code, or unseen_exit when its exit went unseen (the child is
/// then reaped when its loop closes).
task<int> wait_bounded(process& p) {
  bool timed_out = false;
  int code = 0;
  try {
    auto deadline = corio::timeout(10s);
    code = co_await p.wait();
  } catch (const corio::timeout_error&) {
    timed_out = true;
  }
  co_return timed_out ? unseen_exit : code;
}

/// Runs `command` with the SIGCHLD fallback: its return code, or unseen_exit.
task<int> run_by_sigchld(std::string command) {
  auto start = corio::create_subprocess_shell(std::move(command), {.use_pidfd = false});
  process p = co_await start;
  co_return co_await wait_bounded(p);
}

/// `cat` watched through SIGCHLD: it runs until its stdin is closed (end_cat), so its loop handles SIGCHLD
/// meanwhile.
task<process> start_cat() {
  auto start = corio::create_subprocess_exec("cat", {}, {.stdin_ = stdio::pipe, .use_pidfd = false});
  co_return co_await start;
}

task<int> end_cat(process& cat) {
  cat.stdin_.close();
  const int code = co_await wait_bounded(cat);
  co_await cat.stdin_.wait_closed();
  co_return code;
}

/// Lets the loop run until another loop sets `flag`; bounded.
task<> until_set(const std::atomic<bool>& flag) {
  for (int i = 0; i < 10000 && !flag.load(); ++i)
    co_await corio::sleep(1ms);
  EXPECT_TRUE(flag.load());
}

/// Runs `n` children one after another with the SIGCHLD fallback, each exiting with k % 5: how many
/// exits were seen (it stops at the first one unseen).
task<int> run_children(int n) {
  int seen = 0;
  for (int k = 0; k < n; ++k) {
    const int code = co_await run_by_sigchld("exit " + std::to_string(k % 5));
    if (code == unseen_exit)
      break;
    EXPECT_EQ(code, k % 5);
    ++seen;
  }
  co_return seen;
}

// Two loops on two threads (run_parallel) watch children through SIGCHLD, which is process-directed:
// whichever loop's signalfd takes it may not be the one whose child exited. Loop 0 keeps a child
// running while loop 1 starts short ones one after another: each exit must reach its own loop.
TEST(ProcessSigchldAcrossLoops, EachLoopSeesItsChildrenExitWhileAnotherLoopWatchesOne) {
  corio::testing::leak_check leaks;
  constexpr int n = 40;
  std::atomic<int> seen{0}, cat_code{unseen_exit};
  std::atomic<bool> cat_started{false}, done{false};
  corio::run_parallel(2, [&](std::size_t i) -> task<> {
    if (i == 0) {
      process cat = co_await start_cat();
      cat_started = true;
      co_await until_set(done);
      cat_code = co_await end_cat(cat);
    } else {
      // After loop 0 handles SIGCHLD: a thread of the process where it is not blocked would take
      // it and drop it (the limit process.hpp states).
      co_await until_set(cat_started);
      seen = co_await run_children(n);
      done = true;
    }
  });
  EXPECT_EQ(seen.load(), n) << "a child's exit went unseen by its loop (wait() timed out)";
  EXPECT_EQ(cat_code.load(), 0);
  EXPECT_TRUE(no_children());
}

// Both loops start short children at the same time, each taking SIGCHLDs meant for the other's.
TEST(ProcessSigchldAcrossLoops, TwoLoopsStartingChildrenAtOnceSeeEveryExit) {
  corio::testing::leak_check leaks;
  constexpr int n = 40;
  std::atomic<int> seen{0}, cats_ended{0};
  std::atomic<bool> started[2] = {false, false}, finished[2] = {false, false};
  corio::run_parallel(2, [&](std::size_t i) -> task<> {
    if (i == 1)
      co_await until_set(started[0]);   // loop 0 (on this thread) blocks SIGCHLD first
    process cat = co_await start_cat(); // each loop handles SIGCHLD from here to the end
    started[i] = true;
    co_await until_set(started[1 - i]);
    seen += co_await run_children(n);
    finished[i] = true;
    co_await until_set(finished[1 - i]);
    cats_ended += co_await end_cat(cat) == 0;
  });
  EXPECT_EQ(seen.load(), 2 * n) << "a child's exit went unseen by its loop (wait() timed out)";
  EXPECT_EQ(cats_ended.load(), 2);
  EXPECT_TRUE(no_children());
}

// Loop 0 (the caller's thread, where SIGCHLD is not blocked) reaps its last child while loop 1 still
// watches one: loop 0 must keep handling SIGCHLD, else its thread could take loop 1's and drop it.
TEST(ProcessSigchldAcrossLoops, ALoopKeepsHandlingSigchldWhileAnotherLoopWatchesChildren) {
  corio::testing::leak_check leaks;
  constexpr int rounds = 20;
  std::atomic<int> seen{0}, cats_ended{0};
  std::atomic<bool> cat_started[rounds] = {}, child_done[rounds] = {};
  corio::run_parallel(2, [&](std::size_t i) -> task<> {
    for (int r = 0; r < rounds; ++r) {
      if (i == 0) {
        co_await until_set(cat_started[r]);
        seen += co_await run_children(1); // loop 0 has no child left after this
        child_done[r] = true;
      } else {
        process cat = co_await start_cat();
        cat_started[r] = true;
        co_await until_set(child_done[r]);
        cats_ended += co_await end_cat(cat) == 0;
      }
    }
  });
  EXPECT_EQ(seen.load(), rounds);
  EXPECT_EQ(cats_ended.load(), rounds) << "loop 1's cat exited unseen";
  EXPECT_TRUE(no_children());
}

TEST(ProcessOutsideALoop, EmptyProcess) {
  corio::testing::leak_check leaks;
  corio::process empty;
  EXPECT_FALSE(empty.valid());
  EXPECT_THROW((void)empty.pid(), corio::invalid_state_error);
  EXPECT_TRUE(no_children());
}

TEST(ProcessOutsideALoop, SigchldHandlerGoesWithTheLoop) {
  corio::testing::leak_check leaks;
  sigset_t before;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &before);
  run_mock([](auto*) -> task<> {
    auto start_p = corio::create_subprocess_exec("/bin/true", {}, {.use_pidfd = false});
    process p = co_await start_p;
    EXPECT_EQ(co_await p.wait(), 0);
  });
  sigset_t after;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &after);
  EXPECT_EQ(::sigismember(&before, SIGCHLD), ::sigismember(&after, SIGCHLD));
  EXPECT_TRUE(no_children());
}

} // namespace
