// spawn_child: posix_spawn with pipes, /dev/null, the caller's fds, cwd and environment.
#include "spawn.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <system_error>

extern char** environ;

namespace corio::detail {

namespace {

[[noreturn]] void fail(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

std::string quoted(const std::string& s) { return std::string("'") + s + "'"; }

/// Owns the fds made for one spawn (pipe ends the child gets, duplicates of the caller's fds).
struct fd_list {
  std::vector<int> fds;
  fd_list() = default;
  fd_list(const fd_list&) = delete;
  fd_list& operator=(const fd_list&) = delete;
  ~fd_list() {
    for (int fd : fds)
      ::close(fd);
  }
  int keep(int fd) {
    fds.push_back(fd);
    return fd;
  }
};

/// posix_spawn's attribute and file-action objects, destroyed with the scope.
struct spawn_objects {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  spawn_objects() {
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawnattr_init(&attr);
  }
  spawn_objects(const spawn_objects&) = delete;
  spawn_objects& operator=(const spawn_objects&) = delete;
  ~spawn_objects() {
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);
  }
};

/// The environment the child gets as "NAME=value" strings; empty optional: the parent's, unchanged.
std::optional<std::vector<std::string>> child_environment(const process_options& o) {
  if (!o.env && o.extra_env.empty())
    return std::nullopt;
  environment all;
  if (o.env) {
    all = *o.env;
  } else {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string_view entry(*e);
      auto eq = entry.find('=');
      if (eq != std::string_view::npos)
        all.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    }
  }
  for (const auto& [name, value] : o.extra_env)
    all[name] = value;
  std::vector<std::string> out;
  for (const auto& [name, value] : all) {
    if (name.empty() || name.find('=') != std::string::npos || name.find('\0') != std::string::npos ||
        value.find('\0') != std::string::npos)
      throw std::invalid_argument("corio: environment variable name or value not allowed: " + quoted(name));
    out.push_back(name + "=" + value);
  }
  return out;
}

/// Finds a program without a '/' in PATH (the child's if the options set it, else the parent's), as
/// execvp does; returns the path to exec. ENOENT if no directory has it, EACCES if none lets us run it.
std::string find_program(const std::string& program, const std::optional<std::vector<std::string>>& env) {
  if (program.find('/') != std::string::npos)
    return program;
  std::string path;
  bool found = false;
  if (env) {
    for (const std::string& e : *env)
      if (e.rfind("PATH=", 0) == 0) {
        path = e.substr(5), found = true;
        break;
      }
  } else if (const char* p = ::getenv("PATH")) {
    path = p, found = true;
  }
  if (!found)
    path = "/bin:/usr/bin"; // glibc's execvp default
  int err = ENOENT;
  std::size_t start = 0;
  for (;;) {
    std::size_t end = path.find(':', start);
    std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + program;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0)
        return candidate;
      err = EACCES;
    }
    if (end == std::string::npos)
      break;
    start = end + 1;
  }
  fail(err, "corio: cannot run " + quoted(program) + (err == ENOENT ? " (not found in PATH)" : ""));
}

/// A pipe: {parent's end, child's end}; the parent's end non-blocking, both close-on-exec. The child's
/// end is kept at 3 or above, so that no dup2 onto 0-2 can overwrite it before it is used.
std::pair<socket, int> make_pipe(bool child_reads, fd_list& owned) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0)
    fail(errno, "corio: create_subprocess: pipe");
  socket parent = socket::adopt(child_reads ? p[1] : p[0]);
  int child = owned.keep(child_reads ? p[0] : p[1]);
  if (child < 3) {
    int moved = ::fcntl(child, F_DUPFD_CLOEXEC, 3);
    if (moved < 0)
      fail(errno, "corio: create_subprocess: fcntl");
    child = owned.keep(moved);
  }
  int flags = ::fcntl(parent.fd(), F_GETFL);
  if (flags < 0 || ::fcntl(parent.fd(), F_SETFL, flags | O_NONBLOCK) < 0)
    fail(errno, "corio: create_subprocess: fcntl");
  return {std::move(parent), child};
}

const char* stream_name(int target) { return target == 0 ? "stdin" : target == 1 ? "stdout" : "stderr"; }

