#include "auth/jwt.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <limits>
#include <new>
#include <stdexcept>
#include <utility>

#include <boost/json.hpp>

namespace chatorbit::auth {

namespace json = boost::json;

namespace {

constexpr std::size_t kSigBytes = 32;  // SHA-256 output.
// Upper bound for NumericDate claims (9999-12-31T23:59:59Z): keeps every later addition of
// leeway or "now" far from int64 overflow, and no genuine token lives that long.
constexpr std::int64_t kMaxNumericDate = 253'402'300'799;

constexpr std::string_view kB64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(in[k])); };
  for (; i + 3 <= in.size(); i += 3) {
    std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out.push_back(kB64Alphabet[(v >> 18) & 63]);
    out.push_back(kB64Alphabet[(v >> 12) & 63]);
    out.push_back(kB64Alphabet[(v >> 6) & 63]);
    out.push_back(kB64Alphabet[v & 63]);
  }
  std::size_t rest = in.size() - i;
  if (rest == 1) {
    std::uint32_t v = byte(i) << 16;
    out.push_back(kB64Alphabet[(v >> 18) & 63]);
    out.push_back(kB64Alphabet[(v >> 12) & 63]);
  } else if (rest == 2) {
    std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
    out.push_back(kB64Alphabet[(v >> 18) & 63]);
    out.push_back(kB64Alphabet[(v >> 12) & 63]);
    out.push_back(kB64Alphabet[(v >> 6) & 63]);
  }
  return out;
}

int b64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// Strict decoder: no padding, no whitespace, no standard-base64 '+' '/', and the unused low
// bits of the last character must be zero. The last rule matters for signatures: otherwise
// several distinct strings decode to the same MAC, and a token would have more than one
// valid spelling (breaking e.g. revocation lists keyed by token text).
std::optional<std::string> b64url_decode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = b64url_value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

// Both JSON segments of a token must be objects (RFC 7519 §7.2 steps 3 and 10).
std::optional<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return std::nullopt;
  json::object* obj = v.if_object();
  if (obj == nullptr) return std::nullopt;
  return std::move(*obj);
}

enum class Field { absent, ok, bad_type };

Field get_string(const json::object& o, std::string_view key, std::string& out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return Field::absent;
  const json::string* s = v->if_string();
  if (s == nullptr) return Field::bad_type;
  out.assign(s->data(), s->size());
  return Field::ok;
}

// NumericDate (RFC 7519 §2): integer or fractional seconds. Fractions are truncated, which
// for non-negative values makes exp expire slightly early rather than late.
Field get_numeric_date(const json::object& o, std::string_view key, std::int64_t& out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return Field::absent;
  if (const std::int64_t* i = v->if_int64()) {
    if (*i < 0 || *i > kMaxNumericDate) return Field::bad_type;
    out = *i;
    return Field::ok;
  }
  if (const std::uint64_t* u = v->if_uint64()) {
    if (*u > static_cast<std::uint64_t>(kMaxNumericDate)) return Field::bad_type;
    out = static_cast<std::int64_t>(*u);
    return Field::ok;
  }
  if (const double* d = v->if_double()) {
    // The comparisons are false for NaN, and Boost.JSON turns 1e400 into infinity.
    if (!(*d >= 0.0 && *d <= static_cast<double>(kMaxNumericDate))) return Field::bad_type;
    out = static_cast<std::int64_t>(*d);
    return Field::ok;
  }
  return Field::bad_type;
}

bool hmac_sha256(std::string_view key, std::string_view data, std::array<unsigned char, kSigBytes>& out) {
  unsigned int len = 0;
  const unsigned char* r = HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                                reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return r != nullptr && len == kSigBytes;
}

VerifyResult fail(JwtError e) { return VerifyResult{std::nullopt, e}; }

