// Guide, step 5: "resume the coroutine only when its I/O is ready": corio::readable / corio::writable.
#include <corio/corio.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>

using namespace std::chrono_literals;

// [snippet: read-some]
// Try the system call first; only when it would block, suspend until the kernel says the fd is
// readable, then try again. The task costs nothing while it waits.
corio::task<std::string> read_some(int fd) {
  for (;;) {
    char buf[64];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n >= 0)
      co_return std::string(buf, static_cast<std::size_t>(n));
    if (errno != EAGAIN)
      throw std::system_error(errno, std::generic_category(), "read");
    std::printf("nothing to read yet: waiting\n");
    co_await corio::readable(fd);
  }
}

corio::task<> send_later(int fd) {
  co_await corio::sleep(10ms); // the "network" answers a little later
  std::printf("writing\n");
  (void)!::write(fd, "ping", 4);
}
// [end snippet]

// [snippet: drain-later]
corio::task<> drain_later(int fd) {
  co_await corio::sleep(10ms);
  char buf[4096];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
  std::printf("reader emptied the pipe\n");
}
// [end snippet]

corio::task<> main_task() {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
    throw std::system_error(errno, std::generic_category(), "pipe2");
  {
    // [snippet: read-some-use]
    auto writer = corio::spawn(send_later(fds[1]));
    std::string got = co_await read_some(fds[0]);
    std::printf("read %s\n", got.c_str());
    co_await writer;
    // [end snippet]
  }
  {
    // [snippet: writable]
    const std::string block(4096, 'x');
    while (::write(fds[1], block.data(), block.size()) > 0) {
    } // until EAGAIN: the pipe is full
    std::printf("pipe full: waiting until writable\n");
    auto reader = corio::spawn(drain_later(fds[0]));
    co_await corio::writable(fds[1]);
    std::printf("writable again\n");
    co_await reader;
    // [end snippet]
  }
  ::close(fds[0]);
  ::close(fds[1]);
}

int main() { corio::run(main_task()); }
