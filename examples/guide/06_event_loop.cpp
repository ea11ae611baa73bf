// Guide, step 6: the event loop: callbacks, timers, running tasks, and the mock clock for tests.
#include <corio/corio.hpp>
#include <corio/testing/mock_clock.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

using namespace std::chrono_literals;

// [snippet: slow-answer]
corio::task<int> slow_answer() {
  co_await corio::sleep(1h);
  co_return 42;
}
// [end snippet]

// [snippet: stuck]
corio::task<> stuck() {
  corio::event never_set;
  co_await never_set.wait(); // nothing can ever wake this task
}
// [end snippet]

int main() {
  {
    // [snippet: callbacks]
    corio::event_loop loop;
    loop.call_later(20ms, [] { std::printf("call_later(20ms)\n"); });
    loop.call_at(loop.time() + 10ms, [] { std::printf("call_at(now + 10ms)\n"); });
    loop.call_soon([] { std::printf("call_soon\n"); });
    corio::timer_handle h = loop.call_later(5ms, [] { std::printf("never printed\n"); });
    h.cancel();
    loop.call_later(30ms, [&loop] {
      std::printf("stopping\n");
      loop.stop();
    });
    loop.run_forever(); // until stop()
    loop.close();
    // [end snippet]
  }
  {
    // [snippet: same-deadline]
    corio::event_loop loop;
    const corio::time_point t = loop.time() + 1ms;
    for (int i = 0; i < 3; ++i)
      loop.call_at(t, [i] { std::printf("timer %d\n", i); }); // equal deadlines: in scheduling order
    loop.call_at(t, [&loop] { loop.stop(); });
    loop.run_forever();
    loop.close();
    // [end snippet]
  }
  {
    // [snippet: threadsafe]
    corio::event_loop loop;
    std::thread worker([&loop] {
      // The only loop operation allowed from another thread.
      loop.call_soon_threadsafe([&loop] {
        std::printf("posted from a thread\n");
        loop.stop();
      });
    });
    loop.run_forever(); // sleeps in the backend's poll until the post wakes it
    worker.join();
    loop.close();
    // [end snippet]
  }
  {
    // [snippet: mock-clock]
    corio::testing::mock_clock clock; // virtual time: jumps to the next timer when every task waits
    corio::event_loop loop({.clock = &clock});
    const corio::time_point start = loop.time();
    int v = corio::run_until_complete(loop, slow_answer()); // returns at once
    auto waited = std::chrono::duration_cast<std::chrono::minutes>(loop.time() - start);
    std::printf("%d after %lld minutes of loop time\n", v, static_cast<long long>(waited.count()));
    loop.close();
    // [end snippet]
  }
  {
    // [snippet: run-mock]
    corio::testing::mock_clock clock;
    std::printf("corio::run: %d\n", corio::run(slow_answer(), {.clock = &clock}));
    // [end snippet]
  }
  {
    // [snippet: deadlock]
    corio::testing::mock_clock clock;
    try {
      corio::run(stuck(), {.clock = &clock}); // with the real clock this would wait forever
    } catch (const corio::loop_error& e) {
      std::printf("%s\n", e.what());
    }
    // [end snippet]
  }
}
