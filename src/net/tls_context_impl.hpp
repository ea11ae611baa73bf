// tls_context::impl: the SSL_CTX behind a corio::tls_context, and OpenSSL error text (internal).
#pragma once

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <string>

#include "corio/net/tls.hpp"

namespace corio {

struct tls_context::impl {
  SSL_CTX* ctx = nullptr;
  bool server = false;
  bool verify = false;
  std::string alpn_wire; // length-prefixed protocol names (the ALPN wire format), for both sides

  impl(SSL_CTX* c, bool s) noexcept : ctx(c), server(s) {}
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
  ~impl() { SSL_CTX_free(ctx); }
};

namespace detail {

/// The reason of the most recent error in this thread's OpenSSL error queue ("certificate verify
/// failed"), or `fallback` when it is empty; the queue is cleared either way, so an error cannot leak
/// into the next connection served by this thread.
std::string take_openssl_error(const char* fallback);

} // namespace detail
} // namespace corio
