// The tour: the article "Generators - The Beginning of Asynchronicity in Python", section by section, in
// C++ with corio. Each section prints a header and then exactly the lines the article's Python prints.
// Hold this file next to the article: every function mirrors the Python one of the same name.
#include <corio/corio.hpp>

#include <cstdio>
#include <string>

namespace {

void print(const std::string& line) { std::puts(line.c_str()); }
void section(const char* title) { std::printf("\n== %s ==\n", title); }

// --- 1. Coroutines: generators can pause a function ----------------------------------------------
namespace generators {

// def gen_one():
corio::generator<> gen_one() {
  print("Gen one doing some work");
  co_yield corio::none;
  print("Gen one doing more work");
  co_yield corio::none;
}

// def gen_two():
corio::generator<> gen_two() {
  print("Gen two doing some work");
  co_yield corio::none;
  print("Gen two doing more work");
  co_yield corio::none;
}

// def scheduler():
void scheduler() {
  auto g1 = gen_one();
  auto g2 = gen_two();
  corio::next(g1);
  corio::next(g2);
  corio::next(g1);
  corio::next(g2);
}

} // namespace generators

// --- 2. send(): coroutines that take values (PEP 342) ----------------------------------------------
namespace sending {

// def coroutine_one():  — it receives a string through send()
corio::coroutine<void, std::string> coroutine_one() {
  print("Coroutine one doing some work");
  std::string data = co_yield corio::none; // data = (yield)
  print("Received data: " + data);
  print("Coroutine one doing more work");
  co_yield corio::none;
}

void run() {
  auto cor1 = coroutine_one();
  (void)cor1.send(corio::none); // cor1.send(None)
  (void)cor1.send("lorem ipsum");
}

} // namespace sending

// --- 3. Nested coroutines: yield from (PEP 380) ---------------------------------------------------
namespace nested {

corio::coroutine<void> coroutine_one() {
  print("Coroutine one doing some work");
  co_yield corio::none;
  print("Coroutine one doing more work");
  co_yield corio::none;
}

corio::coroutine<void> coroutine_two() {
  print("Coroutine two doing some work");
  co_yield corio::none;
  print("Coroutine two doing more work");
  co_yield corio::none;
}

// def coroutine_three(): yield from coroutine_one(); yield from coroutine_two()
corio::coroutine<void> coroutine_three() {
  co_await corio::yield_from(coroutine_one());
  co_await corio::yield_from(coroutine_two());
}

void run() {
  auto cor3 = coroutine_three();
  while (cor3.next()) {
  }
}

} // namespace nested

// --- 4. A better scheduler: a deque -------------------------------------------------------------
// def scheduler(coroutines): q = deque(coroutines); pop, send(None), re-queue until StopIteration.
// corio::round_robin is exactly that loop.
void scheduler_section() {
  corio::round_robin scheduler;
  scheduler.add(nested::coroutine_one());
  scheduler.add(nested::coroutine_two());
  scheduler.run();
}

// --- 5. How coroutines help with asynchronous I/O -----------------------------------------------
namespace io {

// def fetch_data():
corio::coroutine<void, void, int> fetch_data() {
  print("Fetching data awaiting IO..");
  // Suspends the coroutine while awaiting I/O to be ready. Let's assume that the scheduler only
  // reschedules the coroutine again when I/O is ready.
  co_yield corio::none;
  print("Fetching data IO ready..");
  co_return 10; // mocked data
}

// def coroutine_four():
corio::coroutine<void> coroutine_four() {
  print("Coroutine four doing some work");
  int data = co_await corio::yield_from(fetch_data()); // I/O related coroutine
  print("Coroutine four doing more work with data: " + std::to_string(data));
  co_yield corio::none;
}

void run() {
  corio::round_robin scheduler;
  scheduler.add(nested::coroutine_one());
  scheduler.add(coroutine_four());
  scheduler.run();
}

} // namespace io

} // namespace

int main() {
  std::puts("corio: the article, in C++");

  section("1. Coroutines: generators can pause a function");
  generators::scheduler();

  section("2. send(): passing values into a coroutine (PEP 342)");
  sending::run();

  section("3. Nested coroutines: yield from (PEP 380)");
  nested::run();

  section("4. A better scheduler: a deque of coroutines");
  scheduler_section();

  section("5. How coroutines help with asynchronous I/O (mocked)");
  io::run();
  return 0;
}
