// spawn_child: posix_spawn with pipes, /dev/null, the caller's fds, cwd and environment; fork and exec
// by hand when the child also needs what posix_spawn cannot do (umask, user, group, extra_groups).
#include "spawn.hpp"

#include "../core/nul_check.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
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

/// One step of setting up the child's fds, in order: posix_spawn's file actions, or done by hand in a
/// forked child (fork_exec).
struct fd_action {
  enum class op : unsigned char {
    dup2,     // a onto b (a == b: only clears close-on-exec)
    close,    // a, if it is open
    closefrom // every fd from a up
  } what;
  int a = -1;
  int b = -1;
};
using fd_actions = std::vector<fd_action>;

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
socket redirect(int target, const stdio_spec& spec, fd_actions& acts, fd_list& owned) {
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
  acts.push_back({fd_action::op::dup2, source, target});
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

/// The ids the child takes on (process_options::user, group, extra_groups), looked up before anything
/// starts.
struct child_ids {
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::optional<std::vector<gid_t>> groups;
};

/// A number checked, or a name looked up with `get` (getpwnam_r or getgrnam_r), whose entry's `field` is
/// the id.
template <class Entry, class Id> Id resolve_id(const user_or_group& u, const char* option,
                                               int (*get)(const char*, Entry*, char*, std::size_t, Entry**),
                                               Id Entry::*field) {
  reject_nul(u.name, "create_subprocess_exec", option); // getpwnam would look up what comes before it
  if (u.name.empty()) {
    if (u.number < 0 || u.number >= static_cast<long long>(static_cast<Id>(-1)))
      throw std::invalid_argument(std::string("corio: create_subprocess_exec: ") + option + " " +
                                  std::to_string(u.number) + " is not a valid id");
    return static_cast<Id>(u.number);
  }
  std::vector<char> buf(16 * 1024);
  for (;;) {
    Entry entry{};
    Entry* found = nullptr;
    int e = get(u.name.c_str(), &entry, buf.data(), buf.size(), &found);
    if (e == ERANGE && buf.size() < 1024 * 1024) {
      buf.resize(buf.size() * 4);
      continue;
    }
    if (e == 0 && found != nullptr)
      return entry.*field;
    if (e == 0)
      throw std::invalid_argument(std::string("corio: create_subprocess_exec: ") + option + " " + quoted(u.name) +
                                  ": no such " + (std::string_view(option) == "user" ? "user" : "group"));
    fail(e, std::string("corio: create_subprocess_exec: looking up ") + option + " " + quoted(u.name));
  }
}

uid_t user_id(const user_or_group& u) { return resolve_id(u, "user", ::getpwnam_r, &passwd::pw_uid); }

gid_t group_id(const user_or_group& g, const char* option) {
  return resolve_id(g, option, ::getgrnam_r, &group::gr_gid);
}

child_ids resolve_ids(const process_options& o) {
  child_ids ids;
  if (o.user)
    ids.uid = user_id(*o.user);
  if (o.group)
    ids.gid = group_id(*o.group, "group");
  if (o.extra_groups) {
    ids.groups.emplace();
    for (const user_or_group& g : *o.extra_groups)
      ids.groups->push_back(group_id(g, "extra_groups"));
  }
  return ids;
}

/// The fork_exec child's step that failed, with its errno, sent to the parent through a pipe.
enum class child_step : int { setsid, setpgid, dup2, chdir, setgroups, setgid, setuid, exec };
struct child_error {
  child_step step;
  int err;
};

[[noreturn]] void child_died(int errfd, child_step step, int err) noexcept {
  const child_error ce{step, err};
  [[maybe_unused]] ssize_t n = ::write(errfd, &ce, sizeof ce);
  ::_exit(127);
}

/// The forked child: async-signal-safe calls only (the parent may have other threads, holding locks),
/// then exec. Signals are blocked on entry (fork_exec blocked them); a failure is written to `errfd`.
[[noreturn]] void run_child(const char* path, char* const* argv, char* const* envp, const fd_actions& acts,
                            const process_options& o, const child_ids& ids, const gid_t* groups, int errfd,
                            int fd_limit) noexcept {
  auto die = [errfd](child_step step, int err) { child_died(errfd, step, err); };
  // As posix_spawn does: a handler of the parent's must not run here, and SIGPIPE / SIGXFSZ go back to
  // their default action (Python's restore_signals); what is ignored stays ignored.
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction sa {};
    if (sig == SIGKILL || sig == SIGSTOP || ::sigaction(sig, nullptr, &sa) != 0)
      continue;
    const bool handled = (sa.sa_flags & SA_SIGINFO) != 0 || (sa.sa_handler != SIG_IGN && sa.sa_handler != SIG_DFL);
    if (handled || sig == SIGPIPE || sig == SIGXFSZ) {
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      ::sigemptyset(&dfl.sa_mask);
      ::sigaction(sig, &dfl, nullptr);
    }
  }
  if (o.start_new_session) {
    if (::setsid() < 0)
      die(child_step::setsid, errno);
  } else if (o.process_group) {
    if (::setpgid(0, static_cast<pid_t>(*o.process_group)) < 0)
      die(child_step::setpgid, errno);
  }
  for (const fd_action& a : acts) {
    switch (a.what) {
    case fd_action::op::dup2:
      if (a.a == a.b ? ::fcntl(a.a, F_SETFD, 0) < 0 : ::dup2(a.a, a.b) < 0)
        die(child_step::dup2, errno);
      break;
    case fd_action::op::close:
      if (a.a != errfd)
        ::close(a.a); // not open: nothing to do, as with posix_spawn
      break;
    case fd_action::op::closefrom:
      // Around the error pipe, which closes itself at exec. A kernel before 5.9 has no close_range:
      // then one by one, up to the fd limit.
      if ((errfd > a.a &&
           ::syscall(SYS_close_range, static_cast<unsigned>(a.a), static_cast<unsigned>(errfd - 1), 0u) < 0) ||
          ::syscall(SYS_close_range, static_cast<unsigned>(std::max(a.a, errfd + 1)), ~0u, 0u) < 0)
        for (int fd = a.a; fd < fd_limit; ++fd)
          if (fd != errfd)
            ::close(fd);
      break;
    }
  }
  if (!o.cwd.empty() && ::chdir(o.cwd.c_str()) < 0)
    die(child_step::chdir, errno);
  if (o.umask)
    ::umask(static_cast<mode_t>(*o.umask));
  // Raw system calls: glibc's set*id() would try to bring the parent's other threads along.
  if (ids.groups && ::syscall(SYS_setgroups, ids.groups->size(), groups) < 0)
    die(child_step::setgroups, errno);
  if (ids.gid && ::syscall(SYS_setgid, *ids.gid) < 0)
    die(child_step::setgid, errno);
  if (ids.uid && ::syscall(SYS_setuid, *ids.uid) < 0)
    die(child_step::setuid, errno);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(path, argv, envp);
  child_died(errfd, child_step::exec, errno);
}

