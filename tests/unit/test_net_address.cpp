// corio::address: parsing, printing, ports, Unix paths, and clear errors for bad input.
#include <corio/net/address.hpp>
#include <corio/net/resolve.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

using corio::address;
using corio::address_family;

namespace {

TEST(NetAddress, ParsesAndPrintsIpv4) {
  address a = address::parse("127.0.0.1:8080");
  EXPECT_EQ(a.family(), address_family::ipv4);
  EXPECT_EQ(a.port(), 8080);
  EXPECT_EQ(a.ip(), "127.0.0.1");
  EXPECT_EQ(a.to_string(), "127.0.0.1:8080");
  EXPECT_TRUE(a.is_loopback());
  EXPECT_TRUE(a.is_ip());
  EXPECT_EQ(address::parse(a.to_string()), a);
  EXPECT_EQ(address::from_ip("10.1.2.3", 0).to_string(), "10.1.2.3:0");
  EXPECT_FALSE(address::from_ip("10.1.2.3", 0).is_loopback());
}

TEST(NetAddress, ParsesAndPrintsIpv6) {
  address a = address::parse("[::1]:443");
  EXPECT_EQ(a.family(), address_family::ipv6);
  EXPECT_EQ(a.port(), 443);
  EXPECT_EQ(a.ip(), "::1");
  EXPECT_EQ(a.to_string(), "[::1]:443");
  EXPECT_TRUE(a.is_loopback());
  EXPECT_EQ(address::from_ip("[2001:db8::1]", 80).to_string(), "[2001:db8::1]:80");
  EXPECT_EQ(address::from_ip("2001:DB8:0:0::1", 80), address::from_ip("2001:db8::1", 80));
  EXPECT_EQ(address::parse("[::ffff:1.2.3.4]:1").ip(), "::ffff:1.2.3.4");
}

TEST(NetAddress, Ipv6ZoneByNameOrIndex) {
  address a = address::from_ip("fe80::1%lo", 9);
  EXPECT_EQ(a.ip(), "fe80::1%lo");
  EXPECT_EQ(address::parse(a.to_string()), a);
  EXPECT_THROW((void)address::from_ip("fe80::1%no-such-interface", 9), std::invalid_argument);
}

// A numeric zone is a 32-bit interface index: one beyond it must not wrap to another interface
// (4294967297 was %1, i.e. lo) nor raise std::out_of_range, but be rejected naming the input.
TEST(NetAddress, Ipv6ZoneIndexBeyond32BitsIsRejected) {
  EXPECT_EQ(address::parse("[fe80::1%1]:80"), address::from_ip("fe80::1%lo", 80)); // lo is index 1
  EXPECT_EQ(address::parse("[fe80::1%4294967295]:80").to_string(), "[fe80::1%4294967295]:80");
  for (const char* text : {"[fe80::1%4294967296]:80", "[fe80::1%4294967297]:80", "[fe80::1%99999999999999999999]:80"}) {
    try {
      (void)address::parse(text);
      ADD_FAILURE() << text << " accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("zone index out of range"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::string(text).substr(1, 5)), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << text << ": " << e.what();
    }
  }
}

TEST(NetAddress, WildcardsAndLoopbacks) {
  EXPECT_EQ(address::any_ipv4(5).to_string(), "0.0.0.0:5");
  EXPECT_EQ(address::any_ipv6().to_string(), "[::]:0");
  EXPECT_TRUE(address::any_ipv4().is_unspecified_ip());
  EXPECT_TRUE(address::any_ipv6().is_unspecified_ip());
  EXPECT_FALSE(address::loopback_ipv6().is_unspecified_ip());
  EXPECT_EQ(address::loopback_ipv4(7).to_string(), "127.0.0.1:7");
  EXPECT_EQ(address::loopback_ipv6(7).to_string(), "[::1]:7");
}

TEST(NetAddress, WithPortKeepsTheHost) {
  address a = address::loopback_ipv6(1).with_port(65535);
  EXPECT_EQ(a.to_string(), "[::1]:65535");
  EXPECT_THROW((void)address::unix_path("/tmp/x").with_port(1), std::invalid_argument);
}

TEST(NetAddress, UnixPaths) {
  address a = address::parse("/tmp/corio.sock");
  EXPECT_EQ(a.family(), address_family::unix_path);
  EXPECT_EQ(a.path(), "/tmp/corio.sock");
  EXPECT_EQ(a.to_string(), "/tmp/corio.sock");
  EXPECT_EQ(a.port(), 0);
  EXPECT_FALSE(a.is_ip());
  EXPECT_EQ(address::parse("unix:rel.sock").path(), "rel.sock");
  EXPECT_EQ(address::parse("unix:rel.sock").to_string(), "unix:rel.sock");
  EXPECT_EQ(address::parse("./rel.sock").to_string(), "./rel.sock");
  // The abstract namespace: a leading NUL, printed and parsed as '@'.
  address abstract = address::parse("@corio-test");
  EXPECT_EQ(abstract.path(), std::string("\0corio-test", 11));
  EXPECT_EQ(abstract.to_string(), "@corio-test");
  EXPECT_EQ(address::parse(abstract.to_string()), abstract);
  EXPECT_NE(abstract, address::parse("unix:corio-test"));
}

TEST(NetAddress, RawRoundTrip) {
  for (const char* text : {"1.2.3.4:5", "[::1]:6", "/tmp/a.sock", "@abs"}) {
    address a = address::parse(text);
    address b = address::from_raw(a.data(), a.size());
    EXPECT_EQ(a, b) << text;
    EXPECT_EQ(b.to_string(), text);
  }
  EXPECT_EQ(address::from_raw(nullptr, 0).family(), address_family::unspecified);
  EXPECT_EQ(address().to_string(), "(unspecified)");
}

TEST(NetAddress, BadInputGivesClearErrors) {
  const char* bad[] = {"",         "127.0.0.1",   "127.0.0.1:", "127.0.0.1:x",   "127.0.0.1:65536",
                       "1.2.3:80", "::1:80",      "[::1]",      "[::1]80",       "[::1:80",
                       "host:80",  "256.0.0.1:1", "[zz::1]:1",  "1.2.3.4:123456"};
  for (const char* text : bad) {
    try {
      (void)address::parse(text);
      ADD_FAILURE() << "parsed: " << text;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("corio:"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW((void)address::unix_path(""), std::invalid_argument);
  EXPECT_THROW((void)address::unix_path(std::string(200, 'x')), std::invalid_argument);
  EXPECT_THROW((void)address::unix_path(std::string("a\0b", 3)), std::invalid_argument);
  EXPECT_NO_THROW((void)address::unix_path(std::string(107, 'x')));
  EXPECT_THROW((void)address::unix_path(std::string(108, 'x')), std::invalid_argument);
}

TEST(NetAddress, NumericResolution) {
  auto v = corio::resolve_numeric("::1", 80);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].to_string(), "[::1]:80");
  v = corio::resolve_numeric("localhost", 81);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].to_string(), "127.0.0.1:81");
  EXPECT_EQ(v[1].to_string(), "[::1]:81");
  EXPECT_EQ(corio::resolve_numeric("", 82).size(), 2u);
  EXPECT_TRUE(corio::resolve_numeric("example.invalid", 80).empty());
}

