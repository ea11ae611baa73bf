// corio::subprocess_protocol and corio::subprocess_transport: asyncio's loop.subprocess_exec /
// loop.subprocess_shell with SubprocessProtocol and SubprocessTransport, over the pipe transports of
// corio/net/protocol.hpp.
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "corio/net/protocol.hpp"
#include "corio/process_options.hpp"
#include "corio/task.hpp"

namespace corio {

class subprocess_transport;

/// asyncio.SubprocessProtocol: what a child process started by subprocess_exec() / subprocess_shell()
/// calls, on the loop's thread. The defaults do nothing.
///
/// Order: connection_made first; then, in any order between them, pipe_data_received(fd, data) for the
/// child's stdout (fd 1) and stderr (fd 2) as bytes arrive, pipe_connection_lost(fd, error) once per piped
/// stream (0, 1, 2) when it ends, and process_exited() once when the child exits; connection_lost last,
/// exactly once, when the child has exited and every pipe has ended. The child's stdout can end after its
/// exit (a grandchild holding it open), and its exit can come long after its pipes end.
///
/// An exception escaping pipe_data_received ends that pipe (it is aborted, reported to the loop's exception
/// handler and pipe_connection_lost receives it); the child goes on. One escaping connection_made is
/// reported and closes the transport (the child is killed), and connection_lost receives it. Exceptions
/// from the other callbacks are only reported.
class subprocess_protocol {
public:
  virtual ~subprocess_protocol() = default;
  /// The child is running and its pipes are connected; `t` stays valid until connection_lost returns
  /// (keep t.shared_from_this() to use it longer).
  virtual void connection_made(subprocess_transport& t) { (void)t; }
  /// Bytes the child wrote to its stdout (fd 1) or stderr (fd 2), in order; at most 64 KiB per call. The
  /// view is valid during the call only.
  virtual void pipe_data_received(int fd, std::string_view data) {
    (void)fd;
    (void)data;
  }
  /// A pipe ended: for 1 and 2 the child (and anything that inherited the pipe) closed it, or close();
  /// for 0 the child closed its stdin, or the stdin transport was closed. Null when it ended normally;
  /// else the error (std::system_error(EPIPE) when the child closed its stdin with bytes still queued for
  /// it; a read error; the exception pipe_data_received raised).
  virtual void pipe_connection_lost(int fd, std::exception_ptr error) {
    (void)fd;
    (void)error;
  }
  /// The child exited; transport.get_returncode() has its return code.
  virtual void process_exited() {}
  /// The last call: the child exited and every pipe ended (or the loop shut down). Null, or the exception
  /// connection_made raised.
  virtual void connection_lost(std::exception_ptr error) { (void)error; }
  /// More than the high-water mark is queued on the child's stdin: stop writing until resume_writing().
  virtual void pause_writing() {}
  /// The stdin queue drained to the low-water mark.
  virtual void resume_writing() {}
};

namespace detail {
class child_process;
struct subprocess_access;
} // namespace detail

/// asyncio.SubprocessTransport: one per child started by subprocess_exec() / subprocess_shell(). Owned by
/// corio until connection_lost (the returned shared_ptr is a handle: using it later is safe). Use it on
/// the loop's thread only.
///
/// The child's pipes are corio::transports (get_pipe_transport): fd 0 a write pipe's (write(),
/// writelines(), close() flushes then gives the child end of file, watermarks as for a socket), fds 1 and
/// 2 read pipes' (pause_reading() / resume_reading() hold pipe_data_received back). The child is reaped
/// as soon as it exits, as for corio::process: no zombies, whether or not the transport is kept.
class subprocess_transport : public std::enable_shared_from_this<subprocess_transport> {
  struct key {
    explicit key() = default;
  };

public:
  subprocess_transport(key, std::shared_ptr<detail::child_process> child, std::shared_ptr<subprocess_protocol> p);
  subprocess_transport(const subprocess_transport&) = delete;
  subprocess_transport& operator=(const subprocess_transport&) = delete;
  ~subprocess_transport();

  [[nodiscard]] int get_pid() const noexcept;
  /// The child's return code once it exited (-N if signal N ended it), else nullopt.
  [[nodiscard]] std::optional<int> get_returncode() const noexcept;
  /// The transport of the child's stdin (0), stdout (1) or stderr (2); null when that stream is not a pipe
  /// (or another fd is asked for). Still returned after the pipe ended (is_closed() then).
  [[nodiscard]] std::shared_ptr<transport> get_pipe_transport(int fd) const noexcept;
  /// Sends signal `sig` to the child: false if it was already reaped (the signal then goes nowhere, as
  /// corio::process::send_signal). std::system_error for an invalid signal number; loop_error once the
  /// loop closed.
  bool send_signal(int sig);
  /// SIGTERM.
  bool terminate();
  /// SIGKILL.
  bool kill();
  /// Closes every pipe (stdin flushed first) and kills the child if it is still running (asyncio's
  /// rule); process_exited and connection_lost follow as usual. Idempotent.
  void close();
  /// True from close() on.
  [[nodiscard]] bool is_closing() const noexcept { return closing_; }
  /// True once connection_lost has been called (or is running).
  [[nodiscard]] bool is_closed() const noexcept { return lost_; }
  /// Waits until the child exits and gives its return code (asyncio's transport._wait()). Several tasks
  /// may wait; cancelling a wait leaves the child running.
  [[nodiscard]] task<int> wait();
  /// The protocol; null once connection_lost has returned.
  [[nodiscard]] std::shared_ptr<subprocess_protocol> get_protocol() const noexcept { return protocol_; }
  /// The callbacks that follow go to `p` (its connection_made is not called). Null raises
  /// std::invalid_argument; after connection_lost, invalid_state_error.
  void set_protocol(std::shared_ptr<subprocess_protocol> p);

private:
  friend detail::subprocess_access;

