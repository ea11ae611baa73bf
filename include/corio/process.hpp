// corio::process and create_subprocess_exec / create_subprocess_shell (asyncio.subprocess).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "corio/net/stream_reader.hpp"
#include "corio/net/stream_writer.hpp"
#include "corio/process_options.hpp"
#include "corio/task.hpp"

namespace corio {

namespace detail {
class child_process;
}

/// What communicate() gives: everything the child wrote to its piped stdout and stderr (empty when
/// not piped), and its return code.
struct communicate_result {
  std::string out;
  std::string err;
  int returncode = 0;
};

/// A child process started by create_subprocess_exec or create_subprocess_shell (asyncio.subprocess's
/// Process). Move-only. Use it on the thread of the loop that started it.
///
///     corio::process_options o{.stdin_ = corio::stdio::pipe, .stdout_ = corio::stdio::pipe};
///     std::vector<std::string> args{"-n"};
///     corio::process p = co_await corio::create_subprocess_exec("cat", std::move(args), std::move(o));
///     corio::communicate_result r = co_await p.communicate("hello\n");   // r.out, r.err, r.returncode
///
/// (g++ 12 destroys a braced list or designated-initialiser temporary written inside a co_await
/// expression twice — HAZARDS.md §2 — so name the argument vector and the options first, as above, or
/// create the task first: `auto t = create_subprocess_exec("cat", {"-n"}, {...}); co_await t;`.)
///
/// - Pipes: stdin_ is a stream_writer, stdout_ and stderr_ are stream_readers when the options asked for
///   a pipe (else they are empty: valid() is false). They are the same streams as a socket's (limits,
///   backpressure with drain(), readline...). stdin_.close() or write_eof() gives the child end of file.
///   Writing after the child closed its stdin raises std::system_error(EPIPE) on that stream only.
/// - Exit: the child is reaped by the loop as soon as it exits, whether anyone waits or not, and even
///   after this object is gone: no zombies. returncode() is its exit status, or -N if signal N ended it
///   (Python's returncode). 255 if something else reaped it first (SIGCHLD set to SIG_IGN; asyncio's
///   rule), with a warning on stderr.
/// - Watching: a pidfd (pidfd_open, Linux 5.3+) that the loop polls; where the kernel refuses it
///   (ENOSYS, EPERM under seccomp) or `process_options::use_pidfd` is false, SIGCHLD through the loop's
///   signalfd (corio::add_signal_handler(SIGCHLD), which then belongs to corio). SIGCHLD goes to the
///   process, not to a loop: loops that watch children this way (runtime, one loop per thread) pass each
///   other the SIGCHLDs they take, and a loop keeps handling SIGCHLD after its last such child while
///   another loop still handles it. The fallback only sees the signal if every other thread blocks
///   SIGCHLD (corio's pool threads and runtime's threads 1..n-1 do; the thread that calls runtime::run
///   does once its loop watches such a child), and none comes at all when SIGCHLD is set to SIG_IGN:
///   the start then fails with std::system_error(ECHILD).
/// - When the loop closes with children still running, they are not killed: they go on, and a
///   background thread (all signals blocked) reaps each one when it exits. Their process objects then
///   report no returncode, and wait() / send_signal() raise loop_error.
class process {
public:
  process() noexcept = default;
  explicit process(std::shared_ptr<detail::child_process> c, stream_writer in, stream_reader out,
                   stream_reader err) noexcept;
  process(process&&) noexcept = default;
  process& operator=(process&&) noexcept = default;
  process(const process&) = delete;
  process& operator=(const process&) = delete;
  ~process();

  [[nodiscard]] int pid() const;
  [[nodiscard]] bool valid() const noexcept { return child_ != nullptr; }

  /// Waits until the child exits and gives its return code (at once if it has). Several tasks may wait.
  /// Cancellable: cancelling the wait leaves the child running, and the loop still reaps it later.
  /// Waiting with stdout_/stderr_ piped and unread can deadlock if the child fills the pipe, as in
  /// asyncio: use communicate() then.
  [[nodiscard]] task<int> wait();
  /// The return code once the child was reaped, else nullopt.
  [[nodiscard]] std::optional<int> returncode() const;

  /// Writes `input` to stdin_ (if piped) and closes it, reads stdout_ and stderr_ (if piped) to their
  /// end concurrently, then waits for the child (and for stdin_ to be closed). The input is flushed in
  /// the background as the child reads it, so large inputs and outputs cannot deadlock. A child that
  /// exits or closes its stdin without reading all the input is not an error (asyncio ignores
  /// BrokenPipeError there). invalid_state_error if `input` is not empty and stdin_ is not a pipe or is
  /// closed already. Cancellable: the child keeps running, and what was read so far is lost. The process
  /// object may be moved or destroyed while it runs (it holds the child and the streams itself).
  [[nodiscard]] task<communicate_result> communicate(std::string input);
  /// communicate() with no input: stdin_ (if piped) is just closed.
  [[nodiscard]] task<communicate_result> communicate();

  /// Sends signal `sig` to the child. Returns false and does nothing if the child was already reaped
  /// (Popen.send_signal's rule): with a pidfd the signal can never reach a process that reused the pid.
  /// std::system_error for an invalid signal number; loop_error once the loop closed.
  bool send_signal(int sig);
  /// SIGTERM.
  bool terminate();
  /// SIGKILL.
  bool kill();

  stream_writer stdin_;
  stream_reader stdout_;
  stream_reader stderr_;

private:
  std::shared_ptr<detail::child_process> child_;
};

/// Starts `program` with arguments `args` (argv is program, args...), asyncio.create_subprocess_exec.
/// A program without a '/' is looked up in PATH — the child's PATH if the options set one, else the
/// parent's. Raises std::system_error naming the program when it cannot start: not found (ENOENT), not
/// executable (EACCES), a bad cwd (naming the directory), a bad fd; nothing is left behind then (no
/// zombie, no fd). std::invalid_argument, before anything starts, for a NUL byte in the program, an
/// argument, the cwd, an environment variable or a user or group name (the C calls would cut the string
/// there). Needs a running event loop (loop_error otherwise).
[[nodiscard]] task<process> create_subprocess_exec(std::string program, std::vector<std::string> args,
                                                   process_options options);
// Overloads, not default arguments: g++ 12 destroys a defaulted `process_options options = {}` twice when
// the call is written inside co_await (HAZARDS.md §2); here the defaults are made outside the caller's
// coroutine.
[[nodiscard]] task<process> create_subprocess_exec(std::string program, std::vector<std::string> args);
[[nodiscard]] task<process> create_subprocess_exec(std::string program);

/// Runs `command` with /bin/sh -c (asyncio.create_subprocess_shell). The shell's own errors (command not
/// found: 127) are return codes, not exceptions.
[[nodiscard]] task<process> create_subprocess_shell(std::string command, process_options options);
[[nodiscard]] task<process> create_subprocess_shell(std::string command);

} // namespace corio
