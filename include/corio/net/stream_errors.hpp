// The errors of stream_reader (asyncio.IncompleteReadError, asyncio.LimitOverrunError).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace corio {

/// The stream ended before a read could be satisfied (readexactly, readuntil). The bytes that were
/// there are removed from the stream and carried here, so nothing is lost.
class incomplete_read_error : public std::runtime_error {
public:
  /// `expected`: the number of bytes asked for, or no_size for readuntil (a separator was expected).
  incomplete_read_error(std::string partial, std::size_t expected)
      : std::runtime_error(message(partial.size(), expected)), partial_(std::move(partial)), expected_(expected) {}

  static constexpr std::size_t no_size = static_cast<std::size_t>(-1);
  [[nodiscard]] const std::string& partial() const noexcept { return partial_; }
  [[nodiscard]] std::string& partial() noexcept { return partial_; }
  [[nodiscard]] std::size_t expected() const noexcept { return expected_; }

private:
  static std::string message(std::size_t got, std::size_t expected) {
    std::string m("corio: incomplete read: ");
    m += std::to_string(got);
    m += " bytes read before end of stream, ";
    m += expected == no_size ? std::string("separator not found") : std::to_string(expected) + " expected";
    return m;
  }
  std::string partial_;
  std::size_t expected_;
};

/// readuntil()/readline() found no separator within the reader's limit. readuntil leaves the data in the
/// buffer (read it with read(n), or readexactly(consumed())); readline drops the overlong line (as
/// asyncio does, so a line-based loop can go on).
class limit_overrun_error : public std::runtime_error {
public:
  limit_overrun_error(const std::string& what, std::size_t consumed) : std::runtime_error(what), consumed_(consumed) {}
  /// How many bytes can be taken out before the separator could start (asyncio's `consumed`).
  [[nodiscard]] std::size_t consumed() const noexcept { return consumed_; }

private:
  std::size_t consumed_;
};

} // namespace corio
