// tls_layer: OpenSSL over memory BIOs between a stream_transport's socket and its buffers.
#include "tls_layer.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "../core/nul_check.hpp"
#include "corio/errors.hpp"
#include "corio/io.hpp"
#include "corio/timeout.hpp"
#include "net_error.hpp"
#include "stream_transport.hpp"
#include "tls_context_impl.hpp"

namespace corio::detail {

struct tls_layer::ossl {
  SSL* ssl = nullptr;
  BIO* in = nullptr;                  // ciphertext received, not yet decrypted (owned by ssl)
  BIO* out = nullptr;                 // records OpenSSL wrote, not yet queued on the socket (owned by ssl)
  bool renegotiation_refused = false; // we answered a peer's renegotiation with no_renegotiation
  ~ossl() { SSL_free(ssl); }
};

namespace {

bool is_ip_literal(const std::string& name) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, name.c_str(), buf) == 1 || ::inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

/// OpenSSL's message callback: notes our no_renegotiation alert, which OpenSSL sends when the peer asks
/// for a renegotiation (SSL_OP_NO_RENEGOTIATION: a HelloRequest, or a ClientHello on an open TLS 1.2
/// connection), so that the errors that follow (an OpenSSL peer gives up with a handshake_failure alert)
/// can say what happened.
void watch_messages(int write_p, int, int content_type, const void* buf, std::size_t len, SSL*, void* arg) {
  const auto* bytes = static_cast<const unsigned char*>(buf);
  if (write_p == 1 && content_type == SSL3_RT_ALERT && len >= 2 && bytes[1] == SSL_AD_NO_RENEGOTIATION)
    *static_cast<bool*>(arg) = true;
}

/// A duration as exactly as it was given: "5000 ms", "250 us", "1 ns" (a limit below a millisecond is
/// not "0 ms").
std::string describe_duration(duration d) {
  using namespace std::chrono;
  if (d % milliseconds(1) == duration::zero())
    return std::to_string(duration_cast<milliseconds>(d).count()) + " ms";
  if (d % microseconds(1) == duration::zero())
    return std::to_string(duration_cast<microseconds>(d).count()) + " us";
  return std::to_string(d.count()) + " ns";
}

std::string handshake_prefix(const stream_transport& t) {
  std::string m("corio: TLS handshake with ");
  m += t.peer.to_string();
  m += " failed: ";
  return m;
}

} // namespace

void check_tls_arguments(std::string_view server_hostname, duration handshake_timeout, const char* who) {
  reject_nul_host(server_hostname, who);
  if (handshake_timeout < duration::zero())
    throw std::invalid_argument(std::string("corio: ") + who + ": the TLS handshake timeout must not be negative (" +
                                describe_duration(handshake_timeout) + "; zero: no limit)");
}

tls_layer::tls_layer(const tls_context& ctx, bool server, const std::string& server_hostname)
    : o_(std::make_unique<ossl>()), server_(server) {
  tls_context::impl* c = ctx.get();
  o_->ssl = SSL_new(c->ctx);
  o_->in = BIO_new(BIO_s_mem());
  o_->out = BIO_new(BIO_s_mem());
  if (o_->ssl == nullptr || o_->in == nullptr || o_->out == nullptr) {
    BIO_free(o_->in);
    BIO_free(o_->out);
    throw tls_error(tls_errc::bad_configuration,
                    "corio: TLS: cannot create a connection: " + take_openssl_error("out of memory"));
  }
  SSL_set_bio(o_->ssl, o_->in, o_->out); // the SSL owns both BIOs from here
  SSL_set_msg_callback(o_->ssl, watch_messages);
  SSL_set_msg_callback_arg(o_->ssl, &o_->renegotiation_refused);
  if (server) {
    SSL_set_accept_state(o_->ssl);
    return;
  }
  SSL_set_connect_state(o_->ssl);
  std::string name = server_hostname;
  if (name.size() > 2 && name.front() == '[' && name.back() == ']')
    name = name.substr(1, name.size() - 2);
  bool ip = is_ip_literal(name);
  if (!name.empty() && !ip)
    SSL_set_tlsext_host_name(o_->ssl, name.c_str()); // RFC 6066: SNI carries DNS names only
  if (!c->verify)
    return;
  if (name.empty())
    throw std::invalid_argument("corio: TLS with certificate verification needs a server_hostname");
  X509_VERIFY_PARAM* param = SSL_get0_param(o_->ssl);
  int ok =
      ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) : X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
  if (ok != 1)
    throw tls_error(tls_errc::bad_configuration,
                    "corio: TLS: bad server_hostname '" + name + "': " + take_openssl_error("rejected"));
}

