// corio::process_options: how create_subprocess_exec / create_subprocess_shell start a child.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace corio {

/// Where one of the child's standard streams goes (subprocess.PIPE, DEVNULL, STDOUT, an fd, or None).
struct stdio_spec {
  enum class kind : unsigned char {
    inherit,      // the parent's own stdin / stdout / stderr (Python's None)
    pipe,         // a pipe to the parent: process::stdin_ / stdout_ / stderr_
    devnull,      // /dev/null
    fd,           // an fd of the caller's, duplicated onto the child's stream (the caller keeps it)
    merge_stdout, // stderr only: wherever stdout goes (Python's subprocess.STDOUT)
  };
  kind how = kind::inherit;
  int fd = -1; // for kind::fd
};

namespace stdio {
inline constexpr stdio_spec inherit{stdio_spec::kind::inherit};
inline constexpr stdio_spec pipe{stdio_spec::kind::pipe};
inline constexpr stdio_spec devnull{stdio_spec::kind::devnull};
/// For stderr: merged into stdout (`2>&1`).
inline constexpr stdio_spec stdout_{stdio_spec::kind::merge_stdout};
/// The caller's fd `n` (a file, a socket, one end of a pipe): the child gets a duplicate of it.
constexpr stdio_spec fd(int n) noexcept { return {stdio_spec::kind::fd, n}; }
} // namespace stdio

/// Environment variables, name -> value.
using environment = std::map<std::string, std::string>;

/// A user or a group for process_options::user / group / extra_groups: a number, or a name that is looked
/// up (getpwnam / getgrnam) when the child is started.
struct user_or_group {
  user_or_group(int number) : number(number) {} // NOLINT(google-explicit-constructor): `.user = 1000`
  user_or_group(unsigned number) : number(static_cast<long long>(number)) {} // NOLINT: a uid_t / gid_t
  user_or_group(std::string name) : name(std::move(name)) {}                 // NOLINT: `.user = "nobody"`
  user_or_group(const char* name) : name(name) {}                            // NOLINT
  long long number = -1; // with an empty name: the id (negative: std::invalid_argument at the start)
  std::string name;      // when not empty: the name to look up
};

/// Options of create_subprocess_exec / create_subprocess_shell, for designated initialisers. With g++ 12,
/// name them (and the argument vector) before the co_await: a braced temporary inside a co_await
/// expression is copied bitwise and destroyed twice (HAZARDS.md 2).
///
///     corio::process_options o{.stdin_ = corio::stdio::pipe, .stdout_ = corio::stdio::pipe};
///     std::vector<std::string> args;
///     auto p = co_await corio::create_subprocess_exec("cat", std::move(args), std::move(o));
///
/// The child always starts with an empty signal mask, SIGPIPE and SIGXFSZ at their default action (as
/// Python's restore_signals), and only fds 0, 1 and 2 open, plus pass_fds (Python's close_fds): corio's
/// own fds are close-on-exec, and every other fd of the parent is closed in the child.
struct process_options {
  stdio_spec stdin_ = stdio::inherit;
  stdio_spec stdout_ = stdio::inherit;
  stdio_spec stderr_ = stdio::inherit; // may also be stdio::stdout_
  /// The child's working directory; empty: the parent's.
  std::string cwd{};
  /// Replaces the child's environment when set (Python's env=); otherwise it inherits the parent's.
  std::optional<environment> env{};
  /// Added to the environment (env, or the inherited one), replacing variables of the same name.
  environment extra_env{};
  /// readline()/readuntil() limit of the stdout_ and stderr_ readers (asyncio's limit=, 64 KiB). Must be
  /// positive: 0 raises std::invalid_argument before the child starts.
  std::size_t limit = 64 * 1024;
  /// How the child's exit is noticed: a pidfd (Linux 5.3+) when true and the kernel allows it, else
  /// SIGCHLD through the loop's signalfd (the fallback, see process.hpp). The environment variable
  /// CORIO_NO_PIDFD=1 forces the fallback for every child, as this does for one.
  bool use_pidfd = true;
  /// Python's start_new_session=True: the child calls setsid(), so it leads a new session and process
  /// group, with no controlling terminal; Ctrl-C in the terminal does not reach it. Its whole group,
  /// grandchildren included, is then signalled with ::killpg(p.pid(), sig).
  bool start_new_session = false;
  /// Python's process_group=N (3.11): the child joins process group N (setpgid); 0 makes a new group led
  /// by the child. Not used with start_new_session (which makes a new group anyway). A negative number
  /// raises std::invalid_argument; a group that does not exist (or is in another session) fails the
  /// start with std::system_error(EPERM).
  std::optional<int> process_group{};
  /// Python's pass_fds: fds of the caller's that the child also gets, at the same numbers (a socket
  /// or a pipe end for a worker). Each must be 3 or above and open (std::invalid_argument, or
  /// std::system_error(EBADF) naming it); the caller keeps its own. Every other fd is still closed.
  std::vector<int> pass_fds{};
  /// Python's umask=: the child's file mode creation mask (e.g. 027), set before exec; unset: the
  /// parent's. Above 0777 raises std::invalid_argument.
  std::optional<unsigned> umask{};
  /// Python's user=, group= and extra_groups=: the child runs as this user (setuid), with this group
  /// (setgid) and these supplementary groups (setgroups), set after its fds and cwd, just before exec.
  /// As in Python, user alone changes neither the group nor the supplementary groups. Changing them
  /// needs the privilege to (root, or CAP_SETUID / CAP_SETGID): without it the start fails with
  /// std::system_error(EPERM) naming the option. A name that does not exist, or a negative number,
  /// raises std::invalid_argument; nothing is started.
  std::optional<user_or_group> user{};
  std::optional<user_or_group> group{};
  std::optional<std::vector<user_or_group>> extra_groups{};
};

} // namespace corio
