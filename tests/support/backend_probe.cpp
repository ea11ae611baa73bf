// Exits 0 when a loop can use io_uring here, 77 (and says why) when it cannot: scripts/test runs the
// suite a second time on the other backend only when both exist.
#include <corio/event_loop.hpp>
#include <cstdio>

int main() {
  try {
    corio::event_loop loop({.backend = corio::backend_kind::io_uring});
    std::puts("io_uring");
    return 0;
  } catch (const corio::loop_error& e) {
    std::printf("%s\n", e.what());
    return 77;
  }
}
