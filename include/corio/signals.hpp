// corio::add_signal_handler / remove_signal_handler (loop.add_signal_handler), and corio::run()'s Ctrl-C.
#pragma once

#include <memory>

#include "corio/detail/unique_function.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"

namespace corio {

/// Calls fn on `loop`, as a callback (call_soon), after signal `signo` arrives (asyncio's
/// loop.add_signal_handler). One handler per signal and loop: a second call replaces the handler.
/// Standard signals that arrive while one is still pending are delivered once (the kernel merges them).
///
/// How: the signal is blocked in the calling thread, which must be the thread that runs the loop (the
/// signal mask is per thread), and read from a signalfd the loop watches (one fd waiter per loop, for
/// all its signals). A process-directed signal reaches the loop only if every other thread blocks it:
/// corio's pool threads do; block it in threads you create before adding the handler (a thread that
/// does not gets it with the signal's disposition — for SIGINT or SIGTERM, ending the process).
/// corio::run()'s own Ctrl-C handling has no such limit (see detail::sigint_guard).
/// Throws std::invalid_argument for a signal number out of range, SIGKILL and SIGSTOP (cannot be
/// caught) and the fault signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS); loop_error on a
/// closed loop or from another thread while the loop runs; std::system_error if signalfd() fails.
void add_signal_handler(event_loop& loop, int signo, detail::unique_function fn);

/// Removes the handler of `signo`; returns false if there was none. The signal's blocked state goes
/// back to what it was before add_signal_handler(); an instance of it still pending is discarded first
/// (it arrived while the handler was installed, and would otherwise get the default action — for
/// SIGINT, ending the process). Call it on the loop's thread. Closing the loop removes every handler.
bool remove_signal_handler(event_loop& loop, int signo);

/// Raised by corio::run() when Ctrl-C (SIGINT) cancelled the main task and the main task ended
/// cancelled (asyncio.run raises KeyboardInterrupt). A cancelled_error, so a handler for those also
/// catches it. A program that wants the shell's convention can `return 130;` for it.
class keyboard_interrupt : public cancelled_error {
public:
  [[nodiscard]] const char* what() const noexcept override;
};

namespace detail {

/// corio::run()'s Ctrl-C handling while its main task runs. Installed only where asyncio.run installs
/// its own: on the main thread, when SIGINT has its default disposition, and not with a virtual clock (a
/// test). Unlike add_signal_handler it does not depend on threads' signal masks: a real handler
/// (sigaction, as asyncio's signal.signal) runs on whichever thread the kernel picks and only wakes the
/// loop through an eventfd; the loop then calls on_interrupt as a callback. The calling thread unblocks
/// SIGINT meanwhile (if the program blocked it, no thread might take it). The handler resets itself
/// (SA_RESETHAND), so a second Ctrl-C gets the default action again (it ends a program stuck in a
/// blocking call) — after the first one reached the loop, the thread's mask is restored too. At the end the
/// disposition and the mask are put back as they were.
class sigint_guard {
public:
  sigint_guard(event_loop& loop, unique_function on_interrupt);
  ~sigint_guard();
  sigint_guard(const sigint_guard&) = delete;
  sigint_guard& operator=(const sigint_guard&) = delete;
  [[nodiscard]] bool installed() const noexcept { return state_ != nullptr; }

private:
  struct state;
  event_loop& loop_;
  std::shared_ptr<state> state_; // shared with the handler, which may run after the guard is gone
};

} // namespace detail

} // namespace corio