tls_layer::~tls_layer() = default;

std::string tls_layer::failure_reason(const char* fallback) {
  std::string reason = take_openssl_error(fallback);
  if (!o_->renegotiation_refused)
    return reason;
  return "the peer asked for a TLS renegotiation, which corio refuses (see docs/security.md): " + reason;
}

void tls_layer::feed(std::string_view ciphertext) {
  if (!ciphertext.empty())
    BIO_write(o_->in, ciphertext.data(), static_cast<int>(ciphertext.size()));
}

// ---- moving ciphertext ---------------------------------------------------------------------------------

long tls_layer::pull(stream_transport& t) {
  // The reader's buffer has spare room past its data: receive there, then copy into the BIO (the
  // decrypted bytes overwrite it later). Saves a second buffer per connection.
  constexpr std::size_t chunk = 64 * 1024;
  char* p = t.rbuf.prepare(chunk);
  for (;;) {
    auto n = ::recv(t.sock.fd(), p, chunk, 0);
    if (n > 0) {
      BIO_write(o_->in, p, static_cast<int>(n));
      return static_cast<long>(n);
    }
    if (n == 0)
      return 0;
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK)
      return -1;
    if (err != EINTR) {
      t.read_error = err;
      throw_net_error(err, "recv from", &t.peer);
    }
  }
}

void tls_layer::push(stream_transport& t, bool quiet) {
  std::size_t n = BIO_ctrl_pending(o_->out);
  if (n == 0)
    return;
  std::string records(n, '\0');
  BIO_read(o_->out, records.data(), static_cast<int>(n));
  if (t.closed() || t.write_error != 0)
    return; // nothing can be sent any more; the error is raised by the writer's next call
  if (!quiet) {
    t.send_or_queue(std::move(records));
    return;
  }
  // From a read: a response OpenSSL owes the peer (TLS 1.3 KeyUpdate). A send error is stored in the
  // transport (write_error) and raised by the writer; the reader goes on with what it received.
  try {
    t.send_or_queue(std::move(records));
  } catch (...) {
  }
}

// ---- reading and writing -------------------------------------------------------------------------------

long tls_layer::fill(stream_transport& t, std::size_t hint) {
  if (read_failure_)
    std::rethrow_exception(read_failure_);
  if (handshaking_)
    throw invalid_state_error("corio: read from a stream during its TLS handshake");
  const std::size_t want = std::clamp<std::size_t>(hint, 16 * 1024, 256 * 1024);
  std::size_t total = 0;
  long result = 0;
  for (;;) {
    std::size_t got = 0;
    ERR_clear_error();
    int r = SSL_read_ex(o_->ssl, t.rbuf.prepare(want - total), want - total, &got);
    if (r == 1) {
      t.rbuf.commit(got);
      total += got;
      if (total < want)
        continue; // another whole record may be buffered already
      break;
    }
    int e = SSL_get_error(o_->ssl, r);
    if (total > 0 && e != SSL_ERROR_SSL && e != SSL_ERROR_SYSCALL)
      break; // deliver what came; the next fill finds the rest (or the end)
    if (e == SSL_ERROR_WANT_READ) {
      long n = pull(t);
      if (n > 0)
        continue;
      // n == 0: the peer closed without close_notify. Read as end of stream, as asyncio does (and as
      // most HTTPS clients must: many servers never send it); framed protocols detect truncation.
      result = n;
      break;
    }
    if (e == SSL_ERROR_ZERO_RETURN) // the peer's close_notify
      break;
    std::string what("corio: TLS read from ");
    what += t.peer.to_string();
    what += ": ";
    what += failure_reason("protocol error");
    read_failure_ = std::make_exception_ptr(tls_error(tls_errc::protocol_error, what));
    if (total > 0)
      break; // the data before the bad record first; the error on the next read
    std::rethrow_exception(read_failure_);
  }
  push(t, true);
  if (total > 0)
    return static_cast<long>(total);
  if (result == 0)
    t.eof = true;
  return result;
}

