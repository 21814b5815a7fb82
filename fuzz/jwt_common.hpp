#pragma once
// Shared by the JWT fuzz targets: the fixed key, clock and randomness they verify with,
// and an independent base64url/HS256 signer, so the targets can build correctly signed
// tokens around arbitrary JSON without going through the code under test.

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <string>
#include <string_view>

#include "auth/jwt.hpp"
#include "core/clock.hpp"
#include "core/random.hpp"

namespace chatorbit::fuzz {

inline const std::string kJwtSecret = "fuzz-secret-0123456789abcdef-0123456789";
/// 2023-11-14T22:13:20Z; fixed so that the "exp" in the seed tokens stays meaningful.
inline constexpr std::int64_t kJwtNow = 1'700'000'000;

inline auth::JwtConfig jwt_config() {
  auth::JwtConfig cfg;
  cfg.secret = kJwtSecret;
  cfg.leeway = std::chrono::seconds{30};
  cfg.ttl = std::chrono::hours{1};
  return cfg;
}

inline std::string b64url(std::string_view in) {
  static constexpr char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  auto at = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(in[k])); };
  for (; i + 3 <= in.size(); i += 3) {
    const unsigned v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
  }
  if (in.size() - i == 1) {
    const unsigned v = at(i) << 16;
    out += {a[v >> 18], a[(v >> 12) & 63]};
  } else if (in.size() - i == 2) {
    const unsigned v = (at(i) << 16) | (at(i + 1) << 8);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63]};
  }
  return out;
}

/// header.payload.signature with an HS256 signature under kJwtSecret.
inline std::string sign_hs256(std::string_view header_json, std::string_view payload_json) {
  std::string token = b64url(header_json) + "." + b64url(payload_json);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kJwtSecret.data(), static_cast<int>(kJwtSecret.size()),
       reinterpret_cast<const unsigned char*>(token.data()), token.size(), mac, &len);
  return token + "." + b64url(std::string_view(reinterpret_cast<const char*>(mac), len));
}

}  // namespace chatorbit::fuzz
