// Streams over pipes: open_pipe_reader, open_pipe_writer, open_pipe.
#include "corio/net/pipe.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

#include "corio/net/connection.hpp"
#include "stream_transport.hpp"

namespace corio::detail {

namespace {

const char* kind_of(mode_t mode) noexcept {
  if (S_ISREG(mode))
    return "a regular file";
  if (S_ISDIR(mode))
    return "a directory";
  if (S_ISBLK(mode))
    return "a block device";
  return nullptr; // a FIFO, a socket or a character device: something epoll waits for
}

} // namespace

std::string pipe_label(int fd, pipe_end end) {
  return std::string(end == pipe_end::read ? "read pipe (fd " : "write pipe (fd ") + std::to_string(fd) + ")";
}

socket adopt_pipe(int fd, pipe_end end, const char* who) {
  const std::string name = std::string("corio: ") + who + ": fd " + std::to_string(fd);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) < 0)
    throw std::system_error(fd < 0 ? EBADF : errno, std::system_category(), name);
  if (const char* kind = kind_of(st.st_mode))
    throw std::invalid_argument(name + " is " + kind +
                                ": pipe streams are for pipes, FIFOs, sockets and character devices");
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0)
    throw std::system_error(errno, std::system_category(), name);
  const int mode = flags & O_ACCMODE;
  if (end == pipe_end::read && mode == O_WRONLY)
    throw std::invalid_argument(name + " is not open for reading");
  if (end == pipe_end::write && mode == O_RDONLY)
    throw std::invalid_argument(name + " is not open for writing");
  return socket(fd); // non-blocking and close-on-exec from here
}

} // namespace corio::detail

namespace corio {

namespace {

std::shared_ptr<detail::stream_transport> pipe_transport(socket s, detail::pipe_end end, const stream_options& o) {
  std::string label = detail::pipe_label(s.fd(), end);
  return std::make_shared<detail::stream_transport>(std::move(s), std::move(label), o);
}

} // namespace

stream_reader open_pipe_reader(int fd, stream_options options) {
  detail::check_stream_limit(options.limit, "open_pipe_reader()"); // before the fd is taken
  socket s = detail::adopt_pipe(fd, detail::pipe_end::read, "open_pipe_reader");
  return stream_reader(pipe_transport(std::move(s), detail::pipe_end::read, options));
}

stream_writer open_pipe_writer(int fd, stream_options options) {
  detail::check_stream_limit(options.limit, "open_pipe_writer()"); // before the fd is taken
  socket s = detail::adopt_pipe(fd, detail::pipe_end::write, "open_pipe_writer");
  return stream_writer(pipe_transport(std::move(s), detail::pipe_end::write, options));
}

namespace detail {

connection pipe_connection(int fd, pipe_end end, const stream_options& options, const char* who) {
  check_stream_limit(options.limit, who); // before the fd is taken
  std::shared_ptr<stream_transport> t = pipe_transport(adopt_pipe(fd, end, who), end, options);
  return connection{stream_reader(t), stream_writer(t)};
}

} // namespace detail

pipe_streams open_pipe(stream_options options) {
  detail::check_stream_limit(options.limit, "open_pipe()");
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
    throw std::system_error(errno, std::system_category(), "corio: open_pipe: pipe2");
  socket r = socket::adopt(p[0]);
  socket w = socket::adopt(p[1]);
  return pipe_streams{stream_reader(pipe_transport(std::move(r), detail::pipe_end::read, options)),
                      stream_writer(pipe_transport(std::move(w), detail::pipe_end::write, options))};
}

} // namespace corio
