// corio::read_file / write_file / append_file: whole-file I/O on the thread pool (aiofiles' simple case).
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "corio/to_thread.hpp"

namespace corio {

namespace detail {
/// The blocking calls the helpers below run on the pool (src/thread/files.cpp). std::system_error
/// naming the path and the failing step on failure.
[[nodiscard]] std::string read_file_blocking(const std::string& path);
void write_file_blocking(const std::string& path, std::string_view data, bool append);
} // namespace detail

/// Reads the whole file at `path` on the running loop's default thread pool (regular files have no
/// readiness to wait for: epoll cannot watch them; io_uring will do this without a thread). Reads until
/// end of file, so files whose size is reported as 0 (/proc) work. std::system_error naming the path
/// on failure (ENOENT, EACCES, EISDIR...). Cancellable like to_thread(): the await ends at once; a read
/// already running finishes in the background and its data is dropped.
///
///     std::string config = co_await corio::read_file("app.toml");
[[nodiscard]] inline auto read_file(std::string path) {
  auto read = [p = std::move(path)] { return detail::read_file_blocking(p); };
  return to_thread(std::move(read));
}

/// Replaces the file at `path` with `data` (created with mode 0666 & ~umask if missing), on the default
/// thread pool. `data` is taken by value: the write may outlive a cancelled await. Cancelling the await
/// skips a write not yet started; one already running finishes. Not atomic (no rename): a reader may
/// see a partly written file. std::system_error naming the path on failure.
[[nodiscard]] inline auto write_file(std::string path, std::string data) {
  auto write = [p = std::move(path), d = std::move(data)] { detail::write_file_blocking(p, d, false); };
  return to_thread(std::move(write));
}

/// Appends `data` to the file at `path` (created if missing), as write_file() does.
[[nodiscard]] inline auto append_file(std::string path, std::string data) {
  auto append = [p = std::move(path), d = std::move(data)] { detail::write_file_blocking(p, d, true); };
  return to_thread(std::move(append));
}

} // namespace corio
