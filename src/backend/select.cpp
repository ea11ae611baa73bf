// Choosing the backend: event_loop::options::backend, else CORIO_BACKEND, else the default.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

#include "backend.hpp"
#include "corio/errors.hpp"

namespace corio::detail {

void backend::recv(int, std::size_t, io_completion*, bool) {
  throw loop_error("corio: this backend has no completion-based recv");
}

void backend::start_file_job(file_job* job) {
  delete job;
  throw loop_error("corio: this backend has no file jobs");
}

void backend::accept(int, net_completion*, bool) {
  throw loop_error("corio: this backend has no completion-based accept");
}

void backend::connect(int, const void*, unsigned, net_completion*) {
  throw loop_error("corio: this backend has no completion-based connect");
}

long backend::take_stashed(int, char*, std::size_t, int&) noexcept { return -1; }

backend_kind backend_from_env() {
  const char* v = std::getenv("CORIO_BACKEND");
  if (v == nullptr || *v == '\0')
    return default_backend;
  if (std::strcmp(v, "epoll") == 0)
    return backend_kind::epoll;
  if (std::strcmp(v, "io_uring") == 0 || std::strcmp(v, "uring") == 0)
    return backend_kind::io_uring;
  if (std::strcmp(v, "auto") == 0)
    return backend_kind::automatic;
  throw loop_error(std::string("corio: CORIO_BACKEND=") + v + " is not a backend (expected epoll, io_uring or auto)");
}

std::unique_ptr<backend> make_backend(backend_kind want, backend_kind& chosen) {
  if (want == backend_kind::from_env)
    want = backend_from_env();
  if (want == backend_kind::epoll) {
    chosen = backend_kind::epoll;
    return make_epoll_backend();
  }
  try {
    auto b = make_uring_backend();
    chosen = backend_kind::io_uring;
    return b;
  } catch (const std::system_error& e) {
    if (want == backend_kind::io_uring)
      throw loop_error(std::string("corio: the io_uring backend is unavailable: ") + e.what());
    // auto: say so once per process, then use epoll.
    static bool said = false;
    if (!said) {
      said = true;
      std::fprintf(stderr, "corio: io_uring unavailable (%s), using epoll\n", e.what());
    }
  }
  chosen = backend_kind::epoll;
  return make_epoll_backend();
}

} // namespace corio::detail
