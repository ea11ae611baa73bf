// corio::address: an IPv4, IPv6 or Unix-domain socket address (asyncio's address tuples, as one value).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace corio {

enum class address_family : unsigned char { unspecified, ipv4, ipv6, unix_path };

/// A socket address held by value (a sockaddr_storage inside, no OS header needed). Parsing takes
/// numeric addresses only — names go through corio::resolve(). Bad input raises std::invalid_argument
/// naming it.
///
///     auto a = corio::address::parse("127.0.0.1:8080");
///     auto b = corio::address::parse("[::1]:443");
///     auto c = corio::address::unix_path("/run/app.sock");
class address {
public:
  /// An unspecified address (family() == unspecified).
  address() noexcept = default;

  /// "1.2.3.4:80", "[::1]:80" or a Unix path (anything starting with '/' or '.', or "unix:<path>").
  [[nodiscard]] static address parse(std::string_view text);
  /// A numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "[::1]", "fe80::1%lo") and a port.
  [[nodiscard]] static address from_ip(std::string_view ip, std::uint16_t port);
  /// A Unix-domain address; a path that starts with '\0' is in Linux's abstract namespace. Paths longer
  /// than the kernel's 107 bytes raise std::invalid_argument.
  [[nodiscard]] static address unix_path(std::string_view path);
  [[nodiscard]] static address any_ipv4(std::uint16_t port = 0);
  [[nodiscard]] static address any_ipv6(std::uint16_t port = 0);
  [[nodiscard]] static address loopback_ipv4(std::uint16_t port = 0);
  [[nodiscard]] static address loopback_ipv6(std::uint16_t port = 0);
  /// From a raw sockaddr of `size` bytes (what accept/recvfrom/getsockname filled in).
  [[nodiscard]] static address from_raw(const void* sockaddr, std::size_t size);

  [[nodiscard]] address_family family() const noexcept { return family_; }
  [[nodiscard]] bool is_ip() const noexcept {
    return family_ == address_family::ipv4 || family_ == address_family::ipv6;
  }
  /// The port of an IP address (0 otherwise).
  [[nodiscard]] std::uint16_t port() const noexcept;
  /// A copy with another port; std::invalid_argument if not an IP address.
  [[nodiscard]] address with_port(std::uint16_t port) const;
  /// The numeric IP without the port ("127.0.0.1", "::1"); empty if not an IP address.
  [[nodiscard]] std::string ip() const;
  /// The path of a Unix address (abstract ones start with '\0'); empty otherwise.
  [[nodiscard]] std::string path() const;
  [[nodiscard]] bool is_loopback() const noexcept;
  [[nodiscard]] bool is_unspecified_ip() const noexcept; // 0.0.0.0 or ::
  /// "127.0.0.1:80", "[::1]:80", "/tmp/x.sock", "@abstract", "(unspecified)"; parse() reads it back.
  [[nodiscard]] std::string to_string() const;

  /// The raw sockaddr and its length, for syscalls.
  [[nodiscard]] const void* data() const noexcept { return storage_; }
  [[nodiscard]] void* data() noexcept { return storage_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] static constexpr std::size_t capacity() noexcept { return sizeof(storage_); }

  friend bool operator==(const address& a, const address& b) noexcept;

private:
  alignas(8) unsigned char storage_[128] = {}; // sizeof(sockaddr_storage)
  std::uint32_t size_ = 0;
  address_family family_ = address_family::unspecified;
};

} // namespace corio
