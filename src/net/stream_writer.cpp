// corio::stream_writer: a thin handle over the transport's write queue.
#include "corio/net/stream_writer.hpp"

#include "stream_transport.hpp"
#include "tls_layer.hpp"

namespace corio {
namespace {

using transport_ptr = std::shared_ptr<detail::stream_transport>;

detail::stream_transport& need(const transport_ptr& t) {
  if (!t)
    throw invalid_state_error("corio: use of an empty stream_writer");
  return *t;
}

} // namespace

void stream_writer::write(std::string_view data) { need(t_).write(data); }
void stream_writer::write(std::string&& data) { need(t_).write(std::move(data)); }
void stream_writer::writelines(std::span<const std::string_view> parts) {
  need(t_).writelines(parts.data(), parts.size());
}
void stream_writer::writelines(const std::vector<std::string>& parts) {
  std::vector<std::string_view> views(parts.begin(), parts.end());
  need(t_).writelines(views.data(), views.size());
}

task<> stream_writer::drain() {
  transport_ptr t = t_; // the frame keeps the connection alive while it waits
  need(t).raise_write_error();
  while (t->paused() && !t->closed())
    co_await detail::transport_awaiter(t->drain_waiters, "drain()");
  t->raise_write_error();
}

task<std::uint64_t> stream_writer::sendfile(int file_fd, std::uint64_t offset, std::optional<std::uint64_t> count) {
  transport_ptr t = t_;
  need(t);
  const std::uint64_t sent = co_await detail::send_file(std::move(t), file_fd, offset, count);
  co_return sent;
}

void stream_writer::write_eof() { need(t_).write_eof(); }
void stream_writer::close() { need(t_).close(); }
void stream_writer::abort() noexcept {
  if (t_)
    t_->abort();
}
bool stream_writer::is_closing() const { return need(t_).closing(); }

task<> stream_writer::wait_closed() {
  transport_ptr t = t_;
  need(t);
  while (!t->closed())
    co_await detail::transport_awaiter(t->close_waiters, "wait_closed()");
}

task<> stream_writer::start_tls(tls_context ctx, std::string server_hostname, duration handshake_timeout) {
  transport_ptr t = t_;
  need(t);
  co_await detail::start_tls(std::move(t), std::move(ctx), std::move(server_hostname), handshake_timeout);
}

std::optional<tls_info> stream_writer::tls_info() const {
  const detail::stream_transport& t = need(t_);
  if (!t.tls || t.tls->handshaking())
    return std::nullopt;
  return t.tls->info();
}

std::size_t stream_writer::buffer_size() const { return need(t_).queued(); }
void stream_writer::set_write_buffer_limits(std::size_t high, std::size_t low) { need(t_).set_watermarks(high, low); }
address stream_writer::peer_address() const { return need(t_).peer; }
address stream_writer::local_address() const { return need(t_).sock.local_address(); }
int stream_writer::fd() const { return need(t_).sock.fd(); }

} // namespace corio
