// corio::tls_context: an OpenSSL SSL_CTX behind a shared handle.
#include "tls_context_impl.hpp"

#include <openssl/x509v3.h>

#include <stdexcept>

#include "../core/nul_check.hpp"
#include "corio/errors.hpp"

namespace corio {

namespace detail {

std::string take_openssl_error(const char* fallback) {
  // The last error is the most specific one ("certificate verify failed" after "handshake failure").
  unsigned long code = ERR_peek_last_error();
  std::string out;
  if (code != 0) {
    const char* reason = ERR_reason_error_string(code);
    if (reason != nullptr) {
      out = reason;
    } else {
      char buf[256];
      ERR_error_string_n(code, buf, sizeof buf);
      out = buf;
    }
  } else {
    out = fallback;
  }
  ERR_clear_error();
  return out;
}

} // namespace detail

namespace {

[[noreturn]] void config_error(std::string what) {
  what += ": ";
  what += detail::take_openssl_error("unknown error");
  throw tls_error(tls_errc::bad_configuration, std::move(what));
}

tls_context::impl& need(tls_context::impl* i) {
  if (i == nullptr)
    throw invalid_state_error("corio: use of an empty tls_context");
  return *i;
}

SSL_CTX* new_ctx(const SSL_METHOD* method) {
  SSL_CTX* ctx = SSL_CTX_new(method);
  if (ctx == nullptr)
    config_error("corio: TLS: cannot create a context");
  // TLS 1.0/1.1 are deprecated (RFC 8996); asyncio's default context refuses them too.
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Renegotiation (TLS 1.2) would let the peer start a handshake in the middle of the stream.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  return ctx;
}

void apply_verify(tls_context::impl& i) {
  int mode = SSL_VERIFY_NONE;
  if (i.verify)
    mode = i.server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER;
  SSL_CTX_set_verify(i.ctx, mode, nullptr);
}

// The server's ALPN choice: the first protocol of its own list that the client offered.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen,
                void* arg) {
  const auto* i = static_cast<const tls_context::impl*>(arg);
  if (i->alpn_wire.empty())
    return SSL_TLSEXT_ERR_NOACK;
  const auto* ours = reinterpret_cast<const unsigned char*>(i->alpn_wire.data());
  unsigned char* chosen = nullptr;
  unsigned char len = 0;
  if (SSL_select_next_proto(&chosen, &len, ours, static_cast<unsigned>(i->alpn_wire.size()), in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  *outlen = len;
  return SSL_TLSEXT_ERR_OK;
}

} // namespace

tls_context tls_context::client() {
  auto i = std::make_shared<impl>(new_ctx(TLS_client_method()), false);
  if (SSL_CTX_set_default_verify_paths(i->ctx) != 1)
    config_error("corio: TLS: cannot load the system's CA certificates");
  i->verify = true;
  apply_verify(*i);
  return tls_context(std::move(i));
}

tls_context tls_context::server(const std::string& cert_chain_file, const std::string& key_file) {
  auto i = std::make_shared<impl>(new_ctx(TLS_server_method()), true);
  SSL_CTX_set_alpn_select_cb(i->ctx, select_alpn, i.get()); // `i` owns the SSL_CTX: it outlives it
  apply_verify(*i);
  tls_context c(std::move(i));
  c.load_cert_chain(cert_chain_file, key_file);
  return c;
}

void tls_context::load_verify_locations(const std::string& cafile) {
  detail::reject_nul(cafile, "TLS: load_verify_locations", "the file"); // OpenSSL would cut it there
  impl& i = need(impl_.get());
  if (SSL_CTX_load_verify_locations(i.ctx, cafile.c_str(), nullptr) != 1)
    config_error("corio: TLS: cannot load CA certificates from '" + cafile + "'");
}

void tls_context::load_cert_chain(const std::string& cert_chain_file, const std::string& key_file) {
  detail::reject_nul(cert_chain_file, "TLS: load_cert_chain", "the certificate chain file");
  detail::reject_nul(key_file, "TLS: load_cert_chain", "the key file");
  impl& i = need(impl_.get());
  if (SSL_CTX_use_certificate_chain_file(i.ctx, cert_chain_file.c_str()) != 1)
    config_error("corio: TLS: cannot load the certificate chain from '" + cert_chain_file + "'");
  if (SSL_CTX_use_PrivateKey_file(i.ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    config_error("corio: TLS: cannot load the private key from '" + key_file + "'");
  if (SSL_CTX_check_private_key(i.ctx) != 1)
    config_error("corio: TLS: the key in '" + key_file + "' does not match the certificate");
}

void tls_context::set_verify(bool verify) {
  impl& i = need(impl_.get());
  i.verify = verify;
  apply_verify(i);
}

bool tls_context::verify() const { return need(impl_.get()).verify; }
bool tls_context::is_server() const { return need(impl_.get()).server; }

void tls_context::set_alpn_protocols(const std::vector<std::string>& protocols) {
  impl& i = need(impl_.get());
  std::string wire;
  for (const std::string& p : protocols) {
    if (p.empty() || p.size() > 255)
      throw std::invalid_argument("corio: an ALPN protocol name must be 1 to 255 bytes long");
    wire += static_cast<char>(p.size());
    wire += p;
  }
  i.alpn_wire = wire;
  if (!i.server && SSL_CTX_set_alpn_protos(i.ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                                           static_cast<unsigned>(wire.size())) != 0) // 0 is success here
    config_error("corio: TLS: cannot set the ALPN protocols");
}

void tls_context::set_ciphers(const std::string& ciphers) {
  impl& i = need(impl_.get());
  if (SSL_CTX_set_cipher_list(i.ctx, ciphers.c_str()) != 1)
    config_error("corio: TLS: no usable cipher in '" + ciphers + "'");
}

// ---- tls_category --------------------------------------------------------------------------------------

namespace {

class tls_category_impl final : public std::error_category {
public:
  [[nodiscard]] const char* name() const noexcept override { return "corio.tls"; }
  [[nodiscard]] std::string message(int e) const override {
    switch (static_cast<tls_errc>(e)) {
    case tls_errc::handshake_failed:
      return "TLS handshake failed";
    case tls_errc::certificate_verify_failed:
      return "certificate verify failed";
    case tls_errc::hostname_mismatch:
      return "certificate does not match the host name";
    case tls_errc::handshake_timeout:
      return "TLS handshake timed out";
    case tls_errc::closed_in_handshake:
      return "connection closed during the TLS handshake";
    case tls_errc::protocol_error:
      return "TLS protocol error";
    case tls_errc::bad_configuration:
      return "bad TLS configuration";
    }
    return "unknown TLS error";
  }
};

} // namespace

const std::error_category& tls_category() noexcept {
  static const tls_category_impl category;
  return category;
}

} // namespace corio
