// A loop whose tasks start eagerly (event_loop::options::eager_tasks, set_eager_tasks: asyncio's
// loop.set_task_factory(asyncio.eager_task_factory)): spawn, create_task, task_group, gather and shield
// start their tasks inside the call; corio's own tasks (servers, transports, run_on) work as before.
#include <corio/gather.hpp>
#include <corio/net.hpp>
#include <corio/net/protocol.hpp>
#include <corio/run.hpp>
#include <corio/shield.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/event.hpp>
#include <corio/task_group.hpp>
#include <corio/thread_future.hpp>
#include <corio/to_thread.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "callback_watch.hpp"
#include "leak_check.hpp"
#include "net_helpers.hpp"

using namespace std::chrono_literals;
using corio::task;

namespace {

task<int> mark_then_sleep(int* step, int value) {
  *step = 1;
  co_await corio::sleep(1ms);
  *step = 2;
  co_return value;
}

task<int> at_once(int* step, int value) {
  *step = 1;
  co_return value;
}

// spawn() and create_task() on an eager loop: the task runs up to its first suspension inside the call;
// one that never suspends is done when the call returns. set_eager_tasks(false) makes them lazy again.
TEST(EagerTasks, SpawnStartsInsideTheCallUntilTurnedOff) {
  corio::testing::leak_check leaks;
  corio::run(
      []() -> task<> {
        corio::event_loop& loop = *corio::event_loop::current();
        EXPECT_TRUE(loop.eager_tasks());
        int a = 0, b = 0, c = 0;
        auto h = corio::spawn(mark_then_sleep(&a, 7));
        EXPECT_EQ(a, 1) << "the task did not start inside spawn()";
        EXPECT_FALSE(h.done());
        auto quick = corio::create_task(at_once(&b, 8));
        EXPECT_TRUE(quick.done()) << "a task that never suspends is done when create_task returns";
        EXPECT_EQ(quick.result(), 8);
        EXPECT_EQ(co_await h, 7);
        EXPECT_EQ(a, 2);
        loop.set_eager_tasks(false);
        auto lazy = corio::spawn(at_once(&c, 9));
        EXPECT_EQ(c, 0) << "spawn() started the task on a lazy loop";
        EXPECT_EQ(co_await lazy, 9);
        loop.set_eager_tasks(true);
        // Cancelling an eager task that waits.
        auto sleeper = corio::spawn([]() -> task<> { co_await corio::sleep(1h); }());
        sleeper.cancel();
        bool cancelled = false;
        try {
          co_await sleeper;
        } catch (const corio::cancelled_error&) {
          cancelled = true;
        }
        EXPECT_TRUE(cancelled);
      }(),
      {.eager_tasks = true});
}

// task_group::spawn, gather() of tasks and shield() of a task start their tasks at once on an eager loop;
// results, failures and cancellation are as on a lazy loop.
TEST(EagerTasks, TaskGroupGatherAndShieldStartEagerly) {
  corio::testing::leak_check leaks;
  corio::run(
      []() -> task<> {
        int g1 = 0, g2 = 0;
        {
          corio::task_group group;
          auto h1 = group.spawn(mark_then_sleep(&g1, 1));
          auto h2 = group.spawn(at_once(&g2, 2));
          EXPECT_EQ(g1, 1);
          EXPECT_TRUE(h2.done());
          co_await group.wait();
          EXPECT_EQ(h1.result(), 1);
        }
        int x = 0, y = 0;
        auto [p, q] = co_await corio::gather(mark_then_sleep(&x, 3), at_once(&y, 4));
        EXPECT_EQ(p, 3);
        EXPECT_EQ(q, 4);
        bool failed = false;
        try {
          corio::task_group group;
          group.spawn([]() -> task<> {
            throw std::runtime_error("fails before suspending");
            co_return;
          }());
          co_await group.wait();
        } catch (const std::exception&) {
          failed = true;
        }
        EXPECT_TRUE(failed);
        int s = 0;
        int shielded = co_await corio::shield(mark_then_sleep(&s, 5));
        EXPECT_EQ(shielded, 5);
      }(),
      {.eager_tasks = true});
}

struct echo_protocol : corio::protocol {
  corio::transport* t = nullptr;
  void connection_made(corio::transport& tr) override { t = &tr; }
  void data_received(std::string_view d) override { t->write(d); }
};

// corio's own tasks on an eager loop: a stream server and clients (Happy Eyeballs over a refused address
// and a live one), a protocol server and connection, to_thread and run_coroutine_threadsafe.
TEST(EagerTasks, ServersConnectionsAndThreadsWorkOnAnEagerLoop) {
  corio::testing::leak_check leaks;
  corio::run(
      []() -> task<> {
        auto handler = [](corio::stream_reader r, corio::stream_writer w) -> task<> {
          std::string line = co_await r.readline();
          w.write(line);
          co_await w.drain();
          w.close();
        };
        corio::server srv = co_await corio::start_server(handler, "127.0.0.1", 0);
        const std::uint16_t port = srv.port();
        // A port nobody listens on, first: refused, then the live one.
        corio::socket probe = corio::listen_on(corio::address::parse("127.0.0.1:0"));
        const corio::address refused = probe.local_address();
        probe.close();
        std::vector<corio::address> candidates{refused, corio::address::parse("127.0.0.1:" + std::to_string(port))};
        corio::stream_options o;
        o.happy_eyeballs_delay = 50ms;
        for (int i = 0; i < 20; ++i) {
          auto [r, w] = co_await corio::open_connection(candidates, o);
          w.write("line " + std::to_string(i) + "\n");
          std::string back = co_await r.readline();
          EXPECT_EQ(back, "line " + std::to_string(i) + "\n");
          w.close();
          co_await w.wait_closed();
        }
        srv.close();
        co_await srv.wait_closed();

        auto make_echo = [] { return std::make_shared<echo_protocol>(); }; // named (HAZARDS.md 2)
        corio::server psrv = co_await corio::create_server(make_echo, "127.0.0.1", 0);
        auto [pr, pw] = co_await corio::open_connection("127.0.0.1", psrv.port());
        pw.write("ping\n");
        std::string pong = co_await pr.readline();
        EXPECT_EQ(pong, "ping\n");
        pw.close();
        psrv.close();
        psrv.close_clients();
        co_await psrv.wait_closed();

        auto answer = [] { return 42; };
        int from_thread = co_await corio::to_thread(answer);
        EXPECT_EQ(from_thread, 42);
        corio::event_loop& loop = *corio::event_loop::current();
        std::atomic<int> remote{0};
        std::thread other([&loop, &remote] {
          auto f = corio::run_coroutine_threadsafe(loop, []() -> task<int> {
            co_await corio::sleep(1ms);
            co_return 43;
          });
          remote = f.get();
        });
        for (int i = 0; i < 10000 && remote.load() == 0; ++i) // at most about 10 s
          co_await corio::sleep(1ms);
        other.join();
        EXPECT_EQ(remote.load(), 43);
      }(),
      {.eager_tasks = true});
}

} // namespace
