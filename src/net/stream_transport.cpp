// stream_transport: the buffered socket behind stream_reader and stream_writer.
#include "stream_transport.hpp"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "corio/event_loop.hpp"
#include "corio/io.hpp"
#include "corio/net/socket_ops.hpp"
#include "file_source.hpp"
#include "net_error.hpp"
#include "pipe_write.hpp"
#include "tls_layer.hpp"

namespace corio::detail {

void check_stream_limit(std::size_t limit, const char* who) {
  if (limit == 0)
    throw std::invalid_argument(std::string("corio: ") + who + ": stream_options::limit must be positive");
}

stream_transport::stream_transport(socket s, address p, const stream_options& o)
    : limit(o.limit), sock(std::move(s)), peer(std::move(p)) {
  check_stream_limit(o.limit, "streams");
  set_watermarks(o.high_water, o.low_water);
}

stream_transport::stream_transport(socket pipe_end, std::string name, const stream_options& o)
    : limit(o.limit), sock(std::move(pipe_end)), is_pipe(true), label(std::move(name)) {
  check_stream_limit(o.limit, "pipe streams");
  set_watermarks(o.high_water, o.low_water);
}

stream_transport::~stream_transport() { finish_close(); }

long stream_transport::receive(char* p, std::size_t n) noexcept {
  return is_pipe ? ::read(sock.fd(), p, n) : ::recv(sock.fd(), p, n, 0);
}

long stream_transport::send_iov(const iovec* iov, std::size_t count) noexcept {
  if (is_pipe)
    return pipe_writev(sock.fd(), iov, count);
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = count;
  return ::sendmsg(sock.fd(), &msg, MSG_NOSIGNAL);
}

void stream_transport::raise(int err, bool writing) const {
  if (!is_pipe)
    throw_net_error(err, writing ? "send to" : "recv from", &peer);
  throw std::system_error(err, std::generic_category(),
                          std::string(writing ? "corio: write to " : "corio: read from ") + label);
}

void stream_transport::set_watermarks(std::size_t high, std::size_t low) {
  if (low > high)
    throw std::invalid_argument("corio: stream low_water above high_water");
  high_ = high;
  low_ = low;
  // What a writer queues before drain() waits (the high watermark and one more write), spread over chunks
  // with a partly sent first one: kept for reuse, so a steady writer allocates none after warm-up.
  queue_.set_keep_limit(high + 2 * write_queue::chunk_bytes);
  update_pause();
}

// ---- reading ----------------------------------------------------------------------------------------

long stream_transport::try_fill(std::size_t hint) {
  if (read_error != 0)
    raise(read_error, false);
  if (closed_ || eof) {
    eof = true; // a locally closed stream reads as ended (asyncio feeds EOF on connection_lost)
    return 0;
  }
  if (tls)
    return tls->fill(*this, hint);
  // At least 16 KiB per call (fewer syscalls for small reads), at most 256 KiB (memory per connection).
  std::size_t want = std::clamp<std::size_t>(hint, 16 * 1024, 256 * 1024);
  if (completion_reads()) { // bytes of an abandoned recv first; none may be overtaken by a recv(2)
    int err = 0;
    long k = event_loop::current()->take_stashed(sock.fd(), rbuf.prepare(want), want, err);
    if (k > 0) {
      rbuf.commit(static_cast<std::size_t>(k));
      return k;
    }
    if (k == 0 && err != 0) {
      read_error = err;
      raise(err, false);
    }
    if (k == 0) {
      eof = true;
      return 0;
    }
    if (k == -2)
      return -1;
  }
  if (drained) {
    drained = false;
    return -1;
  }
  for (;;) {
    char* p = rbuf.prepare(want);
    auto n = receive(p, want);
    if (n > 0) {
      rbuf.commit(static_cast<std::size_t>(n));
      drained = static_cast<std::size_t>(n) < want;
      return static_cast<long>(n);
    }
    if (n == 0) {
      eof = true;
      return 0;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK)
      return -1;
    if (err != EINTR) {
      read_error = err;
      raise(err, false);
    }
  }
}

bool stream_transport::completion_reads() const noexcept {
  if (tls || is_pipe || closed_)
    return false;
  event_loop* loop = event_loop::current();
  return loop != nullptr && loop->can_recv();
}

void stream_transport::on_recv(long res, const char* data) noexcept {
  if (res > 0) {
    auto n = static_cast<std::size_t>(res);
    std::memcpy(rbuf.prepare(n), data, n);
    rbuf.commit(n);
    drained = n < 16 * 1024; // a full buffer: more is likely there, so the next fill tries recv(2)
  } else if (res == 0) {
    eof = true;
  } else if (recv_retryable(res)) {
    drained = false;          // nothing happened: the next fill tries recv(2)
  } else if (res != -EBADF) { // EBADF: closed meanwhile, which try_fill reports as end of file
    read_error = static_cast<int>(-res);
  }
}

// ---- writing ----------------------------------------------------------------------------------------

void stream_transport::raise_write_error() const {
  if (write_error != 0)
    raise(write_error, true);
}

void stream_transport::check_writable(std::size_t) const {
  raise_write_error();
  if (closing_ || closed_ || (close_pending_ && !file_writing_))
    throw std::system_error(EPIPE, std::generic_category(), "corio: write to " + who() + ": stream closed");
  if (eof_requested_ || (eof_pending_ && !file_writing_))
    throw std::system_error(EPIPE, std::generic_category(), "corio: write to " + who() + " after write_eof()");
}

void stream_transport::write(std::string_view data) {
  if (holding())
    return hold(data);
  if (tls)
    return tls->write(*this, &data, 1);
  send_or_queue(data);
}

void stream_transport::write(std::string&& data) {
  if (holding())
    return hold(data);
  if (tls) {
    std::string_view v(data);
    return tls->write(*this, &v, 1);
  }
  send_or_queue(std::move(data));
}

void stream_transport::send_or_queue(std::string_view data) {
  check_writable(data.size());
  if (data.empty())
    return;
  if (queue_.empty() && !barrier()) {
    // Nothing queued: the kernel gets it first, and only the rest is copied.
    iovec one{const_cast<char*>(data.data()), data.size()};
    auto n = send_iov(&one, 1);
    if (n < 0) {
      int err = errno;
      if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
        fail(err);
        raise_write_error();
      }
      n = 0;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    if (data.empty())
      return;
    queue_.emplace_back(data);
    queued_ += data.size();
    arm_write();
  } else {
    queue_.emplace_back(data);
    queued_ += data.size();
  }
  update_pause();
}

void stream_transport::send_or_queue(std::string&& data) {
  if ((!queue_.empty() || barrier()) && !data.empty()) {
    check_writable(data.size());
    queued_ += data.size();
    queue_.push_back(std::move(data)); // zero-copy: the string itself waits in the queue
    update_pause();
    return;
  }
  send_or_queue(std::string_view(data));
}

void stream_transport::writelines(const std::string_view* parts, std::size_t count) {
  if (holding()) {
    for (std::size_t i = 0; i < count; ++i)
      hold(parts[i]);
    return;
  }
  if (tls)
    return tls->write(*this, parts, count);
  if (!queue_.empty() || barrier() || count == 0) {
    for (std::size_t i = 0; i < count; ++i)
      write(parts[i]);
    return;
  }
  check_writable(0);
  // One sendmsg for all parts (up to 64 at a time), then queue what did not fit.
  std::size_t i = 0;
  while (i < count && queue_.empty()) {
    iovec iov[64];
    std::size_t k = 0, total = 0;
    for (; k < 64 && i + k < count; ++k) {
      iov[k].iov_base = const_cast<char*>(parts[i + k].data());
      iov[k].iov_len = parts[i + k].size();
      total += parts[i + k].size();
    }
    auto n = total == 0 ? 0 : send_iov(iov, k);
    if (n < 0) {
      int err = errno;
      if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
        fail(err);
        raise_write_error();
      }
      n = 0;
    }
    auto sent = static_cast<std::size_t>(n);
    for (std::size_t j = 0; j < k; ++j, ++i) {
      std::string_view part = parts[i];
      if (sent >= part.size()) {
        sent -= part.size();
        continue;
      }
      for (; j < k; ++j, ++i) { // the rest of this batch goes to the queue
        std::string_view rest = parts[i].substr(sent);
        sent = 0;
        if (!rest.empty()) {
          queue_.emplace_back(rest);
          queued_ += rest.size();
        }
      }
      break;
    }
  }
  for (; i < count; ++i)
    if (!parts[i].empty()) {
      queue_.emplace_back(parts[i]);
      queued_ += parts[i].size();
    }
  if (!queue_.empty())
    arm_write();
  update_pause();
}

