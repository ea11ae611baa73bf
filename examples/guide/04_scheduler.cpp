// Guide, step 4: the article's deque scheduler, by hand and as corio::round_robin.
#include <corio/corio.hpp>

#include <cstdio>
#include <deque>
#include <stdexcept>
#include <string>

corio::coroutine<void> coroutine_one() {
  std::printf("Coroutine one doing some work\n");
  co_yield corio::none;
  std::printf("Coroutine one doing more work\n");
  co_yield corio::none;
}

corio::coroutine<void> coroutine_two() {
  std::printf("Coroutine two doing some work\n");
  co_yield corio::none;
  std::printf("Coroutine two doing more work\n");
  co_yield corio::none;
}

// [snippet: by-hand]
// def scheduler(coroutines):
//     q = deque(coroutines)
//     while q:
//         try:
//             coroutine = q.popleft()
//             coroutine.send(None)
//             q.append(coroutine)
//         except StopIteration:
//             pass
void scheduler(std::deque<corio::coroutine<void>> q) {
  while (!q.empty()) {
    corio::coroutine<void> c = std::move(q.front());
    q.pop_front();
    if (c.next()) // yielded: it has more to do
      q.push_back(std::move(c));
  }
}
// [end snippet]

// [snippet: failing]
corio::coroutine<void> flaky() {
  std::printf("flaky starts\n");
  co_yield corio::none;
  throw std::runtime_error("lost the connection");
}

corio::generator<> counter() { // generators can join in too
  for (int i = 0; i < 3; ++i) {
    std::printf("counter %d\n", i);
    co_yield corio::none;
  }
}
// [end snippet]

int main() {
  {
    // [snippet: by-hand-use]
    std::deque<corio::coroutine<void>> q;
    q.push_back(coroutine_one());
    q.push_back(coroutine_two());
    scheduler(std::move(q));
    // [end snippet]
  }
  std::printf("--\n");
  {
    // [snippet: round-robin]
    corio::round_robin scheduler;
    scheduler.add(coroutine_one());
    scheduler.add(coroutine_two());
    std::size_t steps = scheduler.run(); // resumptions, the last one of each included
    std::printf("%zu resumptions\n", steps);
    // [end snippet]
  }
  std::printf("--\n");
  {
    // [snippet: failing-use]
    corio::round_robin scheduler;
    scheduler.add(flaky(), "flaky");
    scheduler.add(counter(), "counter");
    try {
      scheduler.run(); // the others run to the end; then every failure is reported
    } catch (const corio::exception_group& group) {
      std::printf("%zu failed: %s\n", group.size(), group.what());
    }
    // [end snippet]
  }
}
