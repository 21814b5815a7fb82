#pragma once
// Who the client is when requests arrive through reverse proxies.
//
// A proxy that we trust (CHATORBIT_TRUSTED_PROXIES) appends the address it received the
// connection from to X-Forwarded-For. Anything to the left of that was written by the
// client or by proxies we know nothing about, so it proves nothing: a client can send
// its own X-Forwarded-For. The believed client is therefore found from the right: skip
// every trusted hop, take the first address that is not trusted (the rightmost-untrusted
// rule of RFC 7239 section 7.4, applied to X-Forwarded-For).
//
// Addresses are compared and returned in one normal form: IPv4 as dotted quad (also when
// it arrives IPv4-mapped, ::ffff:1.2.3.4, as a dual-stack socket reports it), IPv6 in
// RFC 5952 text (inet_ntop).
//
// Pure functions and value types; no I/O, no locks. An AddressSet is immutable after it
// is built, so one may be read from every thread.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace chatorbit::net {

/// An IPv4 or IPv6 address, held as 16 bytes (IPv4 as ::ffff:a.b.c.d).
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};

  /// True for IPv4 (including IPv4-mapped IPv6, which is the same host).
  bool is_v4() const noexcept;
  /// The normal text form (see the file comment).
  std::string to_string() const;
  bool operator==(const IpAddress&) const = default;
};

/// Parses an IPv4 or IPv6 address in text; nullopt for anything else (never throws).
/// Surrounding spaces or tabs are allowed. Also accepts what proxies put in
/// X-Forwarded-For besides a bare address: "[v6]", "[v6]:port" and "v4:port" (the port
/// is ignored).
std::optional<IpAddress> parse_ip(std::string_view text) noexcept;

/// A set of addresses and CIDR ranges (e.g. 10.0.0.0/8, fd00::/8, 127.0.0.1).
class AddressSet {
 public:
  AddressSet() = default;

  /// Builds a set from entries such as "10.0.0.0/8", "::1" or "192.168.1.7". Returns
  /// nullopt and sets `bad` to the first entry that is neither an address nor a CIDR
  /// (bits past the prefix may be set: 10.1.2.3/8 means 10.0.0.0/8).
  static std::optional<AddressSet> parse(const std::vector<std::string>& entries, std::string* bad = nullptr);

  /// True if `address` is in one of the ranges. An IPv4 range also covers the
  /// IPv4-mapped form of its addresses.
  bool contains(const IpAddress& address) const noexcept;
  /// The same for an address in text; false if `address` does not parse.
  bool contains(std::string_view address) const noexcept;
  bool empty() const noexcept { return ranges_.empty(); }

 private:
  struct Range {
    IpAddress base;  ///< bits past `bits` cleared
    int bits = 0;    ///< prefix length over the 16-byte form (IPv4 /n is 96 + n)
  };
  std::vector<Range> ranges_;
};

/// The believed client address of a connection from `peer` (the socket's remote
/// address) whose request carried `forwarded_for` (every X-Forwarded-For header value,
/// in the order received; each a comma list). If `peer` is not in `trusted`, that is
/// `peer` itself, and the header is ignored. Otherwise the list is walked from the
/// right, skipping trusted addresses, and the first untrusted one is the answer. Where
/// the walk meets an entry that is not an address ("unknown", a typo, an injection
/// attempt), or runs out of entries, it stops at the last address it believed (the
/// nearest trusted hop, or `peer`). Empty list elements are skipped.
///
/// The result is in normal form if it parsed; a `peer` that does not parse is returned
/// as is. Never throws on any header content.
std::string client_address(std::string_view peer, std::span<const std::string_view> forwarded_for,
                           const AddressSet& trusted);

}  // namespace chatorbit::net
