// client_address: who the client is behind trusted proxies, and that nobody else can
// choose the answer.

#include "net/client_address.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace chatorbit::net {
namespace {

AddressSet set_of(std::vector<std::string> entries) {
  auto set = AddressSet::parse(entries);
  EXPECT_TRUE(set.has_value());
  return set.value_or(AddressSet{});
}

std::string client(std::string_view peer, std::vector<std::string_view> xff, const AddressSet& trusted) {
  return client_address(peer, xff, trusted);
}

TEST(ParseIp, NormalFormsAndWhatProxiesWrite) {
  EXPECT_EQ(parse_ip("1.2.3.4")->to_string(), "1.2.3.4");
  EXPECT_EQ(parse_ip(" 1.2.3.4\t")->to_string(), "1.2.3.4");
  EXPECT_EQ(parse_ip("::ffff:1.2.3.4")->to_string(), "1.2.3.4");
  EXPECT_EQ(parse_ip("::FFFF:102:304")->to_string(), "1.2.3.4");
  EXPECT_EQ(parse_ip("2001:DB8:0:0::1")->to_string(), "2001:db8::1");
  EXPECT_EQ(parse_ip("[2001:db8::1]")->to_string(), "2001:db8::1");
  EXPECT_EQ(parse_ip("[2001:db8::1]:443")->to_string(), "2001:db8::1");
  EXPECT_EQ(parse_ip("1.2.3.4:5678")->to_string(), "1.2.3.4");
  EXPECT_TRUE(parse_ip("1.2.3.4")->is_v4());
  EXPECT_FALSE(parse_ip("::1")->is_v4());
  EXPECT_EQ(*parse_ip("::ffff:10.0.0.1"), *parse_ip("10.0.0.1"));
}

TEST(ParseIp, RejectsEverythingElse) {
  for (const char* bad :
       {"", " ", "unknown", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4:", "1.2.3.4:x", "[1.2.3.4]", "[::1",
        "[::1]x", "::1:80:", "fe80::1%eth0", "example.com", "1.2.3.4/8", "_hidden", "\"1.2.3.4\"", "1.2.3.4 5.6.7.8"}) {
    EXPECT_FALSE(parse_ip(bad).has_value()) << bad;
  }
  EXPECT_FALSE(parse_ip(std::string(200, '1')).has_value());
  EXPECT_FALSE(parse_ip(std::string_view("1.2.3.4\0", 8)).has_value());
}

TEST(AddressSet, AddressesAndRanges) {
  const auto s = set_of({"10.0.0.0/8", "192.168.1.7", " fd00::/8 ", "172.16.5.9/12"});
  EXPECT_TRUE(s.contains("10.255.1.2"));
  EXPECT_TRUE(s.contains("::ffff:10.1.2.3")) << "IPv4-mapped is the same host";
  EXPECT_FALSE(s.contains("11.0.0.1"));
  EXPECT_TRUE(s.contains("192.168.1.7"));
  EXPECT_FALSE(s.contains("192.168.1.8"));
  EXPECT_TRUE(s.contains("fdab::1"));
  EXPECT_FALSE(s.contains("fe00::1"));
  EXPECT_TRUE(s.contains("172.31.255.255")) << "host bits past the prefix are ignored";
  EXPECT_FALSE(s.contains("172.32.0.0"));
  EXPECT_FALSE(s.contains("garbage"));
  EXPECT_TRUE(AddressSet{}.empty());
  EXPECT_FALSE(AddressSet{}.contains("127.0.0.1"));
}

TEST(AddressSet, PrefixEdges) {
  const auto all4 = set_of({"0.0.0.0/0"});
  EXPECT_TRUE(all4.contains("8.8.8.8"));
  EXPECT_FALSE(all4.contains("::1")) << "an IPv4 range never covers IPv6";
  const auto all = set_of({"::/0"});
  EXPECT_TRUE(all.contains("8.8.8.8"));
  EXPECT_TRUE(all.contains("2001:db8::1"));
  const auto odd = set_of({"2001:db8::/33"});
  EXPECT_TRUE(odd.contains("2001:db8:7fff::1"));
  EXPECT_FALSE(odd.contains("2001:db8:8000::1"));
  EXPECT_TRUE(set_of({"1.2.3.4/32"}).contains("1.2.3.4"));
  EXPECT_FALSE(set_of({"1.2.3.4/32"}).contains("1.2.3.5"));
}

TEST(AddressSet, NamesTheFirstBadEntry) {
  for (const char* bad : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8/8", "10.0.0.0/ 8",
                          "localhost", "1.2.3.4:80", "[::1]", "", "10.0.0.0/+8"}) {
    std::string named;
    EXPECT_FALSE(AddressSet::parse({"127.0.0.1", bad, "also-bad"}, &named).has_value()) << bad;
    EXPECT_EQ(named, bad);
  }
}

TEST(ClientAddress, UntrustedPeerIsTheClientAndItsHeaderIsIgnored) {
  const auto trusted = set_of({"10.0.0.1"});
  EXPECT_EQ(client("203.0.113.9", {"1.1.1.1"}, trusted), "203.0.113.9");
  EXPECT_EQ(client("203.0.113.9", {"1.1.1.1"}, AddressSet{}), "203.0.113.9");
  EXPECT_EQ(client("::ffff:203.0.113.9", {}, AddressSet{}), "203.0.113.9") << "peer normalised";
  EXPECT_EQ(client("unknown", {"1.1.1.1"}, trusted), "unknown");
}

TEST(ClientAddress, TrustedPeerNamesTheClient) {
  const auto trusted = set_of({"10.0.0.0/8"});
  EXPECT_EQ(client("10.0.0.1", {"198.51.100.7"}, trusted), "198.51.100.7");
  EXPECT_EQ(client("10.0.0.1", {"  198.51.100.7  "}, trusted), "198.51.100.7");
  EXPECT_EQ(client("10.0.0.1", {"2001:db8::7"}, trusted), "2001:db8::7");
  EXPECT_EQ(client("10.0.0.1", {"::ffff:198.51.100.7"}, trusted), "198.51.100.7");
  EXPECT_EQ(client("::ffff:10.0.0.1", {"198.51.100.7"}, trusted), "198.51.100.7") << "mapped peer is trusted too";
  EXPECT_EQ(client("10.0.0.1", {}, trusted), "10.0.0.1") << "no header: the proxy itself";
  EXPECT_EQ(client("10.0.0.1", {""}, trusted), "10.0.0.1");
}

TEST(ClientAddress, ChainsOfProxiesAndSeveralHeaders) {
  const auto trusted = set_of({"10.0.0.0/8", "fd00::/8"});
  // client -> edge proxy 10.1.1.1 -> inner proxy 10.2.2.2 -> us (peer 10.3.3.3)
  EXPECT_EQ(client("10.3.3.3", {"198.51.100.7, 10.1.1.1, 10.2.2.2"}, trusted), "198.51.100.7");
  EXPECT_EQ(client("10.3.3.3", {"198.51.100.7", "10.1.1.1,fd00::2"}, trusted), "198.51.100.7")
      << "several headers are one list, in order";
  EXPECT_EQ(client("10.3.3.3", {"198.51.100.7,,10.1.1.1, "}, trusted), "198.51.100.7") << "empty elements skipped";
  EXPECT_EQ(client("10.3.3.3", {"10.9.9.9, 10.1.1.1"}, trusted), "10.9.9.9") << "all trusted: the leftmost";
}

TEST(ClientAddress, ClientCannotChooseItsAddressThroughATrustedProxy) {
  const auto trusted = set_of({"10.0.0.0/8"});
  // The client sends its own X-Forwarded-For; the proxy appends the real address.
  EXPECT_EQ(client("10.0.0.1", {"6.6.6.6, 198.51.100.7"}, trusted), "198.51.100.7");
  EXPECT_EQ(client("10.0.0.1", {"6.6.6.6", "198.51.100.7"}, trusted), "198.51.100.7");
  // Pretending to be a trusted hop does not help either: the proxy's entry is rightmost.
  EXPECT_EQ(client("10.0.0.1", {"6.6.6.6, 10.0.0.5, 198.51.100.7"}, trusted), "198.51.100.7");
  // A client that reaches us directly cannot claim anything.
  EXPECT_EQ(client("198.51.100.7", {"10.0.0.1"}, trusted), "198.51.100.7");
  EXPECT_EQ(client("198.51.100.7", {"6.6.6.6, 10.0.0.1"}, trusted), "198.51.100.7");
}

TEST(ClientAddress, GarbageStopsTheWalkAtTheLastBelievedAddress) {
  const auto trusted = set_of({"10.0.0.0/8"});
  EXPECT_EQ(client("10.0.0.1", {"unknown"}, trusted), "10.0.0.1");
  EXPECT_EQ(client("10.0.0.1", {"6.6.6.6, garbage"}, trusted), "10.0.0.1") << "nothing past garbage is believed";
  EXPECT_EQ(client("10.0.0.1", {"6.6.6.6, garbage, 10.2.2.2"}, trusted), "10.2.2.2");
  EXPECT_EQ(client("10.0.0.1", {"garbage, 198.51.100.7"}, trusted), "198.51.100.7") << "stopped before garbage";
  EXPECT_EQ(client("10.0.0.1", {"198.51.100.7\r\nX-Evil: 1"}, trusted), "10.0.0.1");
  EXPECT_EQ(client("10.0.0.1", {"1.2.3.4; for=5.6.7.8"}, trusted), "10.0.0.1");
}

TEST(ClientAddress, NeverThrowsOnAnyHeader) {
  const auto trusted = set_of({"10.0.0.0/8", "::/0"});
  std::mt19937 rng(7);
  std::string alphabet = "0123456789abcdefABCDEF:.,[]% \t/-";
  alphabet += '\0';
  alphabet += '\xff';
  for (int i = 0; i < 20000; ++i) {
    std::string h(rng() % 64, ' ');
    for (auto& c : h) c = alphabet[rng() % alphabet.size()];
    std::vector<std::string_view> headers{h, std::string_view(h).substr(0, h.size() / 2)};
    EXPECT_NO_THROW((void)client_address("10.0.0.1", headers, trusted));
  }
  const std::string huge(64 * 1024, ',');
  EXPECT_EQ(client("10.0.0.1", {huge}, trusted), "10.0.0.1");
}

}  // namespace
}  // namespace chatorbit::net
