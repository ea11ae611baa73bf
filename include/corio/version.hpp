// corio's version.
#pragma once

#define CORIO_VERSION_MAJOR 0
#define CORIO_VERSION_MINOR 1
#define CORIO_VERSION_PATCH 0

namespace corio {
/// The version of the compiled library, "major.minor.patch" (may differ from the headers' if mismatched).
[[nodiscard]] const char* version() noexcept;
} // namespace corio
