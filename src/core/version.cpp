#include "corio/version.hpp"

#define CORIO_STR2(x) #x
#define CORIO_STR(x) CORIO_STR2(x)

namespace corio {
const char* version() noexcept {
  return CORIO_STR(CORIO_VERSION_MAJOR) "." CORIO_STR(CORIO_VERSION_MINOR) "." CORIO_STR(CORIO_VERSION_PATCH);
}
} // namespace corio
