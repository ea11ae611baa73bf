// corio::read_file / write_file / append_file.
#include <corio/files.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>
#include <corio/timeout.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <thread>

#include "leak_check.hpp"
#include "loop_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using corio::task;

/// A fresh directory under $TMPDIR (or /tmp), removed with its files at the end of the test.
class temp_dir {
public:
  temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/corio-files-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::system_error(errno, std::generic_category(), "mkdtemp");
    path_ = pattern;
  }
  temp_dir(const temp_dir&) = delete;
  ~temp_dir() { (void)std::system(("rm -rf '" + path_ + "'").c_str()); }
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }
  [[nodiscard]] const std::string& path() const { return path_; }

private:
  std::string path_;
};

/// The whole content of `path`, read without corio ("" if it cannot be opened).
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::size_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::size_t>(st.st_size) : 0;
}

void put(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

/// Expects `call` to raise std::system_error with `code`, its message naming `path`.
template <class Call> task<> expect_error(Call call, std::errc code, std::string path) {
  bool threw = false;
  try {
    co_await std::move(call);
  } catch (const std::system_error& e) {
    threw = true;
    EXPECT_EQ(e.code(), std::make_error_code(code)) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_TRUE(threw);
}

/// Expects `call` to raise std::invalid_argument with exactly `message`.
template <class Call> task<> expect_invalid(Call call, std::string message) {
  std::string what;
  try {
    co_await std::move(call);
  } catch (const std::invalid_argument& e) {
    what = e.what();
  }
  EXPECT_EQ(what, message);
}

class Files : public corio::testing::ordered_and_shuffled {};
INSTANTIATE_TEST_SUITE_P(Orders, Files, corio::testing::ready_orders());

TEST_P(Files, WriteThenReadBack) {
  temp_dir dir;
  run([&]() -> task<> {
    const std::string path = dir.file("a.txt");
    co_await corio::write_file(path, "hello\n");
    EXPECT_EQ(co_await corio::read_file(path), "hello\n");
    co_await corio::write_file(path, "replaced"); // truncates
    EXPECT_EQ(co_await corio::read_file(path), "replaced");
  });
}

TEST_P(Files, BinaryAndLargeContent) {
  temp_dir dir;
  run([&]() -> task<> {
    std::string data(3 * 1024 * 1024 + 17, '\0');
    for (std::size_t i = 0; i < data.size(); ++i)
      data[i] = static_cast<char>((i * 131) ^ (i >> 9));
    const std::string path = dir.file("big.bin");
    co_await corio::write_file(path, data);
    std::string back = co_await corio::read_file(path);
    EXPECT_EQ(back.size(), data.size());
    EXPECT_TRUE(back == data);
  });
}

TEST_P(Files, EmptyFile) {
  temp_dir dir;
  run([&]() -> task<> {
    co_await corio::write_file(dir.file("empty"), "");
    EXPECT_EQ(co_await corio::read_file(dir.file("empty")), "");
  });
}

TEST_P(Files, AppendAppendsAndCreates) {
  temp_dir dir;
  run([&]() -> task<> {
    const std::string path = dir.file("log");
    co_await corio::append_file(path, "one\n");
    co_await corio::append_file(path, "two\n");
    EXPECT_EQ(co_await corio::read_file(path), "one\ntwo\n");
  });
}

TEST_P(Files, FilesWithoutASizeAreReadToTheEnd) {
  run([]() -> task<> {
    std::string status = co_await corio::read_file("/proc/self/status"); // st_size is 0
    EXPECT_NE(status.find("Name:"), std::string::npos);
    EXPECT_EQ(status.back(), '\n');
  });
}

TEST_P(Files, ErrorsNameThePath) {
  temp_dir dir;
  run([&]() -> task<> {
    const std::string missing = dir.file("missing.txt");
    co_await expect_error(corio::read_file(missing), std::errc::no_such_file_or_directory, missing);
    const std::string no_dir = dir.file("no/such/dir.txt");
    co_await expect_error(corio::write_file(no_dir, "x"), std::errc::no_such_file_or_directory, no_dir);
    co_await expect_error(corio::append_file(no_dir, "x"), std::errc::no_such_file_or_directory, no_dir);
    co_await expect_error(corio::read_file(dir.path()), std::errc::is_a_directory, dir.path());
    co_await expect_error(corio::write_file(dir.path(), "x"), std::errc::is_a_directory, dir.path());
  });
}

TEST_P(Files, APathThroughAFileIsNotADirectory) {
  temp_dir dir;
  run([&]() -> task<> {
    co_await corio::write_file(dir.file("plain"), "x");
    const std::string inside = dir.file("plain/child");
    co_await expect_error(corio::read_file(inside), std::errc::not_a_directory, inside);
    co_await expect_error(corio::write_file(inside, "y"), std::errc::not_a_directory, inside);
  });
}

TEST_P(Files, APathWithANulByteIsRefusedBeforeTheFileSystemIsTouched) {
  // open() would stop at the NUL: "nul_a\0.txt" would read "nul_a", and writes would make "nul_b".
  temp_dir dir;
  run([&]() -> task<> {
    co_await corio::write_file(dir.file("nul_a"), "the wrong file");
    const std::string read_path = dir.file(std::string("nul_a\0.txt", 10));
    const std::string shown = dir.file("nul_a\\0.txt");
    co_await expect_invalid(corio::read_file(read_path),
                            "corio: read_file: the path \"" + shown + "\" contains a NUL byte");
    const std::string write_path = dir.file(std::string("nul_b\0.txt", 10));
    const std::string shown_b = dir.file("nul_b\\0.txt");
    co_await expect_invalid(corio::write_file(write_path, "x"),
                            "corio: write_file: the path \"" + shown_b + "\" contains a NUL byte");
    co_await expect_invalid(corio::append_file(write_path, "x"),
                            "corio: append_file: the path \"" + shown_b + "\" contains a NUL byte");
    struct stat st {};
    EXPECT_NE(::stat(dir.file("nul_b").c_str(), &st), 0) << "a file was made at the path cut at the NUL";
    EXPECT_EQ(co_await corio::read_file(dir.file("nul_a")), "the wrong file");
  });
}

// A write whose await is cancelled (here by a timeout) and whose loop then closes: the file holds the
// old content (a pool write not yet started is skipped) or the new one (a write already submitted
// finishes: closing the loop waits for it), never the truncated, empty file of a write cut short. On
// io_uring every write is submitted when its await begins, so the new content is always there.
TEST_P(Files, ACancelledWriteFinishesWhenTheLoopCloses) {
  temp_dir dir;
  const std::string path = dir.file("f");
  const std::string old = "old content\n";
  const std::string data(16u << 20, 'n');
  for (bool append : {false, true}) {
    put(path, old);
    bool on_ring = false;
    run([&]() -> task<> {
      on_ring = corio::event_loop::current()->can_file_io();
      try {
        // Mock clock: on the ring the timeout fires before the open, the write and the close are all done
        // (one poll each); on the pool, time stands still until the thread is done.
        if (append)
          co_await corio::wait_for(corio::append_file(path, data), 1us);
        else
          co_await corio::wait_for(corio::write_file(path, data), 1us);
      } catch (const corio::timeout_error&) {
      }
    });
    const std::string got = slurp(path);
    const std::string want = append ? old + data : data;
    if (on_ring) {
      EXPECT_TRUE(got == want) << "append " << append << ": " << got.size() << " bytes, not " << want.size();
    } else {
      EXPECT_TRUE(got == want || got == old) << "append " << append << ": " << got.size() << " bytes";
    }
  }
}

TEST(FilesCancel, ACancelledWriteFinishesInTheBackgroundWhileTheLoopRuns) {
  // The loop goes on after the cancel: the write finishes without it (on the ring as on the pool), and
  // the file is complete before the loop closes.
  corio::testing::leak_check leaks;
  temp_dir dir;
  const std::string path = dir.file("f");
  put(path, "old content\n");
  const std::string data(16u << 20, 'w');
  corio::run([](std::string p, std::string d) -> task<> {
    const bool on_ring = corio::event_loop::current()->can_file_io();
    try {
      co_await corio::wait_for(corio::write_file(p, d), 1us);
    } catch (const corio::timeout_error&) {
    }
    if (!on_ring)
      co_return; // the pool may have skipped it (not started yet); if not, closing the loop joins it
    for (int i = 0; i < 10000 && file_size(p) != d.size(); ++i) // a hang guard: 10 s
      co_await corio::sleep(1ms);
    EXPECT_TRUE(slurp(p) == d) << slurp(p).size() << " bytes, not " << d.size();
  }(path, data));
  const std::string got = slurp(path);
  EXPECT_TRUE(got == data || got == "old content\n") << got.size() << " bytes";
}

TEST(FilesCancel, ACancelledReadEndsAtOnceAndTheThreadFinishesLater) {
  // A FIFO that this test holds open for writing: the pool thread's read() blocks until the test closes
  // it, so the cancel arrives while the read is running (or, if the thread is slow to start, before it
  // began: then it is skipped). Either way the await ends at once and nothing is left to hang.
  corio::testing::leak_check leaks;
  temp_dir dir;
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int writer = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC); // never blocks, unlike O_WRONLY
  ASSERT_GE(writer, 0);
  corio::run([](std::string path, int w) -> task<> {
    auto reader =
        corio::spawn([](std::string p) -> task<std::string> { co_return co_await corio::read_file(p); }(path));
    co_await corio::sleep(10ms); // real time: most likely the thread is blocked in read() by now
    reader.cancel();
    EXPECT_TRUE(co_await corio::testing::was_cancelled(reader));
    ::close(w); // the last writer goes: the blocked read() sees end of file and the thread finishes
  }(fifo, writer));
  // run() returned: the loop closed and joined its pool, so the thread's read has finished.
}

/// Feeds a FIFO "forever" from a thread: 16 KiB a millisecond (so a read that never stops takes at most
/// ~50 MiB) until the reader closes its end (EPIPE: `reader_gone`) or 3 s have passed (a hang guard).
/// Opens without blocking, so it never waits for a reader that does not come.
class fifo_feeder {
public:
  explicit fifo_feeder(std::string path) : thread_([this, p = std::move(path)] { feed(p); }) {}
  fifo_feeder(const fifo_feeder&) = delete;
  ~fifo_feeder() { join(); }
  void join() {
    if (thread_.joinable())
      thread_.join();
  }
  std::atomic<std::size_t> fed{0};
  std::atomic<bool> reader_gone{false};

private:
  void feed(const std::string& path) {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE); // EPIPE instead (a pending SIGPIPE dies with this thread)
    pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    int fd = -1;
    while (fd < 0 && std::chrono::steady_clock::now() < deadline) {
      fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC); // ENXIO until the reader opened it
      if (fd < 0)
        std::this_thread::sleep_for(1ms);
    }
    const std::string chunk(16 * 1024, 'z');
    while (fd >= 0 && std::chrono::steady_clock::now() < deadline) {
      ssize_t n = ::write(fd, chunk.data(), chunk.size());
      if (n < 0 && errno == EPIPE) {
        reader_gone = true;
        break;
      }
      if (n > 0)
        fed += static_cast<std::size_t>(n);
      std::this_thread::sleep_for(1ms);
    }
    if (fd >= 0)
      ::close(fd);
  }
  std::thread thread_;
};

