// Guide, step 2: two-way coroutines (PEP 342): send, throw_, close, and the step they return.
#include <corio/corio.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>

// [snippet: article]
// def coroutine_one(): data = (yield) ...
corio::coroutine<void, std::string> coroutine_one() {
  std::printf("Coroutine one doing some work\n");
  std::string data = co_yield corio::none; // data = (yield)
  std::printf("Received data: %s\n", data.c_str());
  std::printf("Coroutine one doing more work\n");
  co_yield corio::none;
}
// [end snippet]

// [snippet: averager]
// Yields the running average, receives numbers, returns how many it got once sent a negative one.
corio::coroutine<double, double, int> averager() {
  double sum = 0;
  int n = 0;
  double average = 0;
  for (;;) {
    double v = co_yield average;
    if (v < 0)
      co_return n;
    sum += v;
    ++n;
    average = sum / n;
  }
}
// [end snippet]

// [snippet: resilient]
// Doubles what it is sent. A thrown std::invalid_argument is answered by yielding -1; anything else
// escapes and finishes the coroutine.
corio::coroutine<int, int> doubler() {
  int reply = 0;
  for (;;) {
    bool bad = false;
    try {
      int v = co_yield reply;
      reply = v * 2;
    } catch (const std::invalid_argument&) {
      bad = true; // C++ allows no co_yield inside a catch handler: note it, yield after it
    }
    if (bad)
      reply = -1;
  }
}
// [end snippet]

// [snippet: close]
corio::coroutine<int> ticker() {
  try {
    for (int i = 0;; ++i)
      co_yield i;
  } catch (const corio::generator_exit&) {
    std::printf("ticker: cleaning up\n");
    throw; // or just return: both are a clean close
  }
}

corio::coroutine<int> stubborn() {
  for (;;) {
    bool closing = false;
    try {
      co_yield 1;
    } catch (const corio::generator_exit&) {
      closing = true;
    }
    if (closing)
      co_yield 2; // answering close() with a value is an error
  }
}
// [end snippet]

// [snippet: reentrant]
corio::coroutine<int> selfish(corio::coroutine<int>* self) {
  try {
    (void)self->next(); // resuming the coroutine that is running: Python's "generator already executing"
  } catch (const corio::already_executing_error& e) {
    std::printf("inside: %s\n", e.what());
  }
  co_yield 1;
}
// [end snippet]

int main() {
  {
    // [snippet: article-use]
    auto cor1 = coroutine_one();
    (void)cor1.send(corio::none); // cor1.send(None): starts it, runs to the first co_yield
    (void)cor1.send("lorem ipsum");
    // [end snippet]
  }
  {
    // [snippet: averager-use]
    auto avg = averager();
    (void)avg.next(); // start it: runs to the first co_yield (which yields 0)
    std::printf("%.1f\n", avg.send(10).value());
    std::printf("%.1f\n", avg.send(20).value());
    corio::step<double, int> last = avg.send(-1); // the body returned: Python's StopIteration(2)
    std::printf("returned=%d value=%d\n", static_cast<int>(last.is_return()), last.return_value());
    corio::step<double, int> after = avg.next(); // already finished: "exhausted", never UB
    std::printf("exhausted=%d done=%d\n", static_cast<int>(after.what() == corio::step<double, int>::kind::exhausted),
                static_cast<int>(avg.done()));
    // [end snippet]
  }
  {
    // [snippet: just-started]
    auto avg = averager();
    try {
      (void)avg.send(5); // Python: TypeError: can't send non-None value to a just-started generator
    } catch (const corio::just_started_error& e) {
      std::printf("%s\n", e.what());
    }
    // [end snippet]
  }
  {
    // [snippet: resilient-use]
    auto d = doubler();
    (void)d.next();
    std::printf("%d\n", d.send(21).value());                                      // 42
    std::printf("%d\n", d.throw_(std::invalid_argument("not a number")).value()); // caught: -1
    try {
      (void)d.throw_(std::runtime_error("fatal")); // not caught: propagates, the coroutine is finished
    } catch (const std::runtime_error& e) {
      std::printf("propagated: %s, done=%d\n", e.what(), static_cast<int>(d.done()));
    }
    // [end snippet]
  }
  {
    // [snippet: close-use]
    auto t = ticker();
    (void)t.next();
    (void)t.next();
    t.close(); // generator_exit at the co_yield
    std::printf("closed: done=%d\n", static_cast<int>(t.done()));
    t.close(); // closing a finished coroutine does nothing

    auto s = stubborn();
    (void)s.next();
    try {
      s.close();
    } catch (const corio::ignored_exit_error& e) {
      std::printf("%s\n", e.what());
    }
    // [end snippet]
  }
  {
    // [snippet: reentrant-use]
    corio::coroutine<int> c;
    c = selfish(&c);
    std::printf("outside: %d\n", c.next().value());
    // [end snippet]
  }
}
