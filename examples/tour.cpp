// The tour: the article "Generators - The Beginning of Asynchronicity in Python", section by section, in
// C++ with corio. Each section prints a header and then exactly the lines the article's Python prints.
// Hold this file next to the article: every function mirrors the Python one of the same name.
#include <corio/corio.hpp>
#include <corio/future.hpp>
#include <corio/io.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
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

// --- 6. The event loop: resume a coroutine only when its I/O is ready ------------------------------
// "while the event loop is not stopped: poll for I/O and schedule reads/writes that are ready; schedule
// the coroutines set for a 'later' time; run the scheduled coroutines" — that is corio::event_loop.
// Here fetch_data really waits: on a pipe that a timer callback writes to 10 ms later.
namespace loop {

using namespace std::chrono_literals;

corio::task<> coroutine_one() {
  print("Coroutine one doing some work");
  co_await corio::sleep(0s); // yield to the loop, like a bare yield
  print("Coroutine one doing more work");
}

corio::task<int> fetch_data(int fd) {
  print("Fetching data awaiting IO..");
  co_await corio::readable(fd); // suspended until the kernel has data for us
  char buf[16] = {};
  auto n = ::read(fd, buf, sizeof buf - 1);
  print("Fetching data IO ready..");
  co_return n > 0 ? std::stoi(buf) : -1;
}

corio::task<> coroutine_four(int fd) {
  print("Coroutine four doing some work");
  int data = co_await fetch_data(fd); // I/O related coroutine
  print("Coroutine four doing more work with data: " + std::to_string(data));
}

corio::task<> scheduler() {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0)
    throw std::runtime_error("pipe2 failed");
  // The "kernel" delivers the data 10 ms from now.
  corio::event_loop::current()->call_later(10ms, [fd = pipe_fds[1]] { (void)!::write(fd, "10", 2); });
  auto one = corio::spawn(coroutine_one());
  auto four = corio::spawn(coroutine_four(pipe_fds[0]));
  co_await one;
  co_await four;
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

} // namespace loop

// --- 7. Cleaner code with async/await ---------------------------------------------------------------
// `async def coroutine_four(): data = await fetch_data()`, where fetch_data() returns an awaitable: a
// Future that the loop completes when the (simulated) I/O is done.
namespace async_await {

using namespace std::chrono_literals;

corio::future<int> fetch_data() {
  print("Fetching data awaiting IO..");
  corio::future<int> result;
  corio::event_loop::current()->call_later(10ms, [result]() mutable {
    print("Fetching data IO ready..");
    result.set_result(10);
  });
  return result;
}

corio::task<> coroutine_four() {
  print("Coroutine four doing some work");
  int data = co_await fetch_data();
  print("Coroutine four doing more work with data: " + std::to_string(data));
}

} // namespace async_await

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

  section("6. The event loop: resume only when the I/O is ready");
  corio::run(loop::scheduler());

  section("7. Cleaner code with async/await");
  corio::run(async_await::coroutine_four());
  return 0;
}
