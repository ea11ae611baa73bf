// subprocess_exec / subprocess_shell with a subprocess_protocol (asyncio's loop.subprocess_exec): the
// order of the callbacks, the pipes as transports, close() and kill, the errors of the callbacks and of
// the start, and the loop closing with a child still running. Every test checks that no child (running
// or zombie), fd, frame or task is left; each runs in order and shuffled, with a pidfd or SIGCHLD.
#include <corio/net/protocol.hpp>
#include <corio/run.hpp>
#include <corio/runner.hpp>
#include <corio/spawn.hpp>
#include <corio/subprocess_protocol.hpp>

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstddef>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "callback_watch.hpp"
#include "leak_check.hpp"
#include "loop_fixture.hpp"
#include "net_helpers.hpp"

using corio::process_options;
using corio::task;
using corio::testing::callback_watch;
using corio::testing::error_code;
using corio::testing::error_text;
using corio::testing::expect_only_main_task;
using corio::testing::pattern;
namespace stdio = corio::stdio;

namespace {

constexpr std::size_t mib = 1 << 20;

bool no_children() {
  siginfo_t info{};
  return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD;
}

/// Records every callback, in order, as a word ("made", "out", "err", "lost0", "exited", "lost"...).
struct recorder : corio::subprocess_protocol {
  explicit recorder(callback_watch* wd) : w(wd) {}
  callback_watch* w;
  corio::subprocess_transport* t = nullptr;
  std::vector<std::string> events;
  std::string out, err;
  std::exception_ptr pipe_error[3];
  std::exception_ptr error;
  int pipes_lost = 0, exited = 0, lost = 0, pauses = 0, resumes = 0;
  std::string throw_on; // pipe_data_received raises when the data contains it
  bool throw_in_made = false;

  void connection_made(corio::subprocess_transport& tr) override {
    t = &tr;
    events.emplace_back("made");
    poke();
    if (throw_in_made)
      throw std::runtime_error("made: boom");
  }
  void pipe_data_received(int fd, std::string_view data) override {
    EXPECT_EQ(lost, 0);
    EXPECT_TRUE(fd == 1 || fd == 2) << fd;
    if (events.empty() || events.back() != (fd == 1 ? "out" : "err"))
      events.emplace_back(fd == 1 ? "out" : "err");
    (fd == 1 ? out : err).append(data);
    poke();
    if (!throw_on.empty() && data.find(throw_on) != std::string_view::npos)
      throw std::runtime_error("pipe: " + throw_on);
  }
  void pipe_connection_lost(int fd, std::exception_ptr e) override {
    EXPECT_EQ(lost, 0);
    events.push_back("lost" + std::to_string(fd));
    if (fd >= 0 && fd < 3)
      pipe_error[fd] = std::move(e);
    ++pipes_lost;
    poke();
  }
  void process_exited() override {
    EXPECT_EQ(lost, 0);
    EXPECT_TRUE(t != nullptr && t->get_returncode().has_value());
    events.emplace_back("exited");
    ++exited;
    poke();
  }
  void connection_lost(std::exception_ptr e) override {
    events.emplace_back("lost");
    error = std::move(e);
    ++lost;
    t = nullptr;
    poke();
  }
  void pause_writing() override {
    ++pauses;
    poke();
  }
  void resume_writing() override {
    ++resumes;
    poke();
  }

  void poke() {
    if (w != nullptr) // none once the test's task is gone (the loop shutting down)
      w->poke();
  }

