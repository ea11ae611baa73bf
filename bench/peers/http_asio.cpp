// Peer of corio's examples/http_server for bench/compare_http: the HTTP/1.1 plaintext server in Boost.Asio
// with C++20 coroutines (asio::awaitable), one io_context with concurrency hint 1 on the main thread.
//
//   http_asio --port P     listens on 127.0.0.1:P until SIGINT or SIGTERM
//
// One coroutine per connection: read what is there, answer every complete request in it in order with a
// single write (pipelining), keep the incomplete tail for the next read (plaintext.h frames the requests).
#include <utility> // before Asio: Boost 1.74 Asio needs it with g++ 12 (HAZARDS.md §4)

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "plaintext.h"
#include "server_args.h"

#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

asio::awaitable<void> session(tcp::socket socket) {
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  std::vector<char> in(2 * PLAINTEXT_MAX_HEAD);
  std::size_t have = 0;
  std::string out;
  for (;;) {
    const std::size_t n = co_await socket.async_read_some(asio::buffer(in.data() + have, in.size() - have),
                                                          asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
      co_return; // EOF or reset: nothing to answer
    have += n;
    std::size_t used = 0;
    bool close_after = false;
    plaintext_reply reply;
    while (!close_after) {
      const std::size_t len = plaintext_next(in.data() + used, have - used, &reply);
      if (len == 0)
        break;
      out.append(reply.data, reply.size);
      close_after = reply.close_after != 0;
      used += len;
    }
    if (!out.empty()) {
      co_await asio::async_write(socket, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
      out.clear();
      if (ec)
        co_return;
    }
    if (close_after || have - used > PLAINTEXT_MAX_HEAD)
      co_return; // the socket closes when the frame goes
    std::memmove(in.data(), in.data() + used, have - used);
    have -= used;
  }
}

asio::awaitable<void> listener(tcp::acceptor acceptor) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted)
      co_return;
    if (!ec)
      asio::co_spawn(acceptor.get_executor(), session(std::move(socket)), asio::detached);
  }
}

} // namespace

int main(int argc, char** argv) {
  const int port = bench_server_port(argc, argv, "http_asio");
  try {
    asio::io_context ctx(1);
    tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    asio::signal_set signals(ctx, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int) { ctx.stop(); });
    asio::co_spawn(ctx, listener(std::move(acceptor)), asio::detached);
    ctx.run();
  } catch (const std::exception& e) {
    std::cerr << "http_asio: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
