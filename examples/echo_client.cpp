// A client for echo_server: sends lines and checks that each one comes back unchanged.
//
//   echo_client [--host H] --port P [--count N] [--message TEXT]
//
// Sends N lines (default 10) "<TEXT> <i>\n" (TEXT defaults to "hello"), one at a time, reading each echo
// before sending the next; prints "<N> lines echoed in <ms> ms" and exits 0, or names the first
// mismatch and exits 1. Connection errors exit 1 too, with the error.
#include <corio/corio.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

namespace {

struct options {
  std::string host = "127.0.0.1";
  long port = -1;
  long count = 10;
  std::string message = "hello";
};

corio::task<int> client(options opt) {
  auto [reader, writer] = co_await corio::open_connection(opt.host, static_cast<std::uint16_t>(opt.port));
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < opt.count; ++i) {
    const std::string line = opt.message + " " + std::to_string(i) + "\n";
    writer.write(line);
    co_await writer.drain();
    std::string echo = co_await reader.readline(); // the echo may come back in pieces; wait for all of it
    if (echo != line) {
      std::fprintf(stderr, "echo_client: line %ld: sent %zu bytes, got back %zu bytes: \"%s\"\n", i, line.size(),
                   echo.size(), echo.c_str());
      co_return 1;
    }
  }
  const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  writer.close();
  co_await writer.wait_closed();
  std::printf("%ld lines echoed in %.1f ms\n", opt.count, ms);
  co_return 0;
}

[[noreturn]] void usage(const char* error) {
  std::fprintf(stderr, "echo_client: %s\nusage: echo_client [--host H] --port P [--count N] [--message TEXT]\n", error);
  std::exit(2);
}

long number_arg(const char* s, long min, long max, const char* what) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < min || v > max)
    usage(what);
  return v;
}

options parse(int argc, char** argv) {
  options opt;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (i + 1 >= argc)
      usage((std::string("missing value after ") + std::string(arg)).c_str());
    const char* value = argv[++i];
    if (arg == "--host")
      opt.host = value;
    else if (arg == "--port")
      opt.port = number_arg(value, 1, 65535, "--port takes a number from 1 to 65535");
    else if (arg == "--count")
      opt.count = number_arg(value, 0, 1000000000, "--count takes a number from 0 to 1e9");
    else if (arg == "--message")
      opt.message = value;
    else
      usage((std::string("unknown option ") + std::string(arg)).c_str());
  }
  if (opt.port < 0)
    usage("--port is required");
  if (opt.message.find('\n') != std::string::npos)
    usage("--message must be a single line");
  return opt;
}

} // namespace

int main(int argc, char** argv) {
  options opt = parse(argc, argv);
  try {
    return corio::run(client(std::move(opt)));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo_client: %s\n", e.what());
    return 1;
  }
}
