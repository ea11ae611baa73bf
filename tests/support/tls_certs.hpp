// Test certificates made at run time with OpenSSL: a CA, a server certificate it signs (localhost,
// 127.0.0.1, ::1) and an untrusted self-signed one, as PEM files in a temporary directory.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace corio::testing {

class tls_certs {
public:
  std::string dir;
  std::string ca_file;          // the CA's certificate (trust this)
  std::string server_cert_file; // CN=localhost, SAN DNS:localhost IP:127.0.0.1 IP:::1, signed by the CA
  std::string server_key_file;
  std::string client_cert_file; // CN=corio test client, signed by the CA (client authentication)
  std::string client_key_file;
  std::string self_signed_file; // CN=localhost, same names, signed by itself: trusted by nobody
  std::string self_signed_key_file;

  tls_certs() {
    char tmpl[] = "/tmp/corio-tls-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr)
      throw std::runtime_error("tls_certs: mkdtemp failed");
    dir = tmpl;
    EVP_PKEY* ca_key = new_key();
    X509* ca = make_cert(ca_key, nullptr, ca_key, "corio test CA", 1, true, "");
    EVP_PKEY* server_key = new_key();
    X509* server = make_cert(server_key, ca, ca_key, "localhost", 2, false, "DNS:localhost,IP:127.0.0.1,IP:::1");
    EVP_PKEY* client_key = new_key();
    X509* client = make_cert(client_key, ca, ca_key, "corio test client", 3, false, "");
    EVP_PKEY* self_key = new_key();
    X509* self = make_cert(self_key, nullptr, self_key, "localhost", 4, false, "DNS:localhost,IP:127.0.0.1,IP:::1");
    ca_file = write_cert("ca.pem", ca);
    server_cert_file = write_cert("server.pem", server);
    server_key_file = write_key("server.key", server_key);
    client_cert_file = write_cert("client.pem", client);
    client_key_file = write_key("client.key", client_key);
    self_signed_file = write_cert("self.pem", self);
    self_signed_key_file = write_key("self.key", self_key);
    for (X509* x : {ca, server, client, self})
      X509_free(x);
    for (EVP_PKEY* k : {ca_key, server_key, client_key, self_key})
      EVP_PKEY_free(k);
  }
  tls_certs(const tls_certs&) = delete;
  tls_certs& operator=(const tls_certs&) = delete;
  ~tls_certs() {
    for (const std::string& f : files_)
      ::unlink(f.c_str());
    ::rmdir(dir.c_str());
  }

private:
  std::vector<std::string> files_;

  static EVP_PKEY* new_key() {
    EVP_PKEY* k = EVP_EC_gen("P-256");
    if (k == nullptr)
      throw std::runtime_error("tls_certs: EC key generation failed");
    return k;
  }

  static void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr)
      throw std::runtime_error(std::string("tls_certs: bad extension ") + value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }

  /// A certificate for `key`, issued by `issuer` (null: self-signed) and signed with `issuer_key`.
  static X509* make_cert(EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, const char* cn, long serial, bool ca,
                         const std::string& san) {
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 7L * 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
    X509_set_issuer_name(x, issuer != nullptr ? X509_get_subject_name(issuer) : name);
    add_ext(x, issuer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, issuer, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_ext(x, issuer, NID_subject_key_identifier, "hash");
    if (!ca)
      add_ext(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth");
    if (!san.empty())
      add_ext(x, issuer, NID_subject_alt_name, san.c_str());
    if (X509_sign(x, issuer_key, EVP_sha256()) == 0)
      throw std::runtime_error("tls_certs: signing failed");
    return x;
  }

  std::string write_cert(const char* name, X509* x) {
    std::string path = dir + "/" + name;
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr || PEM_write_X509(f, x) != 1)
      throw std::runtime_error("tls_certs: cannot write " + path);
    std::fclose(f);
    files_.push_back(path);
    return path;
  }

  std::string write_key(const char* name, EVP_PKEY* k) {
    std::string path = dir + "/" + name;
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr || PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr) != 1)
      throw std::runtime_error("tls_certs: cannot write " + path);
    std::fclose(f);
    files_.push_back(path);
    return path;
  }
};

} // namespace corio::testing
