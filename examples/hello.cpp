#include <corio/corio.hpp>
#include <cstdio>

// A generator (PEP 255): lazy, iterable, O(1) per element even through yield_from.
corio::generator<int> count_to(int n) {
  for (int i = 0; i < n; ++i)
    co_yield i;
}
corio::generator<int> twice(int n) {
  co_yield corio::yield_from(count_to(n)); // PEP 380: flattened, the leaf is resumed directly
  co_yield corio::yield_from(count_to(n));
}

// A two-way coroutine (PEP 342): yields int, receives int, returns int.
corio::coroutine<int, int, int> averager() {
  int sum = 0, n = 0;
  while (true) {
    int v = co_yield (n ? sum / n : 0);
    if (v < 0)
      co_return n;
    sum += v, ++n;
  }
}

int main() {
  for (int x : twice(3))
    std::printf("%d ", x); // 0 1 2 0 1 2
  auto avg = averager();
  avg.next(); // start it: runs to the first co_yield
  avg.send(10);
  std::printf("%d\n", avg.send(20).value()); // 15
  auto done = avg.send(-1);                  // the coroutine returned (Python: StopIteration(2))
  std::printf("%d values\n", done.return_value());
}