// The original service's user ids are MongoDB ObjectIds, which it wrote as 24 lower-case
// hex digits.
bool is_legacy_user_id(std::string_view id) {
  return id.size() == 24 && id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// A legacy token's stand-in for a jti: a digest, never the signature itself, since jtis
// are logged and kept in the store and the engine, and the signature with the guessable
// header and payload would be the token.
std::string legacy_jti(std::string_view token) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  if (EVP_Digest(token.data(), token.size(), digest.data(), &len, EVP_sha256(), nullptr) != 1 || len < 16) {
    throw std::runtime_error("SHA-256 failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "legacy-";
  for (unsigned int i = 0; i < 16; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

}  // namespace

std::string_view to_string(JwtError e) noexcept {
  switch (e) {
    case JwtError::malformed: return "malformed";
    case JwtError::wrong_algorithm: return "wrong_algorithm";
    case JwtError::bad_signature: return "bad_signature";
    case JwtError::expired: return "expired";
    case JwtError::not_yet_valid: return "not_yet_valid";
    case JwtError::wrong_issuer: return "wrong_issuer";
    case JwtError::wrong_audience: return "wrong_audience";
    case JwtError::missing_claim: return "missing_claim";
  }
  return "unknown";
}

JwtCodec::JwtCodec(JwtConfig cfg, const Clock& clock, RandomSource& random)
    : cfg_(std::move(cfg)), clock_(&clock), random_(&random) {
  // An empty key would make every token forgeable by anyone; it is never what was meant.
  if (cfg_.secret.empty()) throw std::invalid_argument("JWT secret must not be empty");
  // HMAC() takes the key length as int.
  if (cfg_.secret.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw std::invalid_argument("JWT secret too long");
  if (cfg_.ttl <= std::chrono::seconds::zero() || cfg_.ttl > std::chrono::hours{24 * 365 * 100}) {
    throw std::invalid_argument("JWT ttl must be in (0, 100 years]");
  }
  if (cfg_.leeway < std::chrono::seconds::zero() || cfg_.leeway > std::chrono::hours{1}) {
    throw std::invalid_argument("JWT leeway must be in [0, 1 hour]");
  }
}

std::chrono::seconds JwtCodec::max_token_lifetime() const {
  if (!cfg_.accept_legacy) return cfg_.ttl;
  return std::max(cfg_.ttl, std::chrono::duration_cast<std::chrono::seconds>(kLegacyTokenLifetime));
}

std::string JwtCodec::issue(const Identity& id, std::int64_t earliest_iat_s) const {
  // Fixed text rather than serialised JSON so the header is byte-for-byte what the spec says.
  static const std::string header = b64url_encode(R"({"alg":"HS256","typ":"JWT"})");

  // Never more than the leeway ahead, so that the verifier's not-yet-valid check holds.
  const std::int64_t now = clock_->unix_seconds();
  const std::int64_t iat = std::clamp(earliest_iat_s, now, now + cfg_.leeway.count());
  json::object claims;
  claims["user_id"] = id.user_id;
  claims["email"] = id.email;
  claims["username"] = id.username;
  claims["role"] = id.role;
  // The original's front end shows its admin badge from this claim (the role at issue
  // time; the server itself always checks the account's current role).
  claims["isAdmin"] = id.role == "admin";
  claims["sub"] = id.user_id;
  claims["iss"] = cfg_.issuer;
  claims["aud"] = cfg_.audience;
  claims["iat"] = iat;
  claims["nbf"] = iat;
  claims["exp"] = iat + cfg_.ttl.count();
  claims["jti"] = random_->hex(16);

  std::string token = header;
  token.push_back('.');
  token += b64url_encode(json::serialize(claims));

  std::array<unsigned char, kSigBytes> sig{};
  if (!hmac_sha256(cfg_.secret, token, sig)) throw std::runtime_error("HMAC-SHA256 failed");
  token.push_back('.');
  token += b64url_encode(std::string_view(reinterpret_cast<const char*>(sig.data()), sig.size()));
  return token;
}

VerifyResult JwtCodec::verify(std::string_view token) const {
  try {
    if (token.size() > kMaxTokenBytes) return fail(JwtError::malformed);

    const std::size_t dot1 = token.find('.');
    if (dot1 == std::string_view::npos) return fail(JwtError::malformed);
    const std::size_t dot2 = token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos) return fail(JwtError::malformed);
    if (token.find('.', dot2 + 1) != std::string_view::npos) return fail(JwtError::malformed);

    const std::string_view header_b64 = token.substr(0, dot1);
    const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
    const std::string_view sig_b64 = token.substr(dot2 + 1);

    std::optional<std::string> header_json = b64url_decode(header_b64);
    std::optional<std::string> payload_json = b64url_decode(payload_b64);
    std::optional<std::string> sig = b64url_decode(sig_b64);
    if (!header_json || !payload_json || !sig) return fail(JwtError::malformed);

    std::optional<json::object> header = parse_object(*header_json);
    if (!header) return fail(JwtError::malformed);
    // The algorithm is pinned by configuration, never taken from the token (RFC 8725 §3.1):
    // "none" and every other alg are refused before any key is used.
    const json::value* alg = header->if_contains("alg");
    const json::string* alg_str = alg != nullptr ? alg->if_string() : nullptr;
    if (alg_str == nullptr || *alg_str != "HS256") return fail(JwtError::wrong_algorithm);
    // jku/x5u/jwk/kid are deliberately never read: there is exactly one key and it is ours.
    if (header->contains("crit")) return fail(JwtError::malformed);

    if (sig->size() != kSigBytes) return fail(JwtError::bad_signature);
    std::array<unsigned char, kSigBytes> expected{};
    if (!hmac_sha256(cfg_.secret, token.substr(0, dot2), expected)) return fail(JwtError::bad_signature);
    if (CRYPTO_memcmp(expected.data(), sig->data(), kSigBytes) != 0) return fail(JwtError::bad_signature);

    // Only now, with the payload authenticated, is it parsed.
    std::optional<json::object> payload = parse_object(*payload_json);
    if (!payload) return fail(JwtError::malformed);

    Claims c;
    const Field user_id = get_string(*payload, "user_id", c.user_id);
    const Field iss = get_string(*payload, "iss", c.iss);
    const Field jti = get_string(*payload, "jti", c.jti);
    const Field exp = get_numeric_date(*payload, "exp", c.exp);
    const Field nbf = get_numeric_date(*payload, "nbf", c.nbf);
    const Field iat = get_numeric_date(*payload, "iat", c.iat);
    for (Field f : {user_id, iss, exp, nbf, iat, get_string(*payload, "email", c.email),
                    get_string(*payload, "username", c.username), get_string(*payload, "role", c.role), jti,
                    get_string(*payload, "sub", c.sub)}) {
      if (f == Field::bad_type) return fail(JwtError::malformed);
    }

    // aud is a string or an array of strings (RFC 7519 §4.1.3).
    bool aud_match = false;
    if (const json::value* aud = payload->if_contains("aud")) {
      if (const json::string* s = aud->if_string()) {
        aud_match = *s == cfg_.audience;
      } else if (const json::array* arr = aud->if_array()) {
        for (const json::value& item : *arr) {
          const json::string* s2 = item.if_string();
          if (s2 == nullptr) return fail(JwtError::malformed);
          if (*s2 == cfg_.audience) aud_match = true;
        }
      } else {
        return fail(JwtError::malformed);
      }
    }

    if (exp == Field::absent) return fail(JwtError::missing_claim);
    const std::int64_t now = clock_->unix_seconds();
    const std::int64_t leeway = cfg_.leeway.count();
    if (c.exp + leeway < now) return fail(JwtError::expired);
    if (nbf == Field::ok && c.nbf > now + leeway) return fail(JwtError::not_yet_valid);
    if (iat == Field::ok && c.iat > now + leeway) return fail(JwtError::not_yet_valid);
    // The original's tokens carry none of the claims that make a token ours; one that
    // carries any of them is ours, and checked as such below.
    const bool legacy_shape = iss == Field::absent && !payload->contains("aud") && jti == Field::absent;
    if (cfg_.accept_legacy && legacy_shape) {
      if (!is_legacy_user_id(c.user_id)) return fail(JwtError::missing_claim);
      c.jti = legacy_jti(token);
      c.legacy = true;
      return VerifyResult{std::move(c), JwtError{}};
    }
    if (iss != Field::ok || c.iss != cfg_.issuer) return fail(JwtError::wrong_issuer);
    if (!aud_match) return fail(JwtError::wrong_audience);
    if (user_id != Field::ok || c.user_id.empty()) return fail(JwtError::missing_claim);
    c.aud = cfg_.audience;

    return VerifyResult{std::move(c), JwtError{}};
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception&) {
    // Nothing above is expected to throw; fail closed if a future edit introduces something that does.
    return fail(JwtError::malformed);
  }
}

}  // namespace chatorbit::auth
