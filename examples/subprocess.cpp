// Subprocesses (asyncio.subprocess): feed a child and collect its output, read a child line by line,
// and give up on a slow one.
#include <corio/corio.hpp>

#include <csignal>
#include <cstdio>
using namespace std::chrono_literals;

// [snippet: subprocess]
corio::task<> sort_words() {
  // Options and argument lists are named before co_await (g++ 12, HAZARDS.md §2).
  corio::process_options o{.stdin_ = corio::stdio::pipe, .stdout_ = corio::stdio::pipe};
  std::vector<std::string> args{"-f"}; // ignore case
  corio::process sort = co_await corio::create_subprocess_exec("sort", std::move(args), std::move(o));
  corio::communicate_result r = co_await sort.communicate("pear\napple\nfig\n");
  std::printf("%s", r.out.c_str()); // apple fig pear, one a line
}

corio::task<> read_lines() {
  corio::process_options o{.stdout_ = corio::stdio::pipe};
  corio::process sh = co_await corio::create_subprocess_shell("for i in 1 2 3; do echo line $i; done", std::move(o));
  for (std::string line; !(line = co_await sh.stdout_.readline()).empty();)
    std::printf("got: %s", line.c_str());
  co_await sh.wait();
}

corio::task<> give_up() {
  std::vector<std::string> args{"10"};
  corio::process slow = co_await corio::create_subprocess_exec("sleep", std::move(args));
  try {
    co_await corio::wait_for(slow.wait(), 100ms); // cancelling the wait does not kill the child...
  } catch (const corio::timeout_error&) {
    slow.kill(); // ...so kill it
  }
  std::printf("sleep: timed out, killed: %d\n", co_await slow.wait()); // -9: killed by SIGKILL
}

// [end snippet]

// [snippet: subprocess_protocol]
// asyncio's loop.subprocess_exec: callbacks instead of streams.
struct word_count : corio::subprocess_protocol {
  std::size_t bytes[3] = {0, 0, 0};
  corio::event done;
  void pipe_data_received(int fd, std::string_view data) override { bytes[fd] += data.size(); }
  void process_exited() override { std::printf("exited\n"); }
  void connection_lost(std::exception_ptr) override {
    std::printf("stdout: %zu bytes, stderr: %zu bytes\n", bytes[1], bytes[2]);
    done.set();
  }
};

corio::task<> with_a_protocol() {
  auto factory = [] { return std::make_shared<word_count>(); };
  // Without options stdin, stdout and stderr are all pipes (asyncio's default).
  auto [t, p] = co_await corio::subprocess_shell(factory, "cat; echo oops >&2");
  t->get_pipe_transport(0)->write("hello, child\n"); // stdin is a write pipe's transport
  t->get_pipe_transport(0)->close();                 // end of file for cat
  std::printf("returncode %d\n", co_await t->wait());
  co_await p->done.wait(); // connection_lost comes last, once every pipe has ended too
}
// [end snippet]

corio::task<> main_task() {
  co_await sort_words();
  co_await read_lines();
  co_await give_up();
  co_await with_a_protocol();
}

int main() { corio::run(main_task()); }