void stream_transport::write_eof() {
  raise_write_error();
  if (eof_requested_ || closing_ || closed_)
    return;
  if (file_active_) {
    eof_pending_ = true; // after the sendfile (end_file)
    return;
  }
  if (is_pipe) {
    close(); // a pipe cannot half-close: closing the write end is the reader's end of file
    return;
  }
  if (tls) // TLS's own end of stream first; the TCP half-close follows it as usual
    tls->send_close_notify(*this);
  eof_requested_ = true;
  if (queue_.empty())
    (void)::shutdown(sock.fd(), SHUT_WR); // ENOTCONN (peer already gone) changes nothing
}

void stream_transport::close() {
  if (closing_ || closed_)
    return;
  if (file_active_) {
    close_pending_ = true; // after the sendfile (end_file)
    return;
  }
  if (tls)
    tls->send_close_notify(*this);
  closing_ = true;
  if (write_error != 0)
    finish_close(); // broken already: nothing of ours can still reach the peer
  else if (queue_.empty())
    finish_close(true);
  // else: ready() closes once the queue is flushed.
}

void stream_transport::abort() noexcept { finish_close(); }

void stream_transport::arm_write() {
  if (write_armed_)
    return;
  event_loop* loop = event_loop::current();
  if (loop == nullptr)
    throw loop_error("corio: a stream write that must wait needs a running event loop");
  loop->arm(sock.fd(), io_dir::write, this, /*kept=*/true);
  loop_ = loop;
  loop_serial_ = loop->serial();
  write_armed_ = true;
}

