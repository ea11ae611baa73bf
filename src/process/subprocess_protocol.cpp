// corio::subprocess_transport: asyncio's loop.subprocess_exec with a SubprocessProtocol, over pipe
// transports.
#include "corio/subprocess_protocol.hpp"

#include <signal.h>

#include <stdexcept>
#include <string>

#include "../net/protocol_calls.hpp"
#include "child_process.hpp"
#include "corio/errors.hpp"
#include "corio/spawn.hpp"
#include "corio/this_task.hpp"

namespace corio::detail {

/// The subprocess transport's machinery (a friend, so the public header shows only the state).
///
/// Each piped stream of the child is a corio::transport (a read pipe for 1 and 2, a write pipe for 0)
/// whose protocol is a pipe_relay: it passes data, pause/resume_writing and the pipe's end to the
/// subprocess protocol with the fd. A task waits for the child's exit and calls process_exited. The
/// transport calls connection_lost once both sides are done: the child exited (or the loop shut down
/// first) and every pipe's connection_lost came. Until then the relays and the exit task hold the
/// transport; the pipe transports let go of their relay at their connection_lost, which breaks the
/// transport -> pipe -> relay -> transport cycle.
struct subprocess_access {
  static std::string describe(const subprocess_transport& t) {
    return t.child_->program + " (pid " + std::to_string(t.child_->pid) + ")";
  }

  /// A callback whose exception is only reported.
  template <class F> static void reported(const subprocess_transport& t, const char* what, F&& f) noexcept {
    (void)call_protocol(
        "subprocess_protocol", what, [&] { return describe(t); }, f);
  }

  class pipe_relay final : public protocol {
  public:
    pipe_relay(std::shared_ptr<subprocess_transport> owner, int fd) noexcept : owner_(std::move(owner)), fd_(fd) {}

    void data_received(std::string_view data) override {
      std::shared_ptr<subprocess_protocol> p = owner_->protocol_; // alive through the call
      if (p)
        p->pipe_data_received(fd_, data); // an exception ends this pipe (the pipe transport's rule)
    }
    void pause_writing() override {
      std::shared_ptr<subprocess_protocol> p = owner_->protocol_;
      if (p)
        p->pause_writing();
    }
    void resume_writing() override {
      std::shared_ptr<subprocess_protocol> p = owner_->protocol_;
      if (p)
        p->resume_writing();
    }
    void connection_lost(std::exception_ptr error) override {
      std::shared_ptr<subprocess_transport> t = std::move(owner_);
      pipe_lost(*t, fd_, std::move(error));
    }

  private:
    std::shared_ptr<subprocess_transport> owner_;
    const int fd_;
  };

  static void pipe_lost(subprocess_transport& t, int fd, std::exception_ptr error) noexcept {
    t.pipe_open_[fd] = false;
    std::shared_ptr<subprocess_protocol> p = t.protocol_;
    if (p)
      reported(t, "pipe_connection_lost", [&] { p->pipe_connection_lost(fd, error); });
    try_finish(t);
  }

  /// connection_lost once the child exited and every pipe ended; then the protocol is let go.
  static void try_finish(subprocess_transport& t) noexcept {
    if (t.lost_ || !t.exited_)
      return;
    for (bool open : t.pipe_open_)
      if (open)
        return;
    t.lost_ = true;
    std::shared_ptr<subprocess_protocol> p = std::move(t.protocol_);
    std::exception_ptr e = t.error_;
    if (p)
      reported(t, "connection_lost", [&] { p->connection_lost(e); });
  }

  /// Waits for the child's exit: process_exited, then connection_lost if the pipes are done. When the
  /// loop shuts down first (this task is cancelled, the child goes on and is reaped in the background)
  /// there is no process_exited, and connection_lost comes once the pipes (cancelled too) have ended.
  static task<> watch_exit(std::shared_ptr<subprocess_transport> param) {
    std::shared_ptr<subprocess_transport> t = std::move(param); // a local: let go when the task ends
    bool exited = true;
    try {
      (void)co_await wait_child(t->child_, "subprocess_transport");
    } catch (...) { // cancelled (loop shutdown), or the loop closed
      exited = false;
    }
    t->exited_ = true;
    if (exited) {
      std::shared_ptr<subprocess_protocol> p = t->protocol_;
      if (p)
        reported(*t, "process_exited", [&] { p->process_exited(); });
    }
    try_finish(*t);
  }