// inet_pton and if_nametoindex stop at a NUL byte: "127.0.0.1\0.evil" must not be 127.0.0.1.
TEST(NetAddress, ANulByteInANumericAddressIsRefused) {
  auto refusal = [](auto f) {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(refusal([] { (void)address::from_ip(std::string("127.0.0.1\0.evil", 15), 80); }),
            "corio: NUL byte inside an IP address: \"127.0.0.1\\0.evil\"");
  EXPECT_EQ(refusal([] { (void)address::from_ip(std::string("[::1\0]", 6), 80); }),
            "corio: NUL byte inside an IP address: \"[::1\\0]\"");
  EXPECT_EQ(refusal([] { (void)address::from_ip(std::string("fe80::1%lo\0x", 12), 80); }),
            "corio: NUL byte inside an IP address: \"fe80::1%lo\\0x\"");
  EXPECT_EQ(refusal([] { (void)address::parse(std::string("127.0.0.1\0:80", 13)); }),
            "corio: NUL byte inside an IP address: \"127.0.0.1\\0\"");
  // resolve_numeric() does not hand it on as "not numeric" (to DNS) either.
  EXPECT_EQ(refusal([] { (void)corio::resolve_numeric(std::string("localhost\0.evil.example", 23), 80); }),
            "corio: resolve_numeric(): the host name \"localhost\\0.evil.example\" contains a NUL byte");
}

} // namespace