void stream_transport::disarm_write() noexcept {
  if (!write_armed_)
    return;
  write_armed_ = false;
  if (event_loop::exists(loop_, loop_serial_)) // else the loop went first, and its registrations with it
    loop_->disarm(sock.fd(), io_dir::write);
}

void stream_transport::ready() noexcept {
  write_armed_ = false;
  after_flush(flush_queue());
}

int stream_transport::flush_queue() noexcept {
  // While a direct sendfile runs, only what was queued before it goes (ahead_ bytes).
  std::size_t limit = barrier() ? ahead_ : std::numeric_limits<std::size_t>::max();
  while (!queue_.empty() && limit > 0) {
    iovec iov[64];
    std::size_t k = 0, total = 0;
    for (auto it = queue_.begin(); it != queue_.end() && k < 64 && total < limit; ++it, ++k) {
      std::size_t off = k == 0 ? head_offset_ : 0;
      iov[k].iov_base = it->data() + off;
      iov[k].iov_len = std::min(it->size() - off, limit - total);
      total += iov[k].iov_len;
    }
    auto n = send_iov(iov, k);
    if (n < 0) {
      int err = errno;
      if (err == EINTR)
        continue;
      return err == EAGAIN || err == EWOULDBLOCK ? 0 : err;
    }
    auto sent = static_cast<std::size_t>(n);
    queued_ -= sent;
    if (barrier()) {
      ahead_ -= sent;
      limit -= sent;
    }
    while (sent > 0) {
      std::size_t left = queue_.front().size() - head_offset_;
      if (sent < left) {
        head_offset_ += sent;
        break;
      }
      sent -= left;
      queue_.pop_front();
      head_offset_ = 0;
    }
  }
  return 0;
}

