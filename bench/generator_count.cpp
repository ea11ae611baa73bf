// Instructions per generator element, for callgrind (wall-clock figures are bench/generator_sum's): sums
// 0..N-1 from a corio::generator<int> (or through DEPTH levels of yield_from, or from a bare C++20
// generator without delegation, throw_ or re-entrancy checks, the floor to compare with) and prints the
// sum. Run it with N and 2N under callgrind; the difference of the totals over N is the cost per element:
//
//   for n in 1000000 2000000; do
//     valgrind --tool=callgrind --callgrind-out-file=/dev/null build/release/bench/generator_count $n |&
//       grep Collected
//   done
//
// Usage: generator_count N [DEPTH | bare]   (exits 1 if the sum is wrong)
#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iterator>

#include <corio/generator.hpp>
#include <corio/yield_from.hpp>

namespace {

corio::generator<int> count(int n) {
  for (int i = 0; i < n; ++i)
    co_yield i;
}

corio::generator<int> level(int depth, int n) {
  if (depth == 0) {
    for (int i = 0; i < n; ++i)
      co_yield i;
  } else {
    co_yield corio::yield_from(level(depth - 1, n));
  }
}

/// The floor: a generator with nothing but co_yield and iteration.
class bare_generator {
public:
  struct promise_type {
    const int* value = nullptr;
    bare_generator get_return_object() {
      return bare_generator(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    static std::suspend_always initial_suspend() noexcept { return {}; }
    static std::suspend_always final_suspend() noexcept { return {}; }
    std::suspend_always yield_value(const int& v) noexcept {
      value = &v;
      return {};
    }
    static void return_void() noexcept {}
    [[noreturn]] static void unhandled_exception() { std::terminate(); }
  };
  struct iterator {
    std::coroutine_handle<promise_type> h;
    int operator*() const noexcept { return *h.promise().value; }
    iterator& operator++() {
      h.resume();
      return *this;
    }
    bool operator==(std::default_sentinel_t) const noexcept { return h.done(); }
  };
  explicit bare_generator(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  bare_generator(const bare_generator&) = delete;
  bare_generator& operator=(const bare_generator&) = delete;
  ~bare_generator() { h_.destroy(); }
  iterator begin() {
    h_.resume();
    return {h_};
  }
  static std::default_sentinel_t end() noexcept { return {}; }

private:
  std::coroutine_handle<promise_type> h_;
};

bare_generator bare_count(int n) {
  for (int i = 0; i < n; ++i)
    co_yield i;
}

template <class G> [[gnu::noinline]] long long sum(G g) {
  long long s = 0;
  for (int v : g)
    s += v;
  return s;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: generator_count N [DEPTH | bare]\n");
    return 2;
  }
  const int n = std::atoi(argv[1]);
  long long s = 0;
  if (argc > 2 && std::strcmp(argv[2], "bare") == 0)
    s = sum(bare_count(n));
  else if (argc > 2)
    s = sum(level(std::atoi(argv[2]), n));
  else
    s = sum(count(n));
  std::printf("%lld\n", s);
  return s == static_cast<long long>(n) * (n - 1) / 2 ? 0 : 1;
}