/// What failed in a fork_exec child, for the exception.
std::string child_failure(const std::string& program, const process_options& o, const child_ids& ids, child_step step) {
  std::string what = "corio: cannot run " + quoted(program);
  switch (step) {
  case child_step::setsid:
    return what + " in a new session (setsid)";
  case child_step::setpgid:
    return what + " in process group " + std::to_string(o.process_group.value_or(0));
  case child_step::dup2:
    return what + ": dup2 of its stdin, stdout, stderr or pass_fds";
  case child_step::chdir:
    return what + " in cwd " + quoted(o.cwd);
  case child_step::setgroups:
    return what + " with extra_groups (setgroups)";
  case child_step::setgid:
    return what + " as group " + std::to_string(ids.gid.value_or(0)) + " (setgid)";
  case child_step::setuid:
    return what + " as user " + std::to_string(ids.uid.value_or(0)) + " (setuid)";
  case child_step::exec:
    break;
  }
  return what;
}

/// fork, set the child up as process_options says (run_child), exec: for what posix_spawn cannot do.
/// The child reports a failed step through a close-on-exec pipe; the parent then reaps it and raises,
/// as posix_spawn does.
pid_t fork_exec(const std::string& path, char* const* argv, char* const* envp, const fd_actions& acts,
                const std::vector<std::string>& args, const process_options& o, const child_ids& ids) {
  int ep[2];
  if (::pipe2(ep, O_CLOEXEC) < 0)
    fail(errno, "corio: create_subprocess: pipe");
  // The write end above every fd the child's actions touch (0-2, the pipes' child ends, pass_fds), so
  // no dup2 or close among them hits it.
  int top = 3;
  for (const fd_action& a : acts)
    top = std::max({top, a.a + 1, a.b + 1});
  const int errfd = ::fcntl(ep[1], F_DUPFD_CLOEXEC, top);
  const int dup_err = errno;
  ::close(ep[1]);
  if (errfd < 0) {
    ::close(ep[0]);
    fail(dup_err, "corio: create_subprocess: fcntl");
  }
  const std::vector<gid_t> groups = ids.groups.value_or(std::vector<gid_t>{});
  rlimit nofile{};
  const int fd_limit = ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < (1u << 20)
                           ? static_cast<int>(nofile.rlim_cur)
                           : 1 << 20; // only without close_range (Linux before 5.9)
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = ::fork();
  if (pid == 0)
    run_child(path.c_str(), argv, envp, acts, o, ids, groups.data(), errfd, fd_limit);
  const int fork_err = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::close(errfd);
  if (pid < 0) {
    ::close(ep[0]);
    fail(fork_err, "corio: create_subprocess: fork");
  }
  child_error ce{};
  ssize_t n;
  do
    n = ::read(ep[0], &ce, sizeof ce);
  while (n < 0 && errno == EINTR);
  ::close(ep[0]);
  if (n != static_cast<ssize_t>(sizeof ce))
    return pid; // end of file: exec closed the pipe
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  fail(ce.err,
       ce.step == child_step::exec ? failure_message(args[0], o, ce.err) : child_failure(args[0], o, ids, ce.step));
}

} // namespace