void stream_transport::after_flush(int err) noexcept {
  if (err != 0) {
    fail(err);
    return;
  }
  if (file_active_)
    wake_all(file_waiters); // it waits for the queue to go down (or to reach it)
  if (!queue_.empty()) {
    if (barrier() && ahead_ == 0) { // the rest waits for the sendfile
      update_pause();
      return;
    }
    try {
      arm_write();
    } catch (const std::system_error& e) {
      fail(e.code().value());
      return;
    } catch (...) {
      fail(EBADF);
      return;
    }
    update_pause();
    return;
  }
  if (eof_requested_)
    (void)::shutdown(sock.fd(), SHUT_WR);
  if (closing_)
    finish_close(true);
  else
    update_pause();
}

void stream_transport::fail(int err) noexcept {
  if (write_error == 0)
    write_error = err;
  disarm_write();
  queue_.clear();
  head_offset_ = 0;
  queued_ = 0;
  paused_ = false;
  held_.clear();
  ahead_ = 0;
  wake_all(drain_waiters);
  wake_all(file_waiters);
  if (closing_)
    finish_close();
}

void stream_transport::finish_close(bool graceful) noexcept {
  if (closed_)
    return;
  closed_ = true;
  disarm_write();
  if (graceful)
    discard_unread();
  sock.close(); // wakes a reader waiting on the fd: it then finds `closed_` and reads end of file
  queue_.clear();
  head_offset_ = 0;
  queued_ = 0;
  paused_ = false;
  held_.clear();
  ahead_ = 0;
  wake_all(drain_waiters);
  wake_all(file_waiters);
  wake_all(close_waiters);
}

// Linux answers the close of a TCP socket that holds received, unread bytes with a reset, not a FIN
// (tcp_close(), as RFC 2525 2.17 asks), and drops what it had not sent yet; the peer, reset, loses what it
// had not read. A Unix stream socket closed so fails its peer's reads with ECONNRESET after the data. So a
// graceful close would lose the end of what drain() and wait_closed() said was sent. corio reads only when
// a task asks, so unread bytes are common there: a client that only writes gets TLS 1.3 session tickets, a
// handler may return without reading the rest of a request. asyncio's transports read all the time, so
// theirs close with a FIN; this does the same at the last moment. Bounded (4 MiB): a peer still sending
// past that is reset, as asyncio's would be. On io_uring this recv(2) may race a recv still in flight
// (a waiting reader's, a kept one): order no longer matters, and socket::close() -> forget() cancels that
// one at once and drops the fd's stash, so the kernel's file reference goes and the close is real.
void stream_transport::discard_unread() noexcept {
  if (is_pipe || !sock.is_open())
    return;
  char sink[16 * 1024];
  for (std::size_t dropped = 0; dropped < (std::size_t{4} << 20);) {
    const auto n = ::recv(sock.fd(), sink, sizeof sink, MSG_DONTWAIT);
    if (n > 0)
      dropped += static_cast<std::size_t>(n);
    else if (n == 0 || errno != EINTR)
      return; // end of file, nothing more (EAGAIN), or an error the close makes moot
  }
}

void stream_transport::update_pause() noexcept {
  if (!paused_ && queued_ > high_) {
    paused_ = true;
  } else if (paused_ && queued_ <= low_) {
    paused_ = false;
    wake_all(drain_waiters);
  }
}

void stream_transport::wake_all(wait_list& l) noexcept {
  while (listed_wait_node* w = l.pop_front())
    static_cast<transport_wait*>(w)->loop->wake(w);
}

// ---- sendfile ----------------------------------------------------------------------------------------

void stream_transport::begin_file() {
  check_writable(0);
  if (file_active_)
    throw invalid_state_error("corio: sendfile on a stream while another sendfile runs on it");
  if (tls && tls->handshaking())
    throw invalid_state_error("corio: sendfile on a stream during its TLS handshake");
  file_active_ = true;
  file_direct_ = !tls && !is_pipe;
  ahead_ = file_direct_ ? queued_ : 0;
}

bool stream_transport::file_may_go() const noexcept {
  if (closed_ || write_error != 0)
    return true;
  if (file_direct_)
    return ahead_ == 0;
  const std::size_t backlog = queued_ - held_.size();
  return backlog <= low_ || (backlog <= high_ && !paused_);
}

