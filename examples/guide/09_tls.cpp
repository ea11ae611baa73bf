// The guide, step 8 (TLS): an echo server speaking TLS and a client that verifies it, then a client
// that does not trust the server's CA and gets a clear error. The certificates (a CA, and a certificate
// for "localhost" it signed) are made at start-up by tests/support/tls_certs.hpp, in a temporary directory.
#include <corio/corio.hpp>

#include <cstdio>
#include <string>

#include "tls_certs.hpp"

// [snippet: tls]
corio::task<> tls_echo(const corio::testing::tls_certs& certs) {
  corio::server_options server_opts;
  server_opts.tls = corio::tls_context::server(certs.server_cert_file, certs.server_key_file);
  corio::server srv = co_await corio::start_server(
      [](corio::stream_reader r, corio::stream_writer w) -> corio::task<> {
        w.write(co_await r.readline()); // the handler sees plaintext: TLS is below the streams
        co_await w.drain();
      },
      "127.0.0.1", 0, server_opts);

  corio::stream_options opts;
  opts.tls = corio::tls_context::client();       // verifies the certificate and the name
  opts.tls.load_verify_locations(certs.ca_file); // trust our test CA as well as the system's
  opts.server_hostname = "localhost";
  auto [reader, writer] = co_await corio::open_connection(srv.addresses().front(), opts);
  std::printf("%s, server %s, verified: %s\n", writer.tls_info()->version.c_str(),
              writer.tls_info()->peer_subject.c_str(), writer.tls_info()->peer_verified ? "yes" : "no");
  writer.write("hello over TLS\n");
  std::printf("echoed: %s", (co_await reader.readline()).c_str());

  corio::stream_options untrusting;
  untrusting.tls = corio::tls_context::client(); // the system's CAs only
  untrusting.server_hostname = "localhost";
  try {
    co_await corio::open_connection(srv.addresses().front(), untrusting);
  } catch (const corio::tls_error& e) {
    std::printf("untrusted: %s\n",
                e.code() == corio::tls_errc::certificate_verify_failed ? "certificate_verify_failed" : e.what());
  }
}
// [end snippet]

int main() {
  const corio::testing::tls_certs certs;
  corio::run(tls_echo(certs));
}
