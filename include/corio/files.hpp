// corio::read_file / write_file / append_file: whole-file I/O through io_uring, or on the thread pool
// (aiofiles' simple case).
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "corio/task.hpp"
#include "corio/to_thread.hpp"

namespace corio {

namespace detail {
/// The blocking calls the helpers below run on the pool (src/thread/files.cpp). std::system_error
/// naming the path and the failing step on failure.
[[nodiscard]] std::string read_file_blocking(const std::string& path);
void write_file_blocking(const std::string& path, std::string_view data, bool append);
} // namespace detail

/// Reads the whole file at `path`. On the io_uring backend the loop's own ring does it (open, reads,
/// close: no thread); on epoll, the running loop's default thread pool (regular files have no readiness
/// to wait for). Reads until end of file, so files whose size is reported as 0 (/proc) work.
/// std::system_error naming the path on failure (ENOENT, EACCES, EISDIR...), e.g. `corio: read_file:
/// cannot open "app.toml": No such file or directory`; std::invalid_argument, before anything is opened,
/// when `path` contains a NUL byte (open() would cut it there). Cancellable: the await ends at once; a read
/// already running stops at its next step (or finishes in the background on the pool) and its data is
/// dropped.
///
///     std::string config = co_await corio::read_file("app.toml");
[[nodiscard]] task<std::string> read_file(std::string path);

/// Replaces the file at `path` with `data` (created with mode 0666 & ~umask if missing), through
/// io_uring or on the default thread pool. `data` is taken by value: the write may outlive a cancelled
/// await. Cancelling the await skips a write not yet started (thread pool) or lets one already
/// submitted finish. Not atomic (no rename): a reader may see a partly written file. std::system_error
/// naming the path on failure; std::invalid_argument for a path with a NUL byte (nothing is written).
[[nodiscard]] task<> write_file(std::string path, std::string data);

/// Appends `data` to the file at `path` (created if missing), as write_file() does.
[[nodiscard]] task<> append_file(std::string path, std::string data);

} // namespace corio
