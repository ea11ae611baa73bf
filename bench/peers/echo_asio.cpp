// Peer of corio's examples/echo_server for bench/compare_echo: a TCP echo server in Boost.Asio with C++20
// coroutines (asio::awaitable), one io_context with concurrency hint 1 on the main thread.
//
//   echo_asio --port P     listens on 127.0.0.1:P until SIGINT or SIGTERM
//
// One coroutine per connection: read what is there (up to 64 KiB), write all of it back, repeat. The next
// read waits for the write, so a client that does not read stalls only its own connection.
#include <utility> // before Asio: Boost 1.74 Asio needs it with g++ 12 (HAZARDS.md §4)

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "server_args.h"

#include <exception>
#include <iostream>
#include <vector>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

asio::awaitable<void> session(tcp::socket socket) {
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  std::vector<char> buf(64 * 1024);
  for (;;) {
    const std::size_t n =
        co_await socket.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
      co_return;
    co_await asio::async_write(socket, asio::buffer(buf.data(), n), asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
      co_return;
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
  const int port = bench_server_port(argc, argv, "echo_asio");
  try {
    asio::io_context ctx(1);
    tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    asio::signal_set signals(ctx, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int) { ctx.stop(); });
    asio::co_spawn(ctx, listener(std::move(acceptor)), asio::detached);
    ctx.run();
  } catch (const std::exception& e) {
    std::cerr << "echo_asio: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
