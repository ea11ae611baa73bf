// corio::read_file / write_file / append_file: whole-file I/O through io_uring, or on the thread pool
// (aiofiles' simple case).
#pragma once

#include <atomic>
#include <string>
#include <string_view>
#include <utility>

#include "corio/task.hpp"
#include "corio/to_thread.hpp"

namespace corio {

namespace detail {
/// The blocking calls the helpers below run on the pool (src/thread/files.cpp). std::system_error
/// naming the path and the failing step on failure. `stop` (may be null) is set when the await is
/// cancelled: a read stops before its next read() (what it read is returned, and dropped), a write
/// still waiting to open a FIFO that has no reader gives up; a write once open finishes.
[[nodiscard]] std::string read_file_blocking(const std::string& path, const std::atomic<bool>* stop = nullptr);
void write_file_blocking(const std::string& path, std::string_view data, bool append,
                         const std::atomic<bool>* stop = nullptr);
} // namespace detail

/// Reads the whole file at `path`. On the io_uring backend the loop's own ring does it (open, reads,
/// close: no thread); on epoll, the running loop's default thread pool (regular files have no readiness
/// to wait for). Reads until end of file, so files whose size is reported as 0 (/proc) work.
/// std::system_error naming the path on failure (ENOENT, EACCES, EISDIR...), e.g. `corio: read_file:
/// cannot open "app.toml": No such file or directory`; std::invalid_argument, before anything is opened,
/// when `path` contains a NUL byte (open() would cut it there). Cancellable: the await ends at once and
/// the read stops at its next step (the read in progress completes first), its data dropped, so an
/// endless file (/dev/zero, a FIFO fed forever) can be read under a timeout. A FIFO with no writer yet
/// is waited for, as open(2) does: on the pool a cancel ends that wait too (within 10 ms); on io_uring
/// the open waits in a kernel worker until a writer comes or the loop closes (which cancels it).
///
///     std::string config = co_await corio::read_file("app.toml");
[[nodiscard]] task<std::string> read_file(std::string path);

/// Replaces the file at `path` with `data` (created with mode 0666 & ~umask if missing), through
/// io_uring or on the default thread pool. `data` is taken by value: the write may outlive a cancelled
/// await. Cancelling the await ends it at once and skips a write not yet started, or lets one already
/// under way finish in the background, so the file ends with its old content or all of the new, never
/// truncated: on the pool a call not yet started is skipped and a running one finishes (closing the
/// loop joins the pool); on io_uring the write is under way once awaited, and a loop that closes
/// meanwhile waits for it, 2 s at most, then cancels it (the file may then be left partly written). A
/// FIFO with no reader yet is waited for, as open(2) does, and a cancel skips the write then (nothing
/// was written); once open, a write to a FIFO whose reader does not read waits for it (on the pool,
/// closing the loop too). Not atomic (no rename): a reader may see a partly written file.
/// std::system_error naming the path on failure; std::invalid_argument for a path with a NUL byte
/// (nothing is written).
[[nodiscard]] task<> write_file(std::string path, std::string data);

/// Appends `data` to the file at `path` (created if missing), as write_file() does.
[[nodiscard]] task<> append_file(std::string path, std::string data);

} // namespace corio
