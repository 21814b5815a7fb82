#pragma once
// HS256 JSON Web Tokens (RFC 7519), verified per the RFC 8725 best practices: one pinned
// algorithm, strict base64url, constant-time signature check, mandatory exp/iss/aud.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.hpp"
#include "core/random.hpp"

namespace chatorbit::auth {

/// Settings for issuing and verifying tokens.
struct JwtConfig {
  /// HMAC key; must not be empty. RFC 7518 §3.2 requires at least 32 bytes for HS256: shorter
  /// keys are accepted (the caller decides whether to warn or refuse) but are brute-forceable.
  std::string secret;
  std::string issuer = "chatorbit";
  std::string audience = "chatorbit";
  /// Tolerated clock skew between issuer and verifier, applied to exp, nbf and iat.
  std::chrono::seconds leeway{30};
  /// Lifetime of issued tokens.
  std::chrono::seconds ttl{std::chrono::hours{24}};
};

/// Who a token is issued to.
struct Identity {
  std::string user_id;
  std::string email;
  std::string username;
  std::string role;
};

/// The claims of a verified token. String claims absent from the token are empty; `aud` holds
/// the configured audience that matched (even when the token carried an array).
struct Claims {
  std::string user_id, email, username, role, jti, sub, iss, aud;
  std::int64_t iat = 0, nbf = 0, exp = 0;
};

/// Why a token was rejected.
enum class JwtError {
  malformed,        ///< Not three strict base64url segments, not JSON objects, too long, or a claim of the wrong type.
  wrong_algorithm,  ///< Header `alg` is anything but "HS256" (including missing and "none").
  bad_signature,    ///< HMAC mismatch: tampered, or signed with another key.
  expired,          ///< exp + leeway is in the past.
  not_yet_valid,    ///< nbf or iat is further in the future than the leeway.
  wrong_issuer,     ///< `iss` missing or not the configured issuer.
  wrong_audience,   ///< `aud` missing, or neither equal to nor an array containing the configured audience.
  missing_claim,    ///< `exp` or a non-empty string `user_id` is missing.
};

/// Stable snake_case name of `e`, for logs and metrics. Never throws.
std::string_view to_string(JwtError e) noexcept;

/// Outcome of JwtCodec::verify: `claims` on success, otherwise `error`.
struct VerifyResult {
  std::optional<Claims> claims;
  /// Meaningful only when `claims` is empty.
  JwtError error{};
  /// True when the token was accepted.
  explicit operator bool() const { return claims.has_value(); }
};

/// Issues and verifies HS256 JWTs.
///
/// Immutable after construction, so one instance may be shared by any number of threads,
/// provided the Clock and RandomSource it was given are thread-safe (the project's are).
/// Both are held by reference and must outlive the codec.
class JwtCodec {
 public:
  /// Longest token verify() will look at; longer input is rejected unparsed to bound work.
  static constexpr std::size_t kMaxTokenBytes = 8192;

  /// Throws std::invalid_argument if the secret is empty, if ttl is not in (0, 100 years], or if
  /// leeway is not in [0, 1 hour]: each is a deployment mistake better caught at startup than
  /// in production traffic (and the bounds keep all time arithmetic far from overflow).
  JwtCodec(JwtConfig cfg, const Clock& clock, RandomSource& random);

  /// A signed token for `id`, valid from now for config().ttl. Claims: user_id, email, username,
  /// role, sub (= user_id), iss, aud, iat, nbf (= iat), exp (= iat + ttl), and jti (16 random
  /// bytes, hex). `earliest_iat_s` moves iat (and nbf, exp with it) up to that time, at
  /// most the leeway ahead: a token issued in the second of a password change must carry
  /// an iat at the user's new floor (RevocationList::floor_of), or it would be born
  /// revoked. Throws std::runtime_error only if OpenSSL fails to compute the HMAC.
  std::string issue(const Identity& id, std::int64_t earliest_iat_s = 0) const;

  /// Checks `token` and returns its claims, or why it was rejected. Order of checks: size and
  /// shape (malformed), header alg (wrong_algorithm, decided before the signature is looked
  /// at), signature (bad_signature), payload types (malformed), exp presence (missing_claim),
  /// expiry, nbf/iat, iss, aud, then user_id. Header fields jku, x5u, jwk, kid are ignored;
  /// a `crit` header is rejected as malformed since no extension is understood (RFC 7515
  /// §4.1.11). Never throws on any input (only std::bad_alloc could escape).
  VerifyResult verify(std::string_view token) const;

  const JwtConfig& config() const { return cfg_; }

 private:
  JwtConfig cfg_;
  const Clock* clock_;
  RandomSource* random_;
};

}  // namespace chatorbit::auth
