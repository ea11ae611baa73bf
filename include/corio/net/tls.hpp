// corio::tls_context, corio::tls_info and corio::tls_error: TLS (OpenSSL) for stream connections.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace corio {

/// The settings TLS connections are made with (Python's ssl.SSLContext): certificates, verification,
/// ALPN. A cheap, copyable handle: copies share one OpenSSL SSL_CTX, and changes show in every copy
/// (connections already made keep what they started with). A default-constructed context is empty and
/// means "no TLS" in stream_options / server_options.
///
///     auto ctx = corio::tls_context::client();          // verifies the server against the system CAs
///     auto [r, w] = co_await corio::open_connection("example.org", 443, {.tls = ctx});
///
/// Not thread-safe while being changed; once set up it may be used from any loop.
class tls_context {
public:
  /// A client context: TLS 1.2 or newer, the server's certificate verified against the system's default
  /// CA paths, and its name against the server_hostname of each connection. Verification can only be
  /// turned off explicitly (set_verify(false)).
  [[nodiscard]] static tls_context client();
  /// A server context presenting the certificate chain (PEM, leaf first) and private key (PEM) files.
  /// TLS 1.2 or newer; client certificates are not asked for unless set_verify(true).
  [[nodiscard]] static tls_context server(const std::string& cert_chain_file, const std::string& key_file);

  tls_context() noexcept = default;

  /// Trusts the CA certificates in `cafile` (PEM) too. std::invalid_argument for a file name with a NUL
  /// byte (as for every file name here: OpenSSL would cut it there).
  void load_verify_locations(const std::string& cafile);
  /// The certificate chain and key this side presents (a server's, or a client certificate).
  void load_cert_chain(const std::string& cert_chain_file, const std::string& key_file);
  /// Client: verify the server's certificate and name (on by default). Server: require and verify a
  /// client certificate (off by default).
  void set_verify(bool verify);
  [[nodiscard]] bool verify() const;
  /// ALPN protocols in order of preference, e.g. {"h2", "http/1.1"}. A server picks the first of its
  /// own list the client offers; no overlap means no ALPN (the handshake goes on).
  void set_alpn_protocols(const std::vector<std::string>& protocols);
  /// OpenSSL's cipher list for TLS 1.2 (TLS 1.3 suites are not affected), e.g. "ECDHE+AESGCM".
  void set_ciphers(const std::string& ciphers);

  [[nodiscard]] bool is_server() const;
  [[nodiscard]] bool valid() const noexcept { return impl_ != nullptr; }
  explicit operator bool() const noexcept { return valid(); }

  struct impl;
  /// The shared state (its SSL_CTX), for corio's own TLS layer.
  [[nodiscard]] impl* get() const noexcept { return impl_.get(); }

private:
  explicit tls_context(std::shared_ptr<impl> i) noexcept : impl_(std::move(i)) {}
  std::shared_ptr<impl> impl_;
};

/// What was negotiated on a TLS connection (stream_writer::tls_info()).
struct tls_info {
  std::string version;      // "TLSv1.3"
  std::string cipher;       // "TLS_AES_256_GCM_SHA384"
  std::string server_name;  // SNI: the name the client asked for (empty if none was sent)
  std::string alpn;         // the negotiated ALPN protocol, empty if none
  std::string peer_subject; // the peer certificate's subject ("CN=localhost"), empty without one
  bool peer_verified = false;
  bool server_side = false;
};

/// The kinds of TLS failure (the error_code of a tls_error in tls_category()). A handshake that fails
/// on a socket error (ECONNRESET...) raises tls_error with that errno in std::generic_category().
enum class tls_errc {
  handshake_failed = 1, // a protocol error or alert during the handshake
  certificate_verify_failed,
  hostname_mismatch,   // the certificate is valid but not for server_hostname
  handshake_timeout,   // tls_handshake_timeout passed
  closed_in_handshake, // the peer closed the connection before the handshake finished
  protocol_error,      // a bad record after the handshake
  bad_configuration,   // a certificate, key or CA file that cannot be loaded, a bad cipher list...
};

[[nodiscard]] const std::error_category& tls_category() noexcept;
[[nodiscard]] inline std::error_code make_error_code(tls_errc e) noexcept {
  return {static_cast<int>(e), tls_category()};
}

/// A TLS failure. what() names the peer and the reason, e.g. "corio: TLS handshake with 127.0.0.1:4433
/// failed: certificate verify failed (self-signed certificate in certificate chain)". A std::system_error,
/// so code that catches connection errors catches it too.
class tls_error : public std::system_error {
public:
  tls_error(std::error_code code, std::string what)
      : std::system_error(code), what_(std::make_shared<const std::string>(std::move(what))) {}
  tls_error(tls_errc e, std::string what) : tls_error(make_error_code(e), std::move(what)) {}
  [[nodiscard]] const char* what() const noexcept override { return what_->c_str(); }

private:
  std::shared_ptr<const std::string> what_; // shared: copying the exception cannot throw
};

} // namespace corio

template <> struct std::is_error_code_enum<corio::tls_errc> : std::true_type {};