void stream_transport::hold(std::string_view data) {
  check_writable(data.size());
  held_.append(data);
  queued_ += data.size();
  update_pause();
}

void stream_transport::file_write(std::string_view chunk) {
  file_writing_ = true;
  struct reset {
    bool& flag;
    ~reset() { flag = false; }
  } r{file_writing_};
  if (tls)
    tls->write(*this, &chunk, 1);
  else
    send_or_queue(chunk);
}

void stream_transport::raise_if_closed() const {
  raise_write_error();
  if (closed_)
    throw std::system_error(EPIPE, std::generic_category(), "corio: sendfile to " + who() + ": stream closed");
}

void stream_transport::end_file() noexcept {
  if (!file_active_)
    return;
  file_active_ = false;
  file_direct_ = false;
  ahead_ = 0;
  const bool eof = eof_pending_, close_after = close_pending_;
  eof_pending_ = close_pending_ = false;
  if (!closed_ && write_error == 0) {
    try {
      if (!held_.empty()) {
        queued_ -= held_.size();
        std::string held = std::move(held_);
        held_.clear();
        write(std::move(held)); // as if written now: to the queue's end (encrypted over TLS)
      } else if (!queue_.empty() && !write_armed_) {
        after_flush(flush_queue()); // what direct mode kept back
      }
    } catch (const std::system_error& e) {
      fail(e.code().value());
    } catch (...) {
      fail(EIO);
    }
  }
  held_.clear();
  if (eof) {
    try {
      write_eof();
    } catch (...) { // the error stays in write_error for the next call
    }
  }
  if (close_after)
    close();
  update_pause();
}

namespace {

/// Ends the sendfile's turn however the task ends (done, failed, cancelled, destroyed).
struct file_turn {
  stream_transport& t;
  explicit file_turn(stream_transport& s) noexcept : t(s) {}
  file_turn(const file_turn&) = delete;
  ~file_turn() { t.end_file(); }
};

/// A send error breaks the stream (as a failed write does); a file error (EBADF, EIO...) only this call.
bool socket_error(int err) {
  return err == EPIPE || err == ECONNRESET || err == ENOTCONN || err == ECONNABORTED || err == ETIMEDOUT ||
         err == EHOSTUNREACH || err == ENETUNREACH || err == ENETDOWN;
}

} // namespace

task<std::uint64_t> send_file(std::shared_ptr<stream_transport> t, int file_fd, std::uint64_t offset,
                              std::optional<std::uint64_t> count) {
  t->begin_file();
  file_turn turn{*t};
  while (!t->file_may_go())
    co_await transport_awaiter(t->file_waiters, "sendfile()");
  t->raise_if_closed();
  if (t->file_direct()) {
    std::uint64_t sent = 0;
    try {
      sent = co_await sock_sendfile(t->sock, file_fd, offset, count);
    } catch (const std::system_error& e) {
      if (socket_error(e.code().value()) && t->write_error == 0)
        t->fail(e.code().value()); // no co_await in a handler (g++ 12)
      throw;
    }
    co_return sent;
  }
  // TLS or a pipe: chunks through the normal path, with backpressure.
  if (file_fd < 0)
    throw std::system_error(EBADF, std::generic_category(), "corio: sendfile: file fd " + std::to_string(file_fd));
  const std::uint64_t want = count.value_or(std::numeric_limits<std::uint64_t>::max());
  std::uint64_t sent = 0;
  file_source src(file_fd, offset);
  std::string buf(64 * 1024, '\0');
  while (sent < want) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(want - sent, buf.size()));
    const std::size_t k = co_await src.read(std::span<char>(buf.data(), n));
    if (k == 0)
      break;
    t->raise_if_closed();
    t->file_write(std::string_view(buf.data(), k));
    sent += k;
    while (!t->file_may_go())
      co_await transport_awaiter(t->file_waiters, "sendfile()");
    t->raise_if_closed();
  }
  co_return sent;
}

} // namespace corio::detail
