#include <corio/corio.hpp>
#include <cstdio>
using namespace std::chrono_literals;

corio::task<int> fetch(int id, std::chrono::milliseconds delay) {
  co_await corio::sleep(delay); // suspends this task; the loop runs the others
  co_return id * 10;
}

corio::task<int> main_task() {
  auto a = corio::spawn(fetch(1, 30ms)); // asyncio.create_task
  auto b = corio::spawn(fetch(2, 10ms));
  try {
    auto deadline = corio::timeout(20ms); // asyncio.timeout
    co_await a;                           // takes 30 ms: interrupted at 20 ms
  } catch (const corio::timeout_error&) {
    std::puts("a timed out");
  }
  co_return co_await b; // finished long ago: 20
}

int main() { std::printf("%d\n", corio::run(main_task())); } // asyncio.run
