// corio::channel<T>: a thread-safe MPSC channel — producers on plain threads and on other loops,
// bounded sends, close, cancellation, destruction with items inside.
#include <corio/channel.hpp>
#include <corio/run.hpp>
#include <corio/runtime.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/sync/event.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "counted.hpp"
#include "leak_check.hpp"
#include "loop_fixture.hpp"

namespace corio::detail {
/// The tests' way into a channel: a producer paused inside its push, between the two steps of
/// mpsc_queue::push() (the window a preempted producer thread leaves open).
struct channel_test_access {
  using pending = mpsc_queue<int>::pending_push;
  static pending begin_send(channel<int>& ch, int v) { return ch.queue_.begin_push(v); }
  static void end_send(channel<int>& ch, pending p) {
    ch.queue_.end_push(p);
    ch.notify_consumer(); // the rest of a send
  }
};
} // namespace corio::detail

namespace {

using corio::channel;
using send_paused = corio::detail::channel_test_access;
using namespace std::chrono_literals;
using corio::task;
using corio::testing::counted;
using corio::testing::lifetime_check;

/// Whether `co_await ch.recv()` throws E (EXPECT_THROW cannot hold a co_await).
template <class E> task<bool> recv_throws(channel<int>& ch) {
  try {
    (void)co_await ch.recv();
  } catch (const E&) {
    co_return true;
  }
  co_return false;
}

/// `co_await ch.recv()`, or nullopt on channel_closed.
task<std::optional<int>> recv_unless_closed(channel<int>& ch) {
  try {
    co_return co_await ch.recv();
  } catch (const corio::channel_closed&) {
  }
  co_return std::nullopt;
}

/// counted's tallies are plain ints: for items made and destroyed on several threads, atomic ones.
struct shared_counted {
  static inline std::atomic<int> alive{0};
  int value = 0;
  explicit shared_counted(int v = 0) noexcept : value(v) { ++alive; }
  shared_counted(const shared_counted& o) noexcept : value(o.value) { ++alive; }
  shared_counted(shared_counted&& o) noexcept : value(o.value) { ++alive; }
  shared_counted& operator=(const shared_counted&) = default;
  shared_counted& operator=(shared_counted&&) = default;
  ~shared_counted() { --alive; }
};

TEST(Channel, SameLoopFifo) {
  corio::testing::leak_check leaks;
  corio::testing::run_mock([](auto*) -> task<> {
    channel<int> ch;
    EXPECT_TRUE(ch.try_send(1));
    EXPECT_TRUE(ch.try_send(2));
    EXPECT_EQ(co_await ch.recv(), 1);
    EXPECT_EQ(*ch.try_recv(), 2);
    EXPECT_FALSE(ch.try_recv().has_value());
  });
}

/// Movable, not move-assignable: what "T only needs to be movable" allows.
struct move_only_item {
  int id;
  explicit move_only_item(int i) noexcept : id(i) {}
  move_only_item(move_only_item&&) noexcept = default;
  move_only_item& operator=(move_only_item&&) = delete;
};

TEST(Channel, ItemsNeedOnlyBeMoveConstructible) {
  corio::testing::run_mock([](auto*) -> task<> {
    channel<move_only_item> ch(1);
    co_await ch.send(move_only_item(1)); // taken at once by recv() below
    move_only_item first = co_await ch.recv();
    EXPECT_EQ(first.id, 1);
    auto producer = [&ch]() -> task<> { co_await ch.send(move_only_item(2)); };
    auto h = corio::spawn(producer());
    move_only_item second = co_await ch.recv(); // waits for it
    EXPECT_EQ(second.id, 2);
    co_await h;
    EXPECT_TRUE(ch.try_send(move_only_item(3)));
    EXPECT_EQ(ch.try_recv()->id, 3);
  });
}

TEST(Channel, RecvWaitsForASendFromAnotherTask) {
  corio::testing::run_mock([](auto*) -> task<> {
    channel<int> ch;
    auto producer = [&ch]() -> task<> { co_await ch.send(7); };
    auto h = corio::spawn(producer());
    EXPECT_EQ(co_await ch.recv(), 7);
    co_await h;
  });
}

TEST(Channel, CloseEndsReceiversAfterDraining) {
  corio::testing::run_mock([](auto*) -> task<> {
    channel<int> ch;
    ch.try_send(1);
    ch.close();
    EXPECT_TRUE(ch.is_closed());
    EXPECT_THROW(ch.try_send(2), corio::channel_closed);
    EXPECT_EQ(co_await ch.recv(), 1);
    const bool closed = co_await recv_throws<corio::channel_closed>(ch);
    EXPECT_TRUE(closed);
    EXPECT_THROW((void)ch.try_recv(), corio::channel_closed);
  });
}

TEST(Channel, TryRecvDoesNotReportClosedWhileAnEarlierSendIsHalfDone) {
  channel<int> ch;
  const send_paused::pending paused = send_paused::begin_send(ch, 1); // a producer preempted in push()
  ch.try_send(2); // completes before close(), but is linked behind the paused one
  ch.close();
  EXPECT_EQ(ch.try_recv(), std::nullopt); // not drained yet: no channel_closed
  EXPECT_EQ(ch.try_recv(), std::nullopt);
  send_paused::end_send(ch, paused);
  EXPECT_EQ(ch.try_recv(), 1);
  EXPECT_EQ(ch.try_recv(), 2);
  EXPECT_THROW((void)ch.try_recv(), corio::channel_closed);
}

task<> finish_send_later(channel<int>* ch, send_paused::pending paused) {
  co_await corio::sleep(1ms);
  send_paused::end_send(*ch, paused);
}

TEST(Channel, RecvWaitsForAnEarlierHalfDoneSendAfterClose) {
  corio::testing::run_mock([](auto*) -> task<> {
    channel<int> ch;
    auto h = corio::spawn(finish_send_later(&ch, send_paused::begin_send(ch, 1)));
    ch.try_send(2);
    ch.close();
    const auto t0 = corio::event_loop::current()->time();
    EXPECT_EQ(co_await ch.recv(), 1); // waits for the paused send to link its item
    EXPECT_EQ(corio::event_loop::current()->time() - t0, 1ms);
    EXPECT_EQ(co_await ch.recv(), 2);
    const bool closed = co_await recv_throws<corio::channel_closed>(ch);
    EXPECT_TRUE(closed);
    co_await h;
  });
}

TEST(Channel, RecvWaitsForAnEarlierHalfDoneSendOnAnotherThreadAfterClose) {
  corio::run([]() -> task<> {
    channel<int> ch;
    const send_paused::pending paused = send_paused::begin_send(ch, 1);
    ch.try_send(2);
    ch.close();
    std::thread t([&ch, paused] { send_paused::end_send(ch, paused); }); // before or after recv() parks
    const std::optional<int> first = co_await recv_unless_closed(ch);
    t.join();
    EXPECT_EQ(first, 1);
    EXPECT_EQ(co_await ch.recv(), 2);
    const bool closed = co_await recv_throws<corio::channel_closed>(ch);
    EXPECT_TRUE(closed);
  }());
}

TEST(Channel, CloseWakesAWaitingReceiver) {
  corio::testing::run_mock([](auto*) -> task<> {
    channel<int> ch;
    auto closer = [&ch]() -> task<> {
      ch.close();
      co_return;
    };
    auto h = corio::spawn(closer());
    const bool closed = co_await recv_throws<corio::channel_closed>(ch);
    EXPECT_TRUE(closed);
    co_await h;
  });
}

TEST(Channel, CloseFromAnotherThreadWakesAWaitingReceiver) {
  corio::run([]() -> task<> {
    channel<int> ch;
    std::thread t([&ch] { ch.close(); });
    const bool closed = co_await recv_throws<corio::channel_closed>(ch);
    t.join();
    EXPECT_TRUE(closed);
  }());
}

TEST(Channel, CancellingAWaitingRecvTakesNothing) {
  lifetime_check lives;
  corio::testing::run_mock([](auto*) -> task<> {
    channel<counted> ch;
    auto receiver = [&ch]() -> task<> {
      (void)co_await ch.recv();
      ADD_FAILURE() << "received";
    };
    auto h = corio::spawn(receiver());
    co_await corio::sleep(std::chrono::milliseconds(1)); // the receiver waits now
    h.cancel();
    EXPECT_TRUE(co_await corio::testing::was_cancelled(h));
    ch.try_send(counted(5));
    auto v = co_await ch.recv(); // a new receiver is allowed, and gets the item
    EXPECT_EQ(v.value, 5);
  });
  EXPECT_EQ(lifetime_check::alive(), 0);
}

TEST(Channel, ASecondWaitingReceiverIsRefused) {
  corio::testing::run_mock([](auto*) -> task<> {
    channel<int> ch;
    auto receiver = [&ch]() -> task<int> { co_return co_await ch.recv(); };
    auto h = corio::spawn(receiver());
    co_await corio::sleep(std::chrono::milliseconds(1));
    const bool refused = co_await recv_throws<corio::invalid_state_error>(ch);
    EXPECT_TRUE(refused);
    EXPECT_THROW((void)ch.try_recv(), corio::invalid_state_error);
    ch.try_send(3);
    EXPECT_EQ(co_await h, 3);
  });
}

TEST(Channel, DestructionFreesQueuedItems) {
  lifetime_check lives;
  {
    channel<counted> ch;
    for (int i = 0; i < 10; ++i)
      ch.try_send(counted(i));
    auto unique = std::make_unique<channel<std::unique_ptr<counted>>>();
    unique->try_send(std::make_unique<counted>(1));
  }
  EXPECT_EQ(lifetime_check::alive(), 0);
}

TEST(Channel, BoundedTrySendFailsWhenFullAndSendWaits) {
  corio::testing::run_mock([](auto*) -> task<> {
    channel<int> ch(2);
    EXPECT_TRUE(ch.try_send(1));
    EXPECT_TRUE(ch.try_send(2));
    EXPECT_FALSE(ch.try_send(3));
    EXPECT_EQ(ch.size(), 2u);
    bool sent = false;
    auto sender = [&]() -> task<> {
      co_await ch.send(3);
      sent = true;
    };
    auto h = corio::spawn(sender());
    co_await corio::sleep(std::chrono::milliseconds(1));
    EXPECT_FALSE(sent);
    EXPECT_EQ(co_await ch.recv(), 1); // admits the waiting sender
    co_await h;
    EXPECT_TRUE(sent);
    EXPECT_EQ(co_await ch.recv(), 2);
    EXPECT_EQ(co_await ch.recv(), 3);
  });
}

TEST(Channel, BoundedSenderCancelledWhileWaitingKeepsItsItem) {
  lifetime_check lives;
  corio::testing::run_mock([](auto*) -> task<> {
    channel<counted> ch(1);
    ch.try_send(counted(1));
    auto sender = [&ch]() -> task<> { co_await ch.send(counted(2)); };
    auto h = corio::spawn(sender());
    co_await corio::sleep(std::chrono::milliseconds(1));
    h.cancel();
    EXPECT_TRUE(co_await corio::testing::was_cancelled(h));
    counted first = co_await ch.recv();
    EXPECT_EQ(first.value, 1);
    EXPECT_FALSE(ch.try_recv().has_value()); // item 2 was never sent
  });
  EXPECT_EQ(lifetime_check::alive(), 0);
}

TEST(Channel, CloseRefusesWaitingSenders) {
  corio::testing::run_mock([](auto*) -> task<> {
    channel<int> ch(1);
    ch.try_send(1);
    auto sender = [&ch]() -> task<bool> {
      try {
        co_await ch.send(2);
      } catch (const corio::channel_closed&) {
        co_return true;
      }
      co_return false;
    };
    auto h = corio::spawn(sender());
    co_await corio::sleep(std::chrono::milliseconds(1));
    ch.close();
    EXPECT_TRUE(co_await h);
    EXPECT_EQ(co_await ch.recv(), 1);
  });
}

// Many producers on plain threads: every item arrives once, each producer's in order.
TEST(Channel, ThreadsafeManyPlainThreadProducers) {
  constexpr int producers = 4;
  constexpr int per_producer = 5000;
  corio::run([]() -> task<> {
    channel<std::pair<int, int>> ch;
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
      threads.emplace_back([&ch, p] {
        for (int i = 0; i < per_producer; ++i)
          ch.try_send(std::pair<int, int>(p, i));
      });
    std::vector<int> next(producers, 0);
    for (int n = 0; n < producers * per_producer; ++n) {
      auto [p, i] = co_await ch.recv();
      EXPECT_EQ(i, next[static_cast<std::size_t>(p)]);
      next[static_cast<std::size_t>(p)] = i + 1;
    }
    for (auto& t : threads)
      t.join();
    EXPECT_FALSE(ch.try_recv().has_value());
  }());
}

// Producers on other loops of a runtime, through a bounded channel (senders wait for room).
TEST(Channel, ThreadsafeProducersOnOtherLoopsBounded) {
  constexpr int per_loop = 3000;
  corio::runtime rt({.threads = 3});
  channel<shared_counted> ch(8);
  std::atomic<long> sum{0};
  rt.run([&](std::size_t i) -> task<> {
    if (i != 0) {
      for (int k = 0; k < per_loop; ++k)
        co_await ch.send(shared_counted(k));
      co_return;
    }
    for (int n = 0; n < 2 * per_loop; ++n) {
      shared_counted c = co_await ch.recv();
      sum += c.value;
    }
  });
  EXPECT_EQ(sum.load(), 2L * per_loop * (per_loop - 1) / 2);
  EXPECT_FALSE(ch.try_recv().has_value());
  EXPECT_EQ(shared_counted::alive.load(), 0);
}

// Ping-pong between two loops through two channels: every wake-up crosses threads.
TEST(Channel, ThreadsafePingPongBetweenLoops) {
  corio::runtime rt({.threads = 2});
  channel<int> to1;
  channel<int> to0;
  rt.run([&](std::size_t i) -> task<> {
    constexpr int rounds = 2000;
    if (i == 0) {
      for (int k = 0; k < rounds; ++k) {
        to1.try_send(k);
        EXPECT_EQ(co_await to0.recv(), k + 1);
      }
      to1.close();
    } else {
      for (;;) {
        int v = 0;
        try {
          v = co_await to1.recv();
        } catch (const corio::channel_closed&) {
          break;
        }
        to0.try_send(v + 1);
      }
    }
  });
}

// A receiver on a loop and a closer on a plain thread racing with producers: nothing lost or leaked.
TEST(Channel, ThreadsafeCloseRacingWithProducers) {
  for (int round = 0; round < 20; ++round) {
    corio::run([]() -> task<> {
      channel<shared_counted> ch;
      std::atomic<int> sent{0};
      std::thread producer([&] {
        for (int i = 0; i < 500; ++i) {
          try {
            ch.try_send(shared_counted(i));
            ++sent;
          } catch (const corio::channel_closed&) {
            break;
          }
        }
      });
      std::thread closer([&ch] { ch.close(); });
      int got = 0;
      for (;;) {
        try {
          (void)co_await ch.recv();
          ++got;
        } catch (const corio::channel_closed&) {
          break;
        }
      }
      producer.join();
      closer.join();
      EXPECT_LE(got, sent.load());
    }());
  }
  EXPECT_EQ(shared_counted::alive.load(), 0);
}

} // namespace
