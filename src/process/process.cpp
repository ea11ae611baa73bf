// corio::process: spawn, pipes as streams, wait, communicate, signals.
#include "corio/process.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "../net/stream_transport.hpp"
#include "child_process.hpp"
#include "corio/gather.hpp"
#include "spawn.hpp"

namespace corio {

namespace {

using child_ptr = std::shared_ptr<detail::child_process>;

const child_ptr& need(const child_ptr& c) {
  if (!c)
    throw invalid_state_error("corio: use of an empty process");
  return c;
}

bool pidfd_wanted(const process_options& o) {
  if (!o.use_pidfd)
    return false;
  const char* no = ::getenv("CORIO_NO_PIDFD");
  return no == nullptr || no[0] == '\0' || std::strcmp(no, "0") == 0;
}

/// pidfd_open(2): Linux 5.3. -1 when the kernel (or a seccomp filter) refuses: SIGCHLD then.
int open_pidfd(int pid) noexcept {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); // the fd is close-on-exec
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

template <class Stream>
Stream pipe_stream(socket end, const char* which, const std::string& program, int pid, const process_options& o) {
  if (!end.is_open())
    return Stream();
  stream_options so;
  so.limit = o.limit;
  return Stream(
      std::make_shared<detail::stream_transport>(std::move(end), detail::child_pipe_label(which, program, pid), so));
}

task<std::string> read_to_end(stream_reader r) { co_return co_await r.read(); }

/// communicate()'s stdin: queue everything (flushed in the background as the child reads) and close.
/// A child that is gone, or closed its stdin, is not an error here (asyncio ignores BrokenPipeError).
void feed(stream_writer& in, std::string input) {
  try {
    if (!input.empty())
      in.write(std::move(input));
  } catch (const std::system_error& e) {
    if (e.code().value() != EPIPE && e.code().value() != ECONNRESET)
      throw;
  }
  in.close();
}

} // namespace

namespace detail {

std::string child_pipe_label(const char* which, const std::string& program, int pid) {
  return std::string(which) + " of " + program + " (pid " + std::to_string(pid) + ")";
}

started_child start_child(std::string program, std::vector<std::string> args, const process_options& o,
                          const char* who) {
  event_loop* loop = event_loop::current();
  if (loop == nullptr)
    throw loop_error(std::string("corio: ") + who + " needs a running event loop");
  if (o.limit == 0) // before the child starts (its pipes' streams are made after)
    throw std::invalid_argument(std::string("corio: ") + who + ": process_options::limit must be positive");
  child_watcher& watcher = child_watcher::of(*loop);
  std::vector<std::string> argv;
  argv.reserve(args.size() + 1);
  argv.push_back(program);
  for (std::string& a : args)
    argv.push_back(std::move(a));
  spawned_child s = spawn_child(argv, o);
  const int pidfd = pidfd_wanted(o) ? open_pidfd(s.pid) : -1;
  const int pidfd_error = pidfd < 0 ? errno : 0;
  auto c = std::make_shared<child_process>(*loop, s.pid, pidfd, std::move(program));
  if (pidfd_error == ESRCH) {
    // Gone already: with SIGCHLD set to SIG_IGN the kernel reaps an exited child at once (a child of
    // ours is otherwise a zombie until we reap it, so pidfd_open cannot miss it). Its status is lost.
    std::fprintf(stderr, "corio: child process %d (%s) was reaped elsewhere (SIGCHLD ignored?); returncode 255\n",
                 s.pid, c->program.c_str());
    c->returncode = 255;
  } else {
    try {
      watcher.add(c); // from here on the child is reaped whatever happens
    } catch (...) {
      // Cannot watch it (no fd for the signalfd, the loop refused the pidfd): do not leave it running
      // unwatched, nor as a zombie.
      (void)::kill(s.pid, SIGKILL);
      (void)::waitpid(s.pid, nullptr, 0);
      c->returncode = -SIGKILL;
      throw;
    }
  }
  return started_child{std::move(c), std::move(s)};
}

task<int> wait_child(std::shared_ptr<child_process> c, const char* who) {
  // The frame keeps the child's state while it waits.
  while (!c->returncode) {
    if (c->loop == nullptr)
      throw loop_error(std::string("corio: ") + who + ": the loop that started " + c->program +
                       " is closed (a background thread reaps it)");
    co_await transport_awaiter(c->waiters, who);
  }
  co_return *c->returncode;
}

bool signal_child(const child_process& c, int sig, const char* who) {
  if (c.returncode)
    return false; // reaped: the pid may belong to another process by now
  if (c.loop == nullptr)
    throw loop_error(std::string("corio: ") + who + ": the loop that started " + c.program + " is closed");
  long r;
#ifdef SYS_pidfd_send_signal
  if (c.pidfd >= 0)
    r = ::syscall(SYS_pidfd_send_signal, c.pidfd, sig, nullptr, 0);
  else
#endif
    r = ::kill(c.pid, sig); // not reaped yet, so the pid is still this child's (a zombie at worst)
  if (r == 0)
    return true;
  if (errno == ESRCH)
    return false;
  throw std::system_error(errno, std::generic_category(),
                          "corio: send signal " + std::to_string(sig) + " to " + c.program + " (pid " +
                              std::to_string(c.pid) + ")");
}

} // namespace detail

process::process(std::shared_ptr<detail::child_process> c, stream_writer in, stream_reader out,
                 stream_reader err) noexcept
    : stdin_(std::move(in)), stdout_(std::move(out)), stderr_(std::move(err)), child_(std::move(c)) {}

process::~process() = default;

int process::pid() const { return need(child_)->pid; }

std::optional<int> process::returncode() const { return need(child_)->returncode; }

task<int> process::wait() { return detail::wait_child(need(child_), "process.wait()"); }

task<communicate_result> process::communicate(std::string input) {
  // Everything this needs of *this is copied before the first suspension: the object may be moved or
  // destroyed while communicate() runs (a std::vector<process> that grows).
  child_ptr c = need(child_);
  if (!input.empty() && (!stdin_.valid() || stdin_.is_closing()))
    throw invalid_state_error(stdin_.valid() ? "corio: communicate(input): stdin_ is already closed"
                                             : "corio: communicate(input) needs stdin_ = stdio::pipe");
  stream_writer in = stdin_;
  stream_reader out = stdout_, err = stderr_;
  if (in.valid())
    feed(in, std::move(input));
  communicate_result r;
  if (out.valid() && err.valid()) {
    auto both = co_await gather(return_exceptions, read_to_end(out), read_to_end(err));
    r.out = std::move(std::get<0>(both)).value();
    r.err = std::move(std::get<1>(both)).value();
  } else if (out.valid()) {
    r.out = co_await out.read();
  } else if (err.valid()) {
    r.err = co_await err.read();
  }
  r.returncode = co_await detail::wait_child(std::move(c), "process.communicate()");
  // The child is gone, so the pipe's reader is too: the flush ends (sent, or EPIPE) and stdin closes.
  if (in.valid())
    co_await in.wait_closed();
  co_return r;
}

task<communicate_result> process::communicate() { return communicate(std::string()); }

bool process::send_signal(int sig) { return detail::signal_child(*need(child_), sig, "process.send_signal()"); }

bool process::terminate() { return send_signal(SIGTERM); }
bool process::kill() { return send_signal(SIGKILL); }

task<process> create_subprocess_exec(std::string program, std::vector<std::string> args, process_options o) {
  detail::started_child s = detail::start_child(std::move(program), std::move(args), o, "create_subprocess_exec");
  const std::string& name = s.child->program;
  const int pid = s.child->pid;
  auto in = pipe_stream<stream_writer>(std::move(s.fds.in), "stdin", name, pid, o);
  auto out = pipe_stream<stream_reader>(std::move(s.fds.out), "stdout", name, pid, o);
  auto err = pipe_stream<stream_reader>(std::move(s.fds.err), "stderr", name, pid, o);
  co_return process(std::move(s.child), std::move(in), std::move(out), std::move(err));
}

task<process> create_subprocess_exec(std::string program, std::vector<std::string> args) {
  return create_subprocess_exec(std::move(program), std::move(args), process_options());
}

task<process> create_subprocess_exec(std::string program) {
  return create_subprocess_exec(std::move(program), std::vector<std::string>(), process_options());
}

task<process> create_subprocess_shell(std::string command) {
  return create_subprocess_shell(std::move(command), process_options());
}

task<process> create_subprocess_shell(std::string command, process_options o) {
  std::vector<std::string> args{"-c", std::move(command)}; // named: a braced list in a co_await (HAZARDS.md §2)
  co_return co_await create_subprocess_exec("/bin/sh", std::move(args), std::move(o));
}

} // namespace corio