/// Sets up the child's fd `target` (0, 1 or 2) as `spec` says; returns the parent's pipe end if any.
socket redirect(int target, const stdio_spec& spec, spawn_objects& so, fd_list& owned) {
  using kind = stdio_spec::kind;
  int source = -1;
  socket parent;
  switch (spec.how) {
  case kind::inherit:
    return parent;
  case kind::pipe: {
    auto [end, child] = make_pipe(target == 0, owned);
    parent = std::move(end);
    source = child;
    break;
  }
  case kind::devnull:
    source = owned.keep(::open("/dev/null", (target == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC));
    if (source < 0)
      fail(errno, "corio: create_subprocess: open /dev/null");
    break;
  case kind::fd:
    // A duplicate at 3 or above: the caller's fd may itself be 0-2 (stderr_ = stdio::fd(1)), which the
    // other redirections overwrite first.
    source = spec.fd < 0 ? -1 : ::fcntl(spec.fd, F_DUPFD_CLOEXEC, 3);
    if (source < 0)
      fail(spec.fd < 0 ? EBADF : errno,
           std::string("corio: create_subprocess: ") + stream_name(target) + " = fd " + std::to_string(spec.fd));
    owned.keep(source);
    break;
  case kind::merge_stdout:
    if (target != 2)
      throw std::invalid_argument(std::string("corio: create_subprocess: ") + stream_name(target) +
                                  " cannot be stdio::stdout_ (only stderr can)");
    source = 1; // stdout is set up first, so this is wherever it went
    break;
  }
  // dup2 clears close-on-exec on the copy (and glibc clears it when source == target).
  if (int e = ::posix_spawn_file_actions_adddup2(&so.actions, source, target); e != 0)
    fail(e, "corio: create_subprocess: posix_spawn_file_actions_adddup2");
  return parent;
}

/// After posix_spawn failed with `err`: was it the working directory? Then say so.
std::string failure_message(const std::string& program, const process_options& o, int err) {
  std::string what = "corio: cannot run " + quoted(program);
  if (!o.cwd.empty() && (err == ENOENT || err == ENOTDIR || err == EACCES)) {
    struct stat st {};
    if (::stat(o.cwd.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || ::access(o.cwd.c_str(), X_OK) != 0)
      what += " in cwd " + quoted(o.cwd);
  }
  if (err == EPERM && o.process_group && !o.start_new_session)
    what += " in process group " + std::to_string(*o.process_group);
  return what;
}

} // namespace

spawned_child spawn_child(const std::vector<std::string>& argv, const process_options& o) {
  if (argv.empty() || argv[0].empty())
    throw std::invalid_argument("corio: create_subprocess_exec: empty program name");
  for (const std::string& a : argv)
    if (a.find('\0') != std::string::npos)
      throw std::invalid_argument("corio: create_subprocess_exec: an argument contains a NUL byte");
  for (int fd : o.pass_fds) {
    if (fd < 3)
      throw std::invalid_argument("corio: create_subprocess_exec: pass_fds " + std::to_string(fd) +
                                  ": 0, 1 and 2 are the child's stdio (stdin_, stdout_, stderr_)");
    if (::fcntl(fd, F_GETFD) < 0)
      throw std::system_error(errno, std::system_category(),
                              "corio: create_subprocess_exec: pass_fds " + std::to_string(fd));
  }
  if (o.process_group && *o.process_group < 0)
    throw std::invalid_argument("corio: create_subprocess_exec: process_group " + std::to_string(*o.process_group) +
                                " is negative");
  const std::optional<std::vector<std::string>> env = child_environment(o);
  const std::string path = find_program(argv[0], env);

  spawn_objects so;
  fd_list owned;
  spawned_child c;
  c.in = redirect(0, o.stdin_, so, owned);
  c.out = redirect(1, o.stdout_, so, owned);
  c.err = redirect(2, o.stderr_, so, owned);
  // Only 0-2 and pass_fds stay open in the child (Python's close_fds=True): also fds of the program's
  // that are not close-on-exec. Below the highest fd passed, each other fd is closed one by one (closing
  // one that is not open does not fail glibc's posix_spawn); dup2 of a passed fd onto itself clears its
  // close-on-exec flag (POSIX 2024, glibc); above it, closefrom (glibc 2.34).
  std::vector<int> pass = o.pass_fds;
  std::sort(pass.begin(), pass.end());
  pass.erase(std::unique(pass.begin(), pass.end()), pass.end());
  int next = 3;
  for (int p : pass) {
    for (; next < p; ++next)
      if (int e = ::posix_spawn_file_actions_addclose(&so.actions, next); e != 0)
        fail(e, "corio: create_subprocess: posix_spawn_file_actions_addclose");
    if (int e = ::posix_spawn_file_actions_adddup2(&so.actions, p, p); e != 0)
      fail(e, "corio: create_subprocess: posix_spawn_file_actions_adddup2 of pass_fds " + std::to_string(p));
    next = p + 1;
  }
  if (int e = ::posix_spawn_file_actions_addclosefrom_np(&so.actions, next); e != 0)
    fail(e, "corio: create_subprocess: posix_spawn_file_actions_addclosefrom_np");
  if (!o.cwd.empty())
    if (int e = ::posix_spawn_file_actions_addchdir_np(&so.actions, o.cwd.c_str()); e != 0)
      fail(e, "corio: create_subprocess: posix_spawn_file_actions_addchdir_np");

  // The loop thread blocks the signals it handles through signalfd (and SIGPIPE may be ignored): the
  // child starts with an empty mask and SIGPIPE / SIGXFSZ at their default action (Python's
  // restore_signals); other handlers are reset by exec itself.
  sigset_t none, defaults;
  ::sigemptyset(&none);
  ::sigemptyset(&defaults);
  ::sigaddset(&defaults, SIGPIPE);
  ::sigaddset(&defaults, SIGXFSZ);
  ::posix_spawnattr_setsigmask(&so.attr, &none);
  ::posix_spawnattr_setsigdefault(&so.attr, &defaults);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (o.start_new_session) {
    flags |= POSIX_SPAWN_SETSID; // glibc 2.26
  } else if (o.process_group) {
    ::posix_spawnattr_setpgroup(&so.attr, static_cast<pid_t>(*o.process_group));
    flags |= POSIX_SPAWN_SETPGROUP;
  }
  ::posix_spawnattr_setflags(&so.attr, flags);

  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  if (env) {
    for (const std::string& e : *env)
      envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  pid_t pid = -1;
  int e = ::posix_spawn(&pid, path.c_str(), &so.actions, &so.attr, args.data(), env ? envp.data() : environ);
  if (e != 0)
    fail(e, failure_message(argv[0], o, e));
  c.pid = pid;
  return c; // `owned` closes the child's ends of the pipes here
}

} // namespace corio::detail