TEST(FilesCancel, ACancelledReadOfAnEndlessStreamStops) {
  // A FIFO fed for as long as it is read (as /dev/zero is): the cancelled read stops at its next step and
  // closes the FIFO, so the feeder sees EPIPE. Before, the pool thread read on until the feeder's hang guard
  // (3 s), and closing the loop waited for it.
  corio::testing::leak_check leaks;
  temp_dir dir;
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  fifo_feeder feeder(fifo);
  corio::run([](std::string path, fifo_feeder* f) -> task<> {
    auto reader =
        corio::spawn([](std::string p) -> task<std::string> { co_return co_await corio::read_file(p); }(path));
    for (int i = 0; i < 3000 && f->fed < 256 * 1024; ++i) // being read (a hang guard: 3 s)
      co_await corio::sleep(1ms);
    EXPECT_GE(f->fed, 256u * 1024);
    reader.cancel();
    EXPECT_TRUE(co_await corio::testing::was_cancelled(reader));
  }(fifo, &feeder));
  feeder.join();
  EXPECT_TRUE(feeder.reader_gone) << "the read went on after its cancel: " << feeder.fed << " bytes fed";
}

TEST(FilesCancel, ACancelledReadOfAnEndlessDeviceStops) {
  // A character device that never ends, as /dev/zero (which a read that never stops would turn into all
  // the memory there is): a pseudo-terminal in raw mode, fed by a thread through its master at 16 KiB a
  // millisecond. The cancelled read stops at its next read() and closes the terminal, which the feeder
  // sees as POLLHUP on the master. Before, it read on until the feeder's hang guard (3 s).
  corio::testing::leak_check leaks;
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  const std::string slave = ::ptsname(master);
  {
    const int s = ::open(slave.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(s, 0);
    termios t{};
    ASSERT_EQ(::tcgetattr(s, &t), 0);
    ::cfmakeraw(&t); // bytes as they come: no line editing, no echo back into the master
    ASSERT_EQ(::tcsetattr(s, TCSANOW, &t), 0);
    ::close(s); // the settings stay with the terminal while the master is open
  }
  std::atomic<std::size_t> fed{0};
  std::atomic<bool> reader_gone{false};
  std::thread feeder([&] {
    const std::string chunk(16 * 1024, 'z');
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    bool opened = false; // the reader has the terminal open (its writes are being taken)
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{master, POLLOUT, 0};
      (void)::poll(&p, 1, 0);
      if ((p.revents & POLLHUP) != 0 && opened) {
        reader_gone = true;
        break;
      }
      ssize_t n = ::write(master, chunk.data(), chunk.size());
      if (n > 0) {
        fed += static_cast<std::size_t>(n);
        opened = opened || fed > 256u * 1024; // more than the terminal's buffers hold: someone reads
      }
      std::this_thread::sleep_for(1ms);
    }
    ::close(master); // a read still going sees EIO, and ends
  });
  corio::run([](std::string path, std::atomic<std::size_t>* f) -> task<> {
    auto reader =
        corio::spawn([](std::string p) -> task<std::string> { co_return co_await corio::read_file(p); }(path));
    for (int i = 0; i < 3000 && *f < 512 * 1024; ++i) // being read (a hang guard: 3 s)
      co_await corio::sleep(1ms);
    EXPECT_GE(*f, 512u * 1024);
    reader.cancel();
    EXPECT_TRUE(co_await corio::testing::was_cancelled(reader));
  }(slave, &fed));
  feeder.join();
  EXPECT_TRUE(reader_gone) << "the read went on after its cancel: " << fed << " bytes fed";
}

