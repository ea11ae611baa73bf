#include "corio/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace corio::detail {

namespace {

[[noreturn]] void fail(int err, const char* what, const std::string& path) {
  std::string message("corio: ");
  message.append(what).append(" \"").append(path).append("\"");
  throw std::system_error(err, std::generic_category(), message);
}

/// Closes the fd on every path; a close() error is reported by close_checked() only.
class file {
public:
  file(const std::string& path, int flags, const char* what) : path_(path) {
    do
      fd_ = ::open(path.c_str(), flags | O_CLOEXEC, 0666);
    while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0)
      fail(errno, what, path);
  }
  file(const file&) = delete;
  file& operator=(const file&) = delete;
  ~file() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  [[nodiscard]] int fd() const noexcept { return fd_; }
  /// For writes: a failing close() can be the first report of a failed write (NFS, quota).
  void close_checked(const char* what) {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) < 0 && errno != EINTR)
      fail(errno, what, path_);
  }

private:
  const std::string& path_;
  int fd_ = -1;
};

} // namespace

std::string read_file_blocking(const std::string& path) {
  file f(path, O_RDONLY, "read_file: cannot open");
  std::string out;
  struct stat st {};
  if (::fstat(f.fd(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
    out.reserve(static_cast<std::size_t>(st.st_size) + 1); // +1: the read that sees end of file
  std::size_t used = 0;
  for (;;) {
    if (out.size() - used < 4096)
      out.resize(std::max<std::size_t>(out.capacity(), used + 65536));
    ssize_t n = ::read(f.fd(), out.data() + used, out.size() - used);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fail(errno, "read_file: cannot read", path);
    }
    if (n == 0)
      break;
    used += static_cast<std::size_t>(n);
  }
  out.resize(used);
  return out;
}

void write_file_blocking(const std::string& path, std::string_view data, bool append) {
  const char* what = append ? "append_file: cannot open" : "write_file: cannot open";
  file f(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), what);
  while (!data.empty()) {
    ssize_t n = ::write(f.fd(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fail(errno, append ? "append_file: cannot write" : "write_file: cannot write", path);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  f.close_checked(append ? "append_file: cannot close" : "write_file: cannot close");
}

} // namespace corio::detail
