// Fuzz target: the loop's timer structure (4-ary indexed heap) against a reference model.
//
// The input is a program of operations on one event loop with a mock clock: schedule a callback at
// now + d (some callbacks cancel another timer when they run), cancel a timer, or sleep for d >= 1 ms.
// After every sleep, the callbacks that ran must be exactly those the model says are due, in (deadline,
// scheduling order) order; every cancel() must return what the model says (true iff still pending); and
// the loop's timer_count() must equal the model's pending count.
#include <corio/event_loop.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>
#include <corio/testing/mock_clock.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

using namespace std::chrono_literals;

struct fired {
  int id;
  int cancelled; // the id it tried to cancel (-1: none)
  bool result;   // what cancel() returned
  bool operator==(const fired&) const = default;
};

struct model_timer {
  corio::time_point when;
  std::uint64_t seq;
  int cancels; // -1 or the id this callback cancels
  bool pending = true;
};

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_timers: %s\n", what);
  std::abort();
}

corio::task<> program(FuzzedDataProvider& in) {
  corio::event_loop& loop = *corio::event_loop::current();
  std::vector<corio::timer_handle> handles;
  std::vector<model_timer> model;
  std::vector<fired> log;
  std::uint64_t seq = 0;
  int steps = 0;
  while (in.remaining_bytes() > 0 && steps++ < 2000) {
    switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0:
    case 1: { // schedule; few distinct delays, so equal deadlines are common
      if (handles.size() >= 500)
        break;
      auto d = std::chrono::milliseconds(in.ConsumeIntegralInRange(0, 40) * (in.ConsumeBool() ? 1 : 25));
      int cancels = in.ConsumeBool() && !handles.empty()
                        ? static_cast<int>(in.ConsumeIntegralInRange<std::size_t>(0, handles.size() - 1))
                        : -1;
      int id = static_cast<int>(handles.size());
      model.push_back({loop.time() + d, seq++, cancels});
      handles.push_back(loop.call_later(d, [id, cancels, &handles, &log] {
        bool r = cancels >= 0 && handles[static_cast<std::size_t>(cancels)].cancel();
        log.push_back({id, cancels, r});
      }));
      break;
    }
    case 2: { // cancel from the task
      if (handles.empty())
        break;
      auto i = in.ConsumeIntegralInRange<std::size_t>(0, handles.size() - 1);
      bool expected = model[i].pending;
      model[i].pending = false;
      if (handles[i].cancel() != expected)
        fail("cancel() from the task disagrees with the model");
      break;
    }
    case 3: { // sleep >= 1 ms: every timer due by then runs first, in (deadline, seq) order
      auto d = std::chrono::milliseconds(1 + in.ConsumeIntegralInRange(0, 60));
      const corio::time_point until = loop.time() + d;
      std::vector<std::size_t> due;
      for (std::size_t i = 0; i < model.size(); ++i)
        if (model[i].pending && model[i].when <= until)
          due.push_back(i);
      std::sort(due.begin(), due.end(), [&](std::size_t a, std::size_t b) {
        return model[a].when != model[b].when ? model[a].when < model[b].when : model[a].seq < model[b].seq;
      });
      std::vector<fired> expected;
      for (std::size_t i : due) {
        if (!model[i].pending)
          continue; // cancelled by an earlier callback of this batch
        model[i].pending = false;
        int k = model[i].cancels;
        bool r = false;
        if (k >= 0) {
          r = model[static_cast<std::size_t>(k)].pending;
          model[static_cast<std::size_t>(k)].pending = false;
        }
        expected.push_back({static_cast<int>(i), k, r});
      }
      log.clear();
      co_await corio::sleep(d);
      if (loop.time() != until)
        fail("the mock clock did not land on the sleep's deadline");
      if (log != expected)
        fail("callbacks ran in a different order, or cancel() inside one disagrees with the model");
      break;
    }
    }
    std::size_t pending = 0;
    for (const auto& t : model)
      pending += t.pending ? 1 : 0;
    if (loop.timer_count() != pending)
      fail("timer_count() disagrees with the model");
  }
  for (auto& h : handles)
    h.cancel();
  if (loop.timer_count() != 0)
    fail("timers left after cancelling all");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  corio::testing::mock_clock clock;
  corio::run(program(in), {.clock = &clock});
  return 0;
}