TEST(FilesCancel, ACancelledWriteToAFifoWithoutAReaderIsSkipped) {
  // No reader ever opens the FIFO: the write waits for one (as a blocking open would), and once its await
  // is cancelled it gives up: nothing was written, and the loop closes instead of waiting forever.
  corio::testing::leak_check leaks;
  temp_dir dir;
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // The hang guard: after 5 s a reader comes after all, so that a write which did not give up ends
  // (and the test fails) instead of hanging the loop's close.
  std::atomic<bool> done{false}, rescued{false};
  std::thread guard([&] {
    for (int i = 0; i < 5000 && !done; ++i)
      std::this_thread::sleep_for(1ms);
    while (!done) {
      const int fd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      rescued = true;
      std::this_thread::sleep_for(100ms);
      ::close(fd);
    }
  });
  for (bool append : {false, true}) {
    corio::run([](std::string path, bool a) -> task<> {
      bool timed_out = false;
      try {
        if (a)
          co_await corio::wait_for(corio::append_file(path, "x"), 20ms);
        else
          co_await corio::wait_for(corio::write_file(path, "x"), 20ms);
      } catch (const corio::timeout_error&) {
        timed_out = true;
      }
      EXPECT_TRUE(timed_out);
    }(fifo, append));
  }
  done = true;
  guard.join();
  EXPECT_FALSE(rescued) << "the loop's close waited for a write to a FIFO without a reader";
}

TEST(FilesCancel, AWriteToAFifoWaitsForItsReader) {
  // The reader comes after the write began: the write waits for it, then goes through.
  corio::testing::leak_check leaks;
  temp_dir dir;
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] {
    std::this_thread::sleep_for(30ms);
    got = slurp(fifo); // opens (blocking until the writer is there) and reads to the end
  });
  corio::run([](std::string path) -> task<> { co_await corio::write_file(path, std::string(200000, 'r')); }(fifo));
  reader.join();
  EXPECT_EQ(got, std::string(200000, 'r'));
}

} // namespace