  std::shared_ptr<detail::child_process> child_;
  std::shared_ptr<subprocess_protocol> protocol_;
  std::shared_ptr<transport> pipes_[3];
  std::exception_ptr error_; // what connection_lost will receive (connection_made raised)
  bool pipe_open_[3] = {false, false, false};
  bool exited_ = false; // process_exited was called, or the loop shut down before the child exited
  bool closing_ = false;
  bool lost_ = false;
};

/// What subprocess_exec() returns: `auto [t, p] = co_await corio::subprocess_exec(...)`.
template <class P> struct subprocess_connection {
  std::shared_ptr<subprocess_transport> transport;
  std::shared_ptr<P> protocol;
};

namespace detail {

using subprocess_factory = std::function<std::shared_ptr<subprocess_protocol>()>;

task<std::pair<std::shared_ptr<subprocess_transport>, std::shared_ptr<subprocess_protocol>>>
start_subprocess(subprocess_factory make, std::string program, std::vector<std::string> args, process_options options);

template <class P> task<subprocess_connection<P>>
subprocess_as(subprocess_factory make, std::string program, std::vector<std::string> args, process_options options) {
  auto made = co_await start_subprocess(std::move(make), std::move(program), std::move(args), std::move(options));
  subprocess_connection<P> r{std::move(made.first), std::static_pointer_cast<P>(std::move(made.second))};
  co_return r;
}

template <class F> subprocess_factory erase_subprocess_factory(F f) {
  static_assert(std::is_base_of_v<subprocess_protocol, protocol_of<F>>,
                "corio: a subprocess protocol factory must make a corio::subprocess_protocol");
  return erase_factory_as<subprocess_protocol>(std::move(f));
}

/// asyncio's subprocess_exec defaults: stdin, stdout and stderr all piped.
inline process_options all_piped() {
  process_options o;
  o.stdin_ = stdio::pipe;
  o.stdout_ = stdio::pipe;
  o.stderr_ = stdio::pipe;
  return o;
}

} // namespace detail

/// asyncio's loop.subprocess_exec(protocol_factory, program, *args, ...): starts `program` with `args` as
/// create_subprocess_exec() does (the same options, PATH lookup and errors: nothing is made when the
/// child cannot start), then calls `factory()` — a callable returning std::shared_ptr<P> or
/// std::unique_ptr<P>, P a corio::subprocess_protocol — and connection_made before it returns. The
/// options say which streams are pipes; without options all three are (asyncio's default).
///
///     struct collect : corio::subprocess_protocol { ... };
///     std::vector<std::string> args{"-c", "echo hi"};
///     auto [t, p] = co_await corio::subprocess_exec([] { return std::make_shared<collect>(); }, "sh",
///                                                   std::move(args));
///     int code = co_await t->wait();
///
/// (g++ 12: name the argument vector and the options before the co_await; see process.hpp.)
template <class Factory> [[nodiscard]] task<subprocess_connection<detail::protocol_of<Factory>>>
subprocess_exec(Factory factory, std::string program, std::vector<std::string> args, process_options options) {
  detail::subprocess_factory make = detail::erase_subprocess_factory(std::move(factory));
  return detail::subprocess_as<detail::protocol_of<Factory>>(std::move(make), std::move(program), std::move(args),
                                                             std::move(options));
}
template <class Factory> [[nodiscard]] task<subprocess_connection<detail::protocol_of<Factory>>>
subprocess_exec(Factory factory, std::string program, std::vector<std::string> args) {
  return subprocess_exec(std::move(factory), std::move(program), std::move(args), detail::all_piped());
}
template <class Factory> [[nodiscard]] task<subprocess_connection<detail::protocol_of<Factory>>>
subprocess_exec(Factory factory, std::string program) {
  return subprocess_exec(std::move(factory), std::move(program), std::vector<std::string>(), detail::all_piped());
}

/// asyncio's loop.subprocess_shell(protocol_factory, cmd, ...): `command` run by /bin/sh -c, as
/// subprocess_exec() otherwise (the shell's own errors, such as a command not found, are return codes).
template <class Factory> [[nodiscard]] task<subprocess_connection<detail::protocol_of<Factory>>>
subprocess_shell(Factory factory, std::string command, process_options options) {
  std::vector<std::string> args;
  args.reserve(2);
  args.emplace_back("-c");
  args.push_back(std::move(command));
  return subprocess_exec(std::move(factory), "/bin/sh", std::move(args), std::move(options));
}
template <class Factory> [[nodiscard]] task<subprocess_connection<detail::protocol_of<Factory>>>
subprocess_shell(Factory factory, std::string command) {
  return subprocess_shell(std::move(factory), std::move(command), detail::all_piped());
}

} // namespace corio
