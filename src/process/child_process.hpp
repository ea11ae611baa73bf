// What the loop knows about a child process, and the per-loop watcher that reaps children (internal).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "corio/detail/io_waiter.hpp"
#include "corio/detail/wait_node.hpp"
#include "corio/event_loop.hpp"
#include "corio/process_options.hpp"
#include "corio/task.hpp"
#include "spawn.hpp"

namespace corio::detail {

class child_watcher;

/// One child, shared by its process object and the loop's watcher (which holds it until it is reaped,
/// so that a child whose process object is gone is still reaped). Lives on the loop's thread.
///
/// States: running (returncode empty; with a pidfd, armed for readability on the loop) -> reaped
/// (returncode set, pidfd closed, waiters woken, dropped by the watcher). Or, when the loop closes
/// first: running -> handed off (loop null; the pidfd now belongs to the background reaper thread).
class child_process final : public io_waiter {
public:
  child_process(event_loop& loop, int pid, int pidfd, std::string program) noexcept
      : pid(pid), pidfd(pidfd), program(std::move(program)), loop(&loop) {}
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process();

  /// waitid(WNOHANG): if the child has exited, records it (finish) and returns true.
  bool try_reap() noexcept;
  /// Watches the pidfd (pidfd mode).
  void arm();
  /// The pidfd is readable: the child exited.
  void ready() noexcept override;
  /// Gives the pidfd up to the background reaper (loop close); returns it.
  int hand_off() noexcept;

  const int pid;
  int pidfd;                 // -1: watched through SIGCHLD (or reaped, or handed off)
  const std::string program; // for messages
  std::optional<int> returncode;
  wait_list waiters; // process::wait() calls (transport_wait nodes)
  event_loop* loop;  // null once handed off
  child_watcher* watcher = nullptr;
  bool armed = false;

private:
  void finish(int code) noexcept;
  void close_pidfd() noexcept;
};

/// The children of one loop that are not reaped yet. Kept in the loop's services (loop_services.hpp)
/// and destroyed when the loop closes: children that already exited are reaped then, and the others
/// are handed to a background thread that reaps them as they exit (they are not killed).
///
/// Children without a pidfd are watched through SIGCHLD, which is process-directed: with several loops
/// on several threads, the loop whose signalfd takes it may not be the one whose child exited. So the
/// watchers that handle SIGCHLD are listed process-wide, and a loop that takes a SIGCHLD (or discards
/// one when it removes its handler: signals.cpp calls sigchld_taken) has every other listed loop poll
/// its own children. Each loop reaps only its own children, on its own thread (never waitpid(-1)).
class child_watcher {
public:
  explicit child_watcher(event_loop& loop) noexcept : loop_(loop) {}
  child_watcher(const child_watcher&) = delete;
  child_watcher& operator=(const child_watcher&) = delete;
  ~child_watcher();

  /// The watcher of `loop`, created on first use.
  static child_watcher& of(event_loop& loop);

  /// Watches a new child: arms its pidfd, or (no pidfd) makes sure SIGCHLD is handled; then reaps it at
  /// once if it already exited (a SIGCHLD from before the handler existed was lost).
  void add(const std::shared_ptr<child_process>& c);
  /// Forgets a reaped child (the last thing child_process::finish does: it may destroy the child).
  /// When the last child watched through SIGCHLD is gone, the SIGCHLD handler is removed (retire).
  void remove(int pid, bool by_sigchld) noexcept;
  /// SIGCHLD arrived: reap every child without a pidfd that has exited.
  void on_sigchld() noexcept;
  /// Another loop took a SIGCHLD (posted by sigchld_taken, or by a loop that stopped handling SIGCHLD):
  /// polls this loop's children, then retires the handler if it may.
  void check() noexcept;
  [[nodiscard]] std::size_t size() const noexcept { return children_.size(); }

private:
  /// Removes the SIGCHLD handler once no child of this loop needs it and no other loop handles SIGCHLD:
  /// while another does, this loop keeps SIGCHLD blocked and read, else its thread (if SIGCHLD was not
  /// blocked there before) could take a SIGCHLD meant for the other loop's child and drop it.
  void retire() noexcept;

  event_loop& loop_;
  std::map<int, std::shared_ptr<child_process>> children_; // by pid: unique among unreaped children
  std::weak_ptr<child_watcher> self_;                      // for the SIGCHLD handler, which may outlive a call
  bool sigchld_ = false;                                   // the SIGCHLD handler is installed
  std::size_t sigchld_children_ = 0;                       // children in children_ without a pidfd
};

/// A child just started and watched (start_child): its state, and the parent's ends of its pipes.
struct started_child {
  std::shared_ptr<child_process> child;
  spawned_child fds;
};

/// Starts `program` with `args` as create_subprocess_exec describes (PATH lookup, options, errors naming
/// the program) and has the loop's watcher reap it. `who` names the caller in errors (no running loop:
/// loop_error).
started_child start_child(std::string program, std::vector<std::string> args, const process_options& o,
                          const char* who);
/// Waits until `c` is reaped and gives its return code; loop_error once its loop closed. Cancellable.
task<int> wait_child(std::shared_ptr<child_process> c, const char* who);
/// Sends `sig` to `c`: false if it was reaped already; std::system_error for a bad signal; loop_error
/// once its loop closed. `who` names the caller in errors.
bool signal_child(const child_process& c, int sig, const char* who);
/// "stdout of prog (pid 12)": how a child's pipe is named in errors.
std::string child_pipe_label(const char* which, const std::string& program, int pid);

/// Reaps children on a detached thread (all signals blocked) as they exit: {pid, pidfd or -1}.
void reap_in_background(std::vector<std::pair<int, int>> orphans) noexcept;

} // namespace corio::detail
