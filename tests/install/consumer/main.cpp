#include <corio/corio.hpp>

#include <cstdio>

corio::generator<int> fibonacci() {
  int a = 0, b = 1;
  while (true) {
    co_yield a;
    int next = a + b;
    a = b;
    b = next;
  }
}

int main() {
  std::printf("consumer:");
  int n = 0;
  for (int x : fibonacci()) {
    if (n++ == 10)
      break;
    std::printf(" %d", x);
  }
  std::printf("; corio %s\n", corio::version());
}
