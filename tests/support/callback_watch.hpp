// Helpers for tests that wait for callbacks (protocols): a watched wait, test data, exception details.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include <corio/event_loop.hpp>
#include <corio/sleep.hpp>
#include <corio/sync/event.hpp>
#include <corio/task.hpp>

namespace corio::testing {

/// What a test shares with the callbacks it waits for: each callback calls poke(), the test awaits
/// next() in a loop around its condition. The waits are for I/O, which a mock clock cannot bound (it
/// jumps to a timer whenever every task waits, I/O in flight or not): a watchdog thread makes next()
/// raise after 30 s of real time instead of letting a broken test hang. Make it inside the loop's task.
class callback_watch {
public:
  callback_watch() {
    event_loop* loop = event_loop::current();
    if (loop == nullptr)
      return; // made outside the loop (it may be gone before the watchdog): no watchdog
    dog_ = std::thread([this, loop, alive = alive_] {
      std::unique_lock lock(m_);
      if (cv_.wait_for(lock, std::chrono::seconds(30), [this] { return done_; }))
        return;
      loop->call_soon_threadsafe([this, alive] {
        if (*alive) {
          expired_ = true;
          poke();
        }
      });
    });
  }
  callback_watch(const callback_watch&) = delete;
  callback_watch& operator=(const callback_watch&) = delete;
  ~callback_watch() {
    *alive_ = false; // on the loop's thread: a watchdog callback still queued does nothing
    {
      std::lock_guard lock(m_);
      done_ = true;
    }
    cv_.notify_one();
    if (dog_.joinable())
      dog_.join();
  }

  void poke() { changed_.set(); }
  [[nodiscard]] bool expired() const noexcept { return expired_; }

  /// Waits until the next poke(); raises std::runtime_error naming `what` once the watchdog expired.
  task<> next(const char* what) {
    if (!expired_) {
      changed_.clear();
      co_await changed_.wait();
    }
    if (expired_)
      throw std::runtime_error(std::string("timed out waiting for ") + what);
  }

private:
  event changed_;
  bool expired_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread dog_;
};

/// n bytes that differ from their neighbours and from any shifted copy (a lost or repeated chunk shows).
inline std::string pattern(std::size_t n, std::size_t seed = 0) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>((i * 131 + i / 251 + seed) & 0xff);
  return s;
}

/// Yields to the loop n times (lets whatever is ready run; nothing here waits for time).
inline task<> spin(int n) {
  for (int i = 0; i < n; ++i)
    co_await sleep(std::chrono::milliseconds(0));
}

/// The errno of a std::system_error in e; -1 for none or another exception.
inline int error_code(const std::exception_ptr& e) {
  if (e == nullptr)
    return -1;
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error& s) {
    return s.code().value();
  } catch (...) {
  }
  return -1;
}

/// what() of the exception in e; "(none)" for none.
inline std::string error_text(const std::exception_ptr& e) {
  if (e == nullptr)
    return "(none)";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
  }
  return {};
}

} // namespace corio::testing