spawned_child spawn_child(const std::vector<std::string>& argv, const process_options& o) {
  if (argv.empty() || argv[0].empty())
    throw std::invalid_argument("corio: create_subprocess_exec: empty program name");
  // execve and chdir take C strings: a NUL would silently cut the program, an argument or the cwd short.
  reject_nul(argv[0], "create_subprocess_exec", "the program");
  for (std::size_t i = 1; i < argv.size(); ++i)
    reject_nul(argv[i], "create_subprocess_exec", ("argument " + std::to_string(i)).c_str());
  reject_nul(o.cwd, "create_subprocess_exec", "cwd");
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
  if (o.umask && *o.umask > 0777) {
    char octal[16];
    std::snprintf(octal, sizeof octal, "0%o", *o.umask);
    throw std::invalid_argument(std::string("corio: create_subprocess_exec: umask ") + octal + " is above 0777");
  }
  const child_ids ids = resolve_ids(o);
  const std::optional<std::vector<std::string>> env = child_environment(o);
  const std::string path = find_program(argv[0], env);

  fd_actions acts;
  fd_list owned;
  spawned_child c;
  c.in = redirect(0, o.stdin_, acts, owned);
  c.out = redirect(1, o.stdout_, acts, owned);
  c.err = redirect(2, o.stderr_, acts, owned);
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
      acts.push_back({fd_action::op::close, next});
    acts.push_back({fd_action::op::dup2, p, p});
    next = p + 1;
  }
  acts.push_back({fd_action::op::closefrom, next});

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
  char* const* child_env = env ? envp.data() : environ;

  if (o.umask || o.user || o.group || o.extra_groups) {
    c.pid = fork_exec(path, args.data(), child_env, acts, argv, o, ids);
    return c; // `owned` closes the child's ends of the pipes here
  }

  spawn_objects so;
  for (const fd_action& a : acts) {
    int e = 0;
    switch (a.what) {
    case fd_action::op::dup2:
      e = ::posix_spawn_file_actions_adddup2(&so.actions, a.a, a.b);
      break;
    case fd_action::op::close:
      e = ::posix_spawn_file_actions_addclose(&so.actions, a.a);
      break;
    case fd_action::op::closefrom:
      e = ::posix_spawn_file_actions_addclosefrom_np(&so.actions, a.a);
      break;
    }
    if (e != 0)
      fail(e, "corio: create_subprocess: posix_spawn_file_actions");
  }
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

  pid_t pid = -1;
  int e = ::posix_spawn(&pid, path.c_str(), &so.actions, &so.attr, args.data(), child_env);
  if (e != 0)
    fail(e, failure_message(argv[0], o, e));
  c.pid = pid;
  return c; // `owned` closes the child's ends of the pipes here
}

} // namespace corio::detail