void tls_layer::write(stream_transport& t, const std::string_view* parts, std::size_t count) {
  // The stream's state first: a start_tls() that failed or was cancelled aborted the connection with the
  // layer still handshaking, and a write then is a write to a closed stream (EPIPE), as on any other.
  t.check_writable(0);
  if (handshaking_)
    throw invalid_state_error("corio: write to a stream during its TLS handshake");
  // Records are moved to the queue every 256 KiB of plaintext so a large write does not hold all of its
  // ciphertext twice (in the BIO and in the queue).
  std::size_t since_push = 0;
  for (std::size_t i = 0; i < count; ++i) {
    std::string_view data = parts[i];
    while (!data.empty()) {
      std::size_t n = std::min<std::size_t>(data.size(), 256 * 1024);
      std::size_t written = 0;
      ERR_clear_error();
      if (SSL_write_ex(o_->ssl, data.data(), n, &written) != 1)
        throw tls_error(tls_errc::protocol_error,
                        "corio: TLS write to " + t.peer.to_string() + ": " + failure_reason("write failed"));
      data.remove_prefix(written); // a memory BIO takes everything: written == n
      since_push += written;
      if (since_push >= 256 * 1024) {
        push(t, false);
        since_push = 0;
      }
    }
  }
  push(t, false);
}

void tls_layer::send_close_notify(stream_transport& t) noexcept {
  if (handshaking_ || shutdown_sent_ || t.closed() || t.write_error != 0)
    return;
  shutdown_sent_ = true;
  ERR_clear_error();
  (void)SSL_shutdown(o_->ssl); // writes close_notify into the output BIO; 0: the peer's is not in yet
  ERR_clear_error();
  push(t, true);
}

tls_info tls_layer::info() const {
  tls_info i;
  SSL* s = o_->ssl;
  i.server_side = server_;
  i.version = SSL_get_version(s);
  if (const char* c = SSL_get_cipher_name(s))
    i.cipher = c;
  if (const char* sni = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name))
    i.server_name = sni;
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(s, &alpn, &alpn_len);
  if (alpn != nullptr)
    i.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  if (X509* cert = SSL_get1_peer_certificate(s)) {
    if (BIO* b = BIO_new(BIO_s_mem())) {
      X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
      char* data = nullptr;
      long len = BIO_get_mem_data(b, &data);
      if (len > 0)
        i.peer_subject.assign(data, static_cast<std::size_t>(len));
      BIO_free(b);
    }
    i.peer_verified = SSL_get_verify_mode(s) != SSL_VERIFY_NONE && SSL_get_verify_result(s) == X509_V_OK;
    X509_free(cert);
  }
  return i;
}

// ---- the handshake -------------------------------------------------------------------------------------

void tls_layer::fail_handshake(const stream_transport& t, int error) {
  long verify = SSL_get_verify_result(o_->ssl);
  std::string reason =
      take_openssl_error(error == SSL_ERROR_SYSCALL ? "connection closed by the peer" : "handshake failure");
  tls_errc code = tls_errc::handshake_failed;
  if (verify != X509_V_OK) {
    reason += " (";
    reason += X509_verify_cert_error_string(verify);
    reason += ")";
    code = verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH
               ? tls_errc::hostname_mismatch
               : tls_errc::certificate_verify_failed;
  }
  throw tls_error(code, handshake_prefix(t) + reason);
}

