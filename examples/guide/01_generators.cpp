// Guide, step 1: generators (PEP 255). Built and run by the tests; docs/guide/01-generators.md shows
// the regions marked `[snippet: name]` and tests/integration/doc_snippets.py keeps them identical.
#include <corio/corio.hpp>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

// [snippet: countdown]
corio::generator<int> countdown(int from) {
  std::printf("countdown starts\n"); // runs at the first begin() or next(), not at the call
  for (int i = from; i > 0; --i)
    co_yield i;
}
// [end snippet]

// [snippet: failing]
corio::generator<int> failing() {
  co_yield 1;
  throw std::runtime_error("sensor unplugged");
}
// [end snippet]

// [snippet: cleanup]
struct noisy {
  std::string name;
  ~noisy() { std::printf("destroyed %s\n", name.c_str()); }
};

corio::generator<int> with_resource() {
  noisy guard{"the generator's local"};
  for (int i = 0;; ++i)
    co_yield i; // never finishes by itself
}
// [end snippet]

// [snippet: cleanup-use]
void leave_early() {
  auto g = with_resource();
  for (int i : g)
    if (i == 2)
      break; // leaves the generator suspended at its co_yield
  std::printf("leaving the scope\n");
} // ~generator destroys the frame: the local's destructor runs, no other code of the body does
// [end snippet]

// [snippet: flatten]
struct tree {
  int value;
  std::vector<std::unique_ptr<tree>> children;
};

// Depth-first, flattened: every value comes straight from the innermost generator, at O(1) per value
// whatever the depth.
corio::generator<int> walk(const tree& t) {
  co_yield t.value;
  for (const auto& child : t.children)
    co_yield corio::yield_from(walk(*child));
}
// [end snippet]

int main() {
  {
    // [snippet: lazy]
    auto g = countdown(3); // nothing printed yet: generators are lazy
    std::printf("created\n");
    for (int i : g) // range-for starts it
      std::printf("%d\n", i);
    // [end snippet]
  }
  {
    // [snippet: next]
    auto g = countdown(2);
    std::optional<int> a = g.next(); // Python's next(g, None)
    int b = corio::next(g);          // Python's next(g): throws corio::stop_iteration at the end
    std::printf("%d %d done=%d\n", *a, b, static_cast<int>(g.done()));
    std::printf("then: %s\n", g.next() ? "a value" : "nullopt");
    try {
      (void)corio::next(g);
    } catch (const corio::stop_iteration&) {
      std::printf("stop_iteration\n");
    }
    // [end snippet]
  }
  {
    // [snippet: failing-use]
    auto g = failing();
    try {
      for (int i : g)
        std::printf("got %d\n", i);
    } catch (const std::runtime_error& e) {
      std::printf("caught: %s, done=%d\n", e.what(), static_cast<int>(g.done()));
    }
    // [end snippet]
  }
  leave_early();
  {
    // [snippet: flatten-use]
    tree t{1, {}};
    t.children.push_back(std::make_unique<tree>(tree{2, {}}));
    t.children.push_back(std::make_unique<tree>(tree{3, {}}));
    t.children[0]->children.push_back(std::make_unique<tree>(tree{4, {}}));
    for (int v : walk(t))
      std::printf("%d ", v);
    std::printf("\n");
    // [end snippet]
  }
  {
    // [snippet: range]
    std::vector<std::string> names{"ada", "grace"};
    auto greet = [&names]() -> corio::generator<std::string> {
      co_yield "hello";
      co_yield corio::yield_from(names); // any range: a borrowed one is iterated in place
    };
    for (const std::string& s : greet())
      std::printf("%s\n", s.c_str());
    // [end snippet]
  }
}
