// corio::read_file / write_file / append_file.
#include <corio/files.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/spawn.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>

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

} // namespace