bool tls_layer::step(stream_transport& t) {
  for (;;) {
    ERR_clear_error();
    int r = SSL_do_handshake(o_->ssl);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(o_->ssl, r);
    long n = 0;
    try {
      push(t, false); // our flight, or the alert telling the peer why we give up
      if (r == 1) {
        handshaking_ = false;
        return true;
      }
      if (e != SSL_ERROR_WANT_READ)
        fail_handshake(t, e);
      n = pull(t);
    } catch (const tls_error&) {
      throw;
    } catch (const std::system_error& err) { // the socket failed (ECONNRESET...)
      ERR_clear_error();
      throw tls_error(err.code(), handshake_prefix(t) + err.code().message());
    }
    if (n == 0)
      throw tls_error(tls_errc::closed_in_handshake, handshake_prefix(t) + "connection closed by the peer");
    if (n < 0)
      return false;
  }
}

task<> tls_layer::handshake(std::shared_ptr<stream_transport> t, duration limit) {
  std::optional<timeout_scope> deadline;
  if (limit > duration::zero())
    deadline.emplace(detail::saturating_add(event_loop::current()->time(), limit));
  bool timed_out = false;
  try {
    while (!step(*t))
      co_await detail::readable_kept(t->sock.fd());
  } catch (const timeout_error&) {
    if (!deadline || !deadline->expired())
      throw; // a timeout of the caller's, not ours
    timed_out = true;
  }
  if (timed_out) {
    deadline.reset(); // takes our timeout's cancellation back before raising an ordinary error
    throw tls_error(tls_errc::handshake_timeout, handshake_prefix(*t) + "timed out after " + describe_duration(limit));
  }
}

task<> start_tls(std::shared_ptr<stream_transport> t, tls_context ctx, std::string server_hostname, duration timeout) {
  check_tls_arguments(server_hostname, timeout, "start_tls()");
  if (!ctx)
    throw std::invalid_argument("corio: start_tls() with an empty tls_context");
  if (t->tls)
    throw invalid_state_error("corio: start_tls() on a stream that already speaks TLS");
  if (t->closing() || t->eof_written())
    throw invalid_state_error("corio: start_tls() on a closed stream");
  // On io_uring, bytes a cancelled plaintext read took are stashed for the fd, and that read may still be
  // in flight. TLS reads with recv(2): collect both into rbuf first, so the handshake sees them.
  if (t->completion_reads()) {
    event_loop* loop = event_loop::current();
    loop->end_recv(t->sock.fd()); // a kept (multishot) recv would go on taking the handshake's bytes
    for (;;) {
      int err = 0;
      long k = loop->take_stashed(t->sock.fd(), t->rbuf.prepare(16 * 1024), 16 * 1024, err);
      if (k > 0) {
        t->rbuf.commit(static_cast<std::size_t>(k));
        continue;
      }
      if (k == -2) {
        co_await fill_awaiter(*t); // adopts the recv in flight: its bytes (if any) land in rbuf
        continue;
      }
      if (k == 0 && err != 0)
        t->read_error = err;
      else if (k == 0)
        t->eof = true;
      break;
    }
  }
  bool server = ctx.is_server();
  if (!server && server_hostname.empty())
    server_hostname = t->peer.ip(); // an IP peer is checked against the certificate's IP addresses
  t->tls = std::make_unique<tls_layer>(ctx, server, server_hostname);
  // Bytes received but not read yet belong to the handshake (a peer that sent its hello right after
  // its STARTTLS-like request): they go to TLS, not to the reader.
  t->tls->feed(t->rbuf.view());
  t->rbuf.consume(t->rbuf.size());
  try {
    co_await t->tls->handshake(t, timeout);
  } catch (...) {
    t->abort(); // a half-made TLS connection is of no use: close it (cancellation too)
    throw;
  }
}

} // namespace corio::detail