  /// Makes a pipe transport, with a relay, for each stream of the child that is a pipe.
  static void attach_pipes(subprocess_transport& t, started_child& s) {
    const char* const names[3] = {"stdin", "stdout", "stderr"};
    socket* ends[3] = {&s.fds.in, &s.fds.out, &s.fds.err};
    const stream_options defaults;
    for (int fd = 0; fd < 3; ++fd) {
      if (!ends[fd]->is_open())
        continue;
      t.pipe_open_[fd] = true;
      auto relay = std::make_shared<pipe_relay>(t.shared_from_this(), fd);
      const transport_over over = fd == 0 ? transport_over::write_pipe : transport_over::read_pipe;
      t.pipes_[fd] = start_pipe_transport(std::move(*ends[fd]), over, std::move(relay),
                                          child_pipe_label(names[fd], s.child->program, s.child->pid),
                                          defaults.high_water, defaults.low_water);
    }
  }

  /// The protocol's connection_made. Its exception is reported (asyncio's rule) and, as for a
  /// connection, fatal: the transport closes (the child is killed) and connection_lost receives it.
  static void connection_made(subprocess_transport& t, subprocess_protocol& p) {
    std::exception_ptr e = call_protocol(
        "subprocess_protocol", "connection_made", [&] { return describe(t); }, [&] { p.connection_made(t); });
    if (e) {
      t.error_ = std::move(e);
      t.close();
    }
  }

  static std::shared_ptr<subprocess_transport> make(std::shared_ptr<child_process> c,
                                                    std::shared_ptr<subprocess_protocol> p) {
    return std::make_shared<subprocess_transport>(subprocess_transport::key{}, std::move(c), std::move(p));
  }
};

task<std::pair<std::shared_ptr<subprocess_transport>, std::shared_ptr<subprocess_protocol>>>
start_subprocess(subprocess_factory make, std::string program, std::vector<std::string> args, process_options options) {
  event_loop& loop = running_loop("subprocess_exec()");
  // The protocol first (asyncio's order): a factory that raises starts nothing.
  std::shared_ptr<subprocess_protocol> p = make();
  if (!p)
    throw std::invalid_argument("corio: subprocess_exec(): the protocol factory returned null");
  started_child s = start_child(std::move(program), std::move(args), options, "subprocess_exec()");
  std::shared_ptr<subprocess_transport> t = subprocess_access::make(s.child, p);
  // From here nothing suspends until connection_made has returned, so the pipes' pumps (spawned to start
  // at the loop's next iteration) deliver nothing before it.
  subprocess_access::attach_pipes(*t, s);
  subprocess_access::connection_made(*t, *p);
  spawn_lazy(loop, subprocess_access::watch_exit(t), "subprocess exit", start_policy::always);
  std::pair<std::shared_ptr<subprocess_transport>, std::shared_ptr<subprocess_protocol>> r{std::move(t), std::move(p)};
  co_return r;
}

} // namespace corio::detail

namespace corio {

subprocess_transport::subprocess_transport(key, std::shared_ptr<detail::child_process> child,
                                           std::shared_ptr<subprocess_protocol> p)
    : child_(std::move(child)), protocol_(std::move(p)) {}

subprocess_transport::~subprocess_transport() = default;

int subprocess_transport::get_pid() const noexcept { return child_->pid; }

std::optional<int> subprocess_transport::get_returncode() const noexcept { return child_->returncode; }

std::shared_ptr<transport> subprocess_transport::get_pipe_transport(int fd) const noexcept {
  return fd >= 0 && fd < 3 ? pipes_[fd] : nullptr;
}

bool subprocess_transport::send_signal(int sig) {
  return detail::signal_child(*child_, sig, "subprocess_transport.send_signal()");
}

bool subprocess_transport::terminate() { return send_signal(SIGTERM); }

bool subprocess_transport::kill() { return send_signal(SIGKILL); }

void subprocess_transport::close() {
  if (closing_)
    return;
  closing_ = true;
  for (const std::shared_ptr<transport>& pipe : pipes_)
    if (pipe)
      pipe->close();
  if (!child_->returncode && child_->loop != nullptr) {
    try {
      (void)detail::signal_child(*child_, SIGKILL, "subprocess_transport.close()");
    } catch (const std::system_error&) { // cannot happen for SIGKILL to our own child; nothing to undo
    }
  }
}

task<int> subprocess_transport::wait() { return detail::wait_child(child_, "subprocess_transport.wait()"); }

void subprocess_transport::set_protocol(std::shared_ptr<subprocess_protocol> p) {
  if (!p)
    throw std::invalid_argument("corio: subprocess_transport.set_protocol(nullptr)");
  if (lost_)
    throw invalid_state_error("corio: subprocess_transport.set_protocol() after connection_lost (" +
                              detail::subprocess_access::describe(*this) + ")");
  protocol_ = std::move(p);
}

} // namespace corio
