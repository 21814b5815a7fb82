#pragma once
// HS256 JSON Web Tokens (RFC 7519), verified per the RFC 8725 best practices: one pinned
// algorithm, strict base64url, constant-time signature check, mandatory exp/iss/aud.
// Optionally, during a migration from the original Go service, its tokens too (HS256 over
// the same secret, claims user_id, email and exp only: see JwtConfig::accept_legacy).

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
  /// Also accept the original service's tokens, which carry none of iss, aud and jti
  /// (CHATORBIT_ACCEPT_LEGACY_TOKENS). Meant for the day of a switch from the original,
  /// so that its signed-in users stay signed in; off once its tokens have expired.
  bool accept_legacy = false;
};

/// Lifetime of the tokens the original service issued (exp = issue time + 24 h): the
/// longest a legacy token is expected to outlive the switch.
inline constexpr std::chrono::hours kLegacyTokenLifetime{24};

/// Who a token is issued to.
struct Identity {
  std::string user_id;
  std::string email;
  std::string username;
  std::string role;
};

/// The claims of a verified token. String claims absent from the token are empty; `aud` holds
/// the configured audience that matched (even when the token carried an array).
///
/// A legacy token (the original service's, `legacy` true) has empty iss and aud, iat 0
/// unless it carried one (so any password-change floor revokes it), and a `jti` derived
/// from the token itself: "legacy-" and 32 hex digits of its SHA-256. No issued jti has
/// that shape, and the same token always gets the same one, so logout revokes a legacy
/// token as it revokes any other, on every node.
struct Claims {
  std::string user_id, email, username, role, jti, sub, iss, aud;
  std::int64_t iat = 0, nbf = 0, exp = 0;
  bool legacy = false;
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
  missing_claim,    ///< `exp` or a non-empty string `user_id` is missing (for a legacy token: a 24-hex `user_id`).
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
  /// expiry, nbf/iat, iss, aud, then user_id. With config().accept_legacy, a token carrying
  /// none of iss, aud and jti is taken for the original's instead of failing on iss: it
  /// passes every check before iss, and needs a user_id of 24 lower-case hex digits (an
  /// ObjectId, as the original issued them), else missing_claim. A token that carries any
  /// of the three is checked as before, whatever the setting; without the setting a legacy
  /// token fails with wrong_issuer. Header fields jku, x5u, jwk, kid are ignored;
  /// a `crit` header is rejected as malformed since no extension is understood (RFC 7515
  /// §4.1.11). Never throws on any input (only std::bad_alloc could escape).
  VerifyResult verify(std::string_view token) const;

  const JwtConfig& config() const { return cfg_; }

  /// How long a token accepted now may stay valid (leeway aside): the ttl, or the
  /// original's 24 h when legacy tokens are accepted and that is longer. What covers
  /// "every token of the user" (a password change's floor) must be kept this long.
  std::chrono::seconds max_token_lifetime() const;

 private:
  JwtConfig cfg_;
  const Clock* clock_;
  RandomSource* random_;
};

}  // namespace chatorbit::auth
