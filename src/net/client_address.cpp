#include "net/client_address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "net/http_types.hpp"

namespace chatorbit::net {
namespace {

bool all_digits(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A bare address, nothing around it: what the configuration and a socket give.
std::optional<IpAddress> parse_bare(std::string_view text) noexcept {
  // inet_pton wants a NUL-terminated string; the longest IPv6 text is 45 characters.
  char buf[64];
  // A NUL inside would end the string early for inet_pton: "1.2.3.4\0junk" is not 1.2.3.4.
  if (text.empty() || text.size() >= sizeof buf || text.find('\0') != std::string_view::npos) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress out;
  unsigned char v4[4];
  if (::inet_pton(AF_INET, buf, v4) == 1) {
    out.bytes[10] = 0xff;
    out.bytes[11] = 0xff;
    std::memcpy(out.bytes.data() + 12, v4, 4);
    return out;
  }
  if (::inet_pton(AF_INET6, buf, out.bytes.data()) == 1) return out;
  return std::nullopt;
}

}  // namespace

bool IpAddress::is_v4() const noexcept {
  return std::all_of(bytes.begin(), bytes.begin() + 10, [](std::uint8_t b) { return b == 0; }) && bytes[10] == 0xff &&
         bytes[11] == 0xff;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  const bool v4 = is_v4();
  if (!::inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? bytes.data() + 12 : bytes.data(), buf, sizeof buf)) return {};
  return buf;
}

std::optional<IpAddress> parse_ip(std::string_view text) noexcept {
  text = http::trim_ows(text);
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const auto rest = text.substr(close + 1);
    if (!rest.empty() && !(rest.front() == ':' && all_digits(rest.substr(1)))) return std::nullopt;
    auto ip = parse_bare(text.substr(1, close - 1));
    if (ip && ip->is_v4()) return std::nullopt;  // brackets are for IPv6 only
    return ip;
  }
  if (auto ip = parse_bare(text)) return ip;
  // "1.2.3.4:5678": an IPv4 address with a port (one colon; IPv6 would have several).
  const auto colon = text.find(':');
  if (colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos &&
      all_digits(text.substr(colon + 1))) {
    auto ip = parse_bare(text.substr(0, colon));
    if (ip && ip->is_v4()) return ip;
  }
  return std::nullopt;
}

std::optional<AddressSet> AddressSet::parse(const std::vector<std::string>& entries, std::string* bad) {
  AddressSet set;
  for (const auto& raw : entries) {
    const auto entry = http::trim_ows(raw);
    const auto slash = entry.find('/');
    const auto ip = parse_bare(entry.substr(0, slash));
    Range range;
    bool ok = ip.has_value();
    if (ok) {
      range.base = *ip;
      const int max = ip->is_v4() ? 32 : 128;
      int prefix = max;
      if (slash != std::string_view::npos) {
        const auto digits = entry.substr(slash + 1);
        const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
        ok = all_digits(digits) && ec == std::errc{} && p == digits.data() + digits.size() && prefix <= max;
      }
      range.bits = ip->is_v4() ? 96 + prefix : prefix;
    }
    if (!ok) {
      if (bad) *bad = raw;
      return std::nullopt;
    }
    for (int i = range.bits; i < 128; ++i) range.base.bytes[i / 8] &= static_cast<std::uint8_t>(~(0x80u >> (i % 8)));
    set.ranges_.push_back(range);
  }
  return set;
}

bool AddressSet::contains(const IpAddress& address) const noexcept {
  for (const auto& r : ranges_) {
    const int full = r.bits / 8;
    if (!std::equal(r.base.bytes.begin(), r.base.bytes.begin() + full, address.bytes.begin())) continue;
    const int rest = r.bits % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xff00u >> rest);
    if ((address.bytes[full] & mask) == r.base.bytes[full]) return true;
  }
  return false;
}

bool AddressSet::contains(std::string_view address) const noexcept {
  const auto ip = parse_ip(address);
  return ip && contains(*ip);
}

std::string client_address(std::string_view peer, std::span<const std::string_view> forwarded_for,
                           const AddressSet& trusted) {
  const auto peer_ip = parse_ip(peer);
  if (!peer_ip) return std::string(peer);
  if (!trusted.contains(*peer_ip)) return peer_ip->to_string();
  IpAddress believed = *peer_ip;
  // Right to left: the last header first, and within a header its last element first.
  for (auto header = forwarded_for.rbegin(); header != forwarded_for.rend(); ++header) {
    std::string_view rest = *header;
    for (;;) {
      const auto comma = rest.rfind(',');
      const auto element = http::trim_ows(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
      if (!element.empty()) {
        const auto ip = parse_ip(element);
        // Past an entry we cannot read, nothing further left can be attributed to
        // anyone we trust.
        if (!ip) return believed.to_string();
        believed = *ip;
        if (!trusted.contains(*ip)) return believed.to_string();
      }
      if (comma == std::string_view::npos) break;
      rest = rest.substr(0, comma);
    }
  }
  // Every hop was trusted: the leftmost is as far as the chain can be followed.
  return believed.to_string();
}

}  // namespace chatorbit::net
