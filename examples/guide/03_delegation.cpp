// Guide, step 3: delegation with return values (PEP 380): co_await corio::yield_from(sub).
#include <corio/corio.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

// [snippet: article]
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

// def coroutine_three(): yield from coroutine_one(); yield from coroutine_two()
corio::coroutine<void> coroutine_three() {
  co_await corio::yield_from(coroutine_one());
  co_await corio::yield_from(coroutine_two());
}
// [end snippet]

// [snippet: return-value]
corio::coroutine<void, void, int> fetch_data() {
  std::printf("Fetching data awaiting IO..\n");
  co_yield corio::none; // suspended "until the I/O is ready"
  std::printf("Fetching data IO ready..\n");
  co_return 10;
}

corio::coroutine<void> coroutine_four() {
  std::printf("Coroutine four doing some work\n");
  int data = co_await corio::yield_from(fetch_data()); // the sub-coroutine's co_return value
  std::printf("Coroutine four doing more work with data: %d\n", data);
  co_yield corio::none;
}
// [end snippet]

// [snippet: tallies]
// PEP 380's own example: values sent to the outer coroutine go straight to the inner one; nullopt ends
// a group, and the inner one's return value comes back to the outer one.
corio::coroutine<void, std::optional<int>, int> accumulate() {
  int tally = 0;
  for (;;) {
    std::optional<int> next = co_yield corio::none;
    if (!next)
      co_return tally;
    tally += *next;
  }
}

corio::coroutine<void, std::optional<int>> gather_tallies(std::vector<int>* tallies) {
  for (;;) {
    int tally = co_await corio::yield_from(accumulate());
    tallies->push_back(tally);
  }
}
// [end snippet]

// [snippet: close]
corio::coroutine<int, void, int> inner() {
  try {
    co_yield 1;
  } catch (const corio::generator_exit&) {
    std::printf("inner: closed, returns quietly\n");
  }
  co_return 0;
}

corio::coroutine<int> outer() {
  try {
    (void)co_await corio::yield_from(inner());
  } catch (const corio::generator_exit&) {
    std::printf("outer: generator_exit all the same\n");
    throw;
  }
  co_yield 99; // never reached by close()
}
// [end snippet]

int main() {
  {
    // [snippet: article-use]
    auto cor3 = coroutine_three();
    while (cor3.next()) { // a step converts to true while the coroutine yields
    }
    // [end snippet]
  }
  {
    // [snippet: return-value-use]
    auto cor4 = coroutine_four();
    while (cor4.next()) {
    }
    // [end snippet]
  }
  {
    // [snippet: tallies-use]
    std::vector<int> tallies;
    auto g = gather_tallies(&tallies);
    (void)g.next();
    for (int i : {1, 2, 3, 4})
      (void)g.send(i);
    (void)g.send(std::nullopt);
    for (int i : {5, 6})
      (void)g.send(i);
    (void)g.send(std::nullopt);
    std::printf("tallies: %d %d\n", tallies[0], tallies[1]);
    // [end snippet]
  }
  {
    // [snippet: close-use]
    auto o = outer();
    std::printf("yielded %d\n", o.next().value()); // inner's 1, passed straight through
    o.close();                                     // reaches inner first, then outer
    std::printf("done=%d\n", static_cast<int>(o.done()));
    // [end snippet]
  }
}