  /// Where `word` is in events (events.size() when absent).
  [[nodiscard]] std::size_t at(const std::string& word) const {
    std::size_t i = 0;
    while (i < events.size() && events[i] != word)
      ++i;
    return i;
  }
};

template <class F> task<> until(callback_watch* w, F done) {
  while (!done())
    co_await w->next("a subprocess protocol callback");
}

/// Seeds 0 (in order) and 7 (shuffled) × a pidfd per child or the SIGCHLD fallback.
class SubprocessProtocol : public ::testing::TestWithParam<std::tuple<std::uint64_t, bool>> {
protected:
  template <class F> void run(F body) {
    // The SIGCHLD fallback sees the signal only if every thread blocks it (process.hpp): the watchdog
    // thread of callback_watch is made before the first child, so block it here, where it inherits.
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    ::pthread_sigmask(SIG_BLOCK, &chld, &old);
    corio::testing::mock_clock clock;
    const std::uint64_t seed = std::get<0>(GetParam());
    corio::run(body(), {.clock = &clock, .shuffle = seed != 0, .seed = seed});
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  [[nodiscard]] bool pidfd() const { return std::get<1>(GetParam()); }
  process_options piped() const {
    return {.stdin_ = stdio::pipe, .stdout_ = stdio::pipe, .stderr_ = stdio::pipe, .use_pidfd = pidfd()};
  }
  corio::testing::leak_check leaks_;
  ~SubprocessProtocol() override { EXPECT_TRUE(no_children()) << "a child process was left (running or zombie)"; }
};

// stdout and stderr arrive on fds 1 and 2, each pipe ends once, the child's exit is reported with its
// return code, and connection_lost comes last; connection_made comes first, before subprocess_exec returns.
TEST_P(SubprocessProtocol, OutputPipesExitThenConnectionLost) {
  run([this]() -> task<> {
    callback_watch w;
    auto factory = [&w] { return std::make_shared<recorder>(&w); };
    process_options o = piped();
    auto starting = corio::subprocess_shell(factory, "printf out; printf err >&2; exit 3", std::move(o));
    auto made = co_await starting; // named: clang 14 lambdas cannot capture structured bindings
    std::shared_ptr<corio::subprocess_transport> t = made.transport;
    std::shared_ptr<recorder> p = made.protocol;
    EXPECT_EQ(p->events, std::vector<std::string>{"made"});
    EXPECT_EQ(p->t, t.get());
    EXPECT_GT(t->get_pid(), 0);
    EXPECT_EQ(t->get_protocol(), p);
    for (int fd = 0; fd < 3; ++fd)
      EXPECT_NE(t->get_pipe_transport(fd), nullptr) << fd;
    EXPECT_EQ(t->get_pipe_transport(3), nullptr);
    EXPECT_EQ(t->get_pipe_transport(-1), nullptr);
    co_await until(&w, [&] { return p->lost > 0; });
    EXPECT_EQ(p->out, "out");
    EXPECT_EQ(p->err, "err");
    EXPECT_EQ(p->exited, 1);
    EXPECT_EQ(p->lost, 1);
    EXPECT_EQ(p->pipes_lost, 3); // stdin too: the child's end closed when it exited
    EXPECT_EQ(t->get_returncode(), 3);
    EXPECT_EQ(p->error, nullptr);
    for (const std::exception_ptr& e : p->pipe_error)
      EXPECT_EQ(e, nullptr) << error_text(e);
    EXPECT_EQ(p->events.back(), "lost");
    EXPECT_LT(p->at("out"), p->at("lost1"));
    EXPECT_LT(p->at("err"), p->at("lost2"));
    EXPECT_TRUE(t->is_closed());
    EXPECT_EQ(t->get_protocol(), nullptr) << "let go at connection_lost";
    EXPECT_EQ(co_await t->wait(), 3);
    EXPECT_FALSE(t->send_signal(SIGTERM)) << "reaped: the signal goes nowhere";
    EXPECT_THROW(t->set_protocol(std::make_shared<recorder>(&w)), corio::invalid_state_error);
    expect_only_main_task();
  });
}

// Bytes written to the stdin transport reach the child: 1 MiB through cat, every byte back in order on
// fd 1. cat does not read while its stdout is held (stdout paused), so stdin's queue passes the high
// watermark: pause_writing, then resume_writing once stdout is read again. close() on the stdin
// transport gives the child end of file.
TEST_P(SubprocessProtocol, StdinTransportWithBackpressure) {
  run([this]() -> task<> {
    callback_watch w;
    auto factory = [&w] { return std::make_shared<recorder>(&w); };
    process_options o = piped();
    std::vector<std::string> args;
    auto starting = corio::subprocess_exec(factory, "cat", std::move(args), std::move(o));
    auto made = co_await starting;
    std::shared_ptr<corio::subprocess_transport> t = made.transport;
    std::shared_ptr<recorder> p = made.protocol;
    std::shared_ptr<corio::transport> in = t->get_pipe_transport(0);
    std::shared_ptr<corio::transport> out = t->get_pipe_transport(1);
    EXPECT_TRUE(in && out);
    if (!in || !out)
      co_return;
    EXPECT_FALSE(in->is_reading());
    EXPECT_TRUE(out->is_reading());
    out->pause_reading();
    const std::string sent = pattern(mib, 5);
    in->write(sent);
    co_await until(&w, [&] { return p->pauses > 0; });
    EXPECT_EQ(p->resumes, 0);
    out->resume_reading();
    co_await until(&w, [&] { return p->resumes > 0; });
    in->close();
    co_await until(&w, [&] { return p->lost > 0; });
    EXPECT_EQ(p->out.size(), sent.size());
    EXPECT_TRUE(p->out == sent) << "the bytes differ";
    EXPECT_EQ(p->pauses, 1);
    EXPECT_EQ(p->resumes, 1);
    EXPECT_EQ(t->get_returncode(), 0);
    EXPECT_EQ(p->pipe_error[0], nullptr) << error_text(p->pipe_error[0]);
    EXPECT_LT(p->at("lost0"), p->at("exited")) << "stdin closed first: that is what ended cat";
    expect_only_main_task();
  });
}

// close() kills a child still running (asyncio's rule) and closes its pipes: process_exited with
// -SIGKILL, then connection_lost. Idempotent.
TEST_P(SubprocessProtocol, CloseKillsARunningChild) {
  run([this]() -> task<> {
    callback_watch w;
    auto factory = [&w] { return std::make_shared<recorder>(&w); };
    process_options o = piped();
    std::vector<std::string> args{"30"};
    auto starting = corio::subprocess_exec(factory, "sleep", std::move(args), std::move(o));
    auto made = co_await starting;
    std::shared_ptr<corio::subprocess_transport> t = made.transport;
    std::shared_ptr<recorder> p = made.protocol;
    EXPECT_FALSE(t->is_closing());
    EXPECT_FALSE(t->get_returncode());
    t->close();
    EXPECT_TRUE(t->is_closing());
    t->close();
    const int code = co_await t->wait();
    EXPECT_EQ(code, -SIGKILL);
    co_await until(&w, [&] { return p->lost > 0; });
    EXPECT_EQ(p->exited, 1);
    EXPECT_EQ(p->pipes_lost, 3);
    EXPECT_EQ(p->error, nullptr);
    EXPECT_EQ(p->events.back(), "lost");
    expect_only_main_task();
  });
}

// kill() / terminate() / send_signal() reach the child; its exit says which signal ended it.
TEST_P(SubprocessProtocol, SignalsReachTheChild) {
  run([this]() -> task<> {
    callback_watch w;
    auto factory = [&w] { return std::make_shared<recorder>(&w); };
    process_options o = piped();
    std::vector<std::string> args{"30"};
    auto starting = corio::subprocess_exec(factory, "sleep", std::move(args), std::move(o));
    auto made = co_await starting;
    std::shared_ptr<corio::subprocess_transport> t = made.transport;
    std::shared_ptr<recorder> p = made.protocol;
    EXPECT_THROW(t->send_signal(-5), std::system_error);
    EXPECT_TRUE(t->terminate());
    EXPECT_EQ(co_await t->wait(), -SIGTERM);
    co_await until(&w, [&] { return p->lost > 0; });
    EXPECT_FALSE(t->kill()) << "reaped: the signal goes nowhere";
    expect_only_main_task();
  });
}

// The options choose the pipes: stdout piped, stderr merged into it, stdin from /dev/null: only fd 1 has
// a transport, and it carries both streams.
TEST_P(SubprocessProtocol, OptionsChooseThePipes) {
  run([this]() -> task<> {
    callback_watch w;
    auto factory = [&w] { return std::make_unique<recorder>(&w); }; // a unique_ptr factory too
    process_options o{
        .stdin_ = stdio::devnull, .stdout_ = stdio::pipe, .stderr_ = stdio::stdout_, .use_pidfd = pidfd()};
    auto starting = corio::subprocess_shell(factory, "echo one; echo two >&2; cat", std::move(o));
    auto made = co_await starting;
    std::shared_ptr<corio::subprocess_transport> t = made.transport;
    std::shared_ptr<recorder> p = made.protocol;
    EXPECT_EQ(t->get_pipe_transport(0), nullptr);
    EXPECT_NE(t->get_pipe_transport(1), nullptr);
    EXPECT_EQ(t->get_pipe_transport(2), nullptr);
    co_await until(&w, [&] { return p->lost > 0; });
    EXPECT_EQ(p->out, "one\ntwo\n");
    EXPECT_EQ(p->err, "");
    EXPECT_EQ(p->pipes_lost, 1);
    EXPECT_EQ(t->get_returncode(), 0);
    expect_only_main_task();
  });
}

// A child whose stdout outlives it (a background grandchild holds it): process_exited comes first, then
// the grandchild's output, then the pipe's end, then connection_lost. The grandchild echoes what the
// test writes to stdin after the exit, so the order does not depend on timing.
TEST_P(SubprocessProtocol, StdoutCanOutliveTheChild) {
  run([this]() -> task<> {
    callback_watch w;
    auto factory = [&w] { return std::make_shared<recorder>(&w); };
    // fd 3 keeps the real stdin for the background job (whose own stdin is /dev/null in sh).
    auto starting = corio::subprocess_shell(factory, "exec 3<&0; (read x <&3; echo \"got $x\") & exit 0", piped());
    auto made = co_await starting;
    std::shared_ptr<corio::subprocess_transport> t = made.transport;
    std::shared_ptr<recorder> p = made.protocol;
    co_await until(&w, [&] { return p->exited > 0; });
    EXPECT_EQ(p->lost, 0) << "stdout is still open";
    EXPECT_EQ(p->out, "");
    std::shared_ptr<corio::transport> in = t->get_pipe_transport(0);
    in->write("late\n");
    in->close();
    co_await until(&w, [&] { return p->lost > 0; });
    EXPECT_EQ(p->out, "got late\n");
    EXPECT_LT(p->at("exited"), p->at("out"));
    EXPECT_LT(p->at("out"), p->at("lost1"));
    EXPECT_EQ(p->events.back(), "lost");
    expect_only_main_task();
  });
}

// A pipe_data_received that raises ends that pipe only: reported to the loop's exception handler,
// pipe_connection_lost(1, the exception); the child goes on writing stderr and exits normally.
TEST_P(SubprocessProtocol, ThrowingPipeDataReceivedEndsThatPipe) {
  run([this]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    std::vector<corio::exception_context> reports;
    auto handler = [&reports](corio::event_loop&, const corio::exception_context& c) { reports.push_back(c); };
    loop.set_exception_handler(handler);
    callback_watch w;
    auto factory = [&w] {
      auto r = std::make_shared<recorder>(&w);
      r->throw_on = "boom";
      return r;
    };
    auto starting = corio::subprocess_shell(factory, "echo boom; read x; echo after >&2", piped());
    auto made = co_await starting;
    std::shared_ptr<corio::subprocess_transport> t = made.transport;
    std::shared_ptr<recorder> p = made.protocol;
    co_await until(&w, [&] { return p->pipe_error[1] != nullptr; });
    EXPECT_EQ(error_text(p->pipe_error[1]), "pipe: boom");
    t->get_pipe_transport(0)->write("go\n");
    co_await until(&w, [&] { return p->lost > 0; });
    EXPECT_EQ(p->err, "after\n");
    EXPECT_EQ(t->get_returncode(), 0);
    EXPECT_EQ(p->error, nullptr);
    EXPECT_EQ(reports.size(), 1u);
    if (reports.size() == 1) {
      EXPECT_NE(reports[0].message.find("data_received"), std::string::npos) << reports[0].message;
    }
    if (reports.size() == 1) {
      EXPECT_NE(reports[0].message.find("stdout of /bin/sh"), std::string::npos) << reports[0].message;
      // The default handler prints "corio: <message>: ...": the message itself has no prefix.
      EXPECT_EQ(reports[0].message.rfind("corio:", 0), std::string::npos) << reports[0].message;
    }
    loop.set_exception_handler({});
    expect_only_main_task();
  });
}

// A connection_made that raises: reported, the transport closes and kills the child, and
// connection_lost gets the exception.
TEST_P(SubprocessProtocol, ThrowingConnectionMadeKillsTheChild) {
  run([this]() -> task<> {
    corio::event_loop& loop = *corio::event_loop::current();
    std::vector<corio::exception_context> reports;
    auto handler = [&reports](corio::event_loop&, const corio::exception_context& c) { reports.push_back(c); };
    loop.set_exception_handler(handler);
    callback_watch w;
    auto factory = [&w] {
      auto r = std::make_shared<recorder>(&w);
      r->throw_in_made = true;
      return r;
    };
    process_options o = piped();
    std::vector<std::string> args{"30"};
    auto starting = corio::subprocess_exec(factory, "sleep", std::move(args), std::move(o));
    auto made = co_await starting;
    std::shared_ptr<corio::subprocess_transport> t = made.transport;
    std::shared_ptr<recorder> p = made.protocol;
    EXPECT_TRUE(t->is_closing());
    co_await until(&w, [&] { return p->lost > 0; });
    EXPECT_EQ(error_text(p->error), "made: boom");
    EXPECT_EQ(t->get_returncode(), -SIGKILL);
    EXPECT_EQ(reports.size(), 1u);
    if (reports.size() == 1) {
      EXPECT_NE(reports[0].message.find("connection_made"), std::string::npos) << reports[0].message;
    }
    loop.set_exception_handler({});
    expect_only_main_task();
  });
}

// A program that cannot start raises std::system_error(ENOENT) naming it; no connection_made, nothing
// left. A factory that raises or returns null starts nothing.
TEST_P(SubprocessProtocol, StartErrors) {
  run([this]() -> task<> {
    callback_watch w;
    std::shared_ptr<recorder> made;
    auto factory = [&w, &made] {
      made = std::make_shared<recorder>(&w);
      return made;
    };
    std::string what;
    int code = 0;
    try {
      process_options o = piped();
      std::vector<std::string> args;
      auto starting = corio::subprocess_exec(factory, "corio-no-such-program", std::move(args), std::move(o));
      (void)co_await starting;
    } catch (const std::system_error& e) {
      code = e.code().value();
      what = e.what();
    }
    EXPECT_EQ(code, ENOENT);
    EXPECT_NE(what.find("corio-no-such-program"), std::string::npos) << what;
    EXPECT_NE(made, nullptr);
    if (made) {
      EXPECT_TRUE(made->events.empty());
    }

    bool raised = false;
    auto throwing = []() -> std::shared_ptr<recorder> { throw std::runtime_error("factory"); };
    try {
      auto starting = corio::subprocess_shell(throwing, "exit 0");
      (void)co_await starting;
    } catch (const std::runtime_error& e) {
      raised = std::string(e.what()) == "factory";
    }
    EXPECT_TRUE(raised);
    raised = false;
    auto null = []() -> std::shared_ptr<recorder> { return nullptr; };
    try {
      auto starting = corio::subprocess_shell(null, "exit 0");
      (void)co_await starting;
    } catch (const std::invalid_argument&) {
      raised = true;
    }
    EXPECT_TRUE(raised);
    expect_only_main_task();
  });
}

// set_protocol(): the callbacks that follow go to the new protocol, which gets no connection_made.
TEST_P(SubprocessProtocol, SetProtocolSwitchesTheCallbacks) {
  run([this]() -> task<> {
    callback_watch w;
    auto factory = [&w] { return std::make_shared<recorder>(&w); };
    auto starting = corio::subprocess_shell(factory, "read x; echo \"$x\"", piped());
    auto made = co_await starting;
    std::shared_ptr<corio::subprocess_transport> t = made.transport;
    std::shared_ptr<recorder> first = made.protocol;
    auto second = std::make_shared<recorder>(&w);
    second->t = t.get();
    EXPECT_THROW(t->set_protocol(nullptr), std::invalid_argument);
    t->set_protocol(second);
    EXPECT_EQ(t->get_protocol(), second);
    t->get_pipe_transport(0)->write("switched\n");
    co_await until(&w, [&] { return second->lost > 0; });
    EXPECT_EQ(second->out, "switched\n");
    EXPECT_EQ(second->exited, 1);
    EXPECT_EQ(first->out, "");
    EXPECT_EQ(first->lost, 0);
    EXPECT_EQ(first->events.size(), 1u);
    expect_only_main_task();
  });
}

// wait() from several tasks, before and after the exit.
TEST_P(SubprocessProtocol, SeveralWaiters) {
  run([this]() -> task<> {
    callback_watch w;
    auto factory = [&w] { return std::make_shared<recorder>(&w); };
    auto starting = corio::subprocess_shell(factory, "read x; exit 7", piped());
    auto made = co_await starting;
    std::shared_ptr<corio::subprocess_transport> t = made.transport;
    std::shared_ptr<recorder> p = made.protocol;
    auto waiter = [](std::shared_ptr<corio::subprocess_transport> tr) -> task<int> { co_return co_await tr->wait(); };
    auto a = corio::spawn(waiter(t));
    auto b = corio::spawn(waiter(t));
    t->get_pipe_transport(0)->write("x\n");
    EXPECT_EQ(co_await a, 7);
    EXPECT_EQ(co_await b, 7);
    EXPECT_EQ(co_await t->wait(), 7);
    co_await until(&w, [&] { return p->lost > 0; });
    expect_only_main_task();
  });
}

INSTANTIATE_TEST_SUITE_P(Orders, SubprocessProtocol,
                         ::testing::Combine(::testing::Values(std::uint64_t{0}, std::uint64_t{7}), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == 0 ? "ordered" : "shuffled") + "_" +
                                  (std::get<1>(info.param) ? "pidfd" : "sigchld");
                         });

// The loop closes with the child still running: its pipes end (pipe_connection_lost for each) and
// connection_lost follows, without process_exited; the child is not killed (a background thread reaps it).
TEST(SubprocessProtocolLoopClose, ConnectionLostWithoutExit) {
  corio::testing::leak_check leaks;
  std::shared_ptr<recorder> p;
  int pid = -1;
  corio::testing::mock_clock clock;
  corio::run(
      [&]() -> task<> {
        callback_watch w;
        auto factory = [&w] { return std::make_shared<recorder>(&w); };
        std::vector<std::string> args{"30"};
        process_options o{.stdin_ = stdio::pipe, .stdout_ = stdio::pipe, .stderr_ = stdio::pipe};
        auto starting = corio::subprocess_exec(factory, "sleep", std::move(args), std::move(o));
        auto made = co_await starting;
        std::shared_ptr<corio::subprocess_transport> t = made.transport;
        std::shared_ptr<recorder> pr = made.protocol;
        p = pr;
        pid = t->get_pid();
        p->w = nullptr; // the watch goes with this task: corio::run then cancels the transport's tasks
      }(),
      {.clock = &clock});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->exited, 0);
  EXPECT_EQ(p->lost, 1);
  EXPECT_EQ(p->pipes_lost, 3);
  EXPECT_EQ(p->events.back(), "lost");
  ASSERT_GT(pid, 0);
  EXPECT_EQ(::kill(pid, SIGKILL), 0) << "the child was left running";
  for (int i = 0; i < 500 && !no_children(); ++i) // the background reaper takes it
    ::usleep(10000);
  EXPECT_TRUE(no_children());
}

} // namespace
