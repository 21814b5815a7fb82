#include "auth/jwt.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <array>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/random.hpp"

namespace chatorbit::auth {
namespace {

using namespace std::chrono_literals;

const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";

// Test-side base64url so hand-built tokens do not depend on the code under test.
std::string b64url(std::string_view in) {
  static constexpr char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
  }
  if (in.size() - i == 1) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {a[v >> 18], a[(v >> 12) & 63]};
  } else if (in.size() - i == 2) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63]};
  }
  return out;
}

std::string b64url_decode(std::string_view in) {
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = c >= 'A' && c <= 'Z'   ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '-'             ? 62
                                   : 63;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string hmac(const EVP_MD* md, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()), data.size(),
       out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

// A token with arbitrary header and payload JSON, HS256-signed with `secret`.
std::string sign(std::string_view header, std::string_view payload, std::string_view secret = kSecret) {
  std::string input = b64url(header) + "." + b64url(payload);
  return input + "." + b64url(hmac(EVP_sha256(), secret, input));
}

constexpr std::string_view kHs256 = R"({"alg":"HS256","typ":"JWT"})";

std::vector<std::string> split(const std::string& token) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    std::size_t dot = token.find('.', start);
    parts.push_back(token.substr(start, dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

// "ok" or the error's name: comparing `.error` alone would let an accepted token pass a
// rejection test, since a successful result carries the default error value.
std::string outcome(const VerifyResult& r) { return r ? "ok" : std::string(to_string(r.error)); }

class JwtTest : public ::testing::Test {
 protected:
  JwtConfig config(std::string secret = kSecret) {
    JwtConfig c;
    c.secret = std::move(secret);
    return c;
  }
  std::int64_t now() const { return clock_.unix_seconds(); }
  // A payload the codec accepts, with `extra` spliced in (later duplicates win in Boost.JSON).
  std::string payload(const std::string& extra = "") const {
    std::string p = R"({"user_id":"u1","iss":"chatorbit","aud":"chatorbit","exp":)" + std::to_string(now() + 600);
    if (!extra.empty()) p += "," + extra;
    return p + "}";
  }

  ManualClock clock_;
  SeededRandom random_{42};
  JwtCodec codec_{config(), clock_, random_};
  Identity alice_{"u-123", "alice@example.com", "alice", "admin"};
};

TEST_F(JwtTest, RoundTrip) {
  const std::string token = codec_.issue(alice_);
  const VerifyResult r = codec_.verify(token);
  ASSERT_TRUE(r) << to_string(r.error);
  const Claims& c = *r.claims;
  EXPECT_EQ(c.user_id, "u-123");
  EXPECT_EQ(c.email, "alice@example.com");
  EXPECT_EQ(c.username, "alice");
  EXPECT_EQ(c.role, "admin");
  EXPECT_EQ(c.sub, "u-123");
  EXPECT_EQ(c.iss, "chatorbit");
  EXPECT_EQ(c.aud, "chatorbit");
  EXPECT_EQ(c.iat, now());
  EXPECT_EQ(c.nbf, now());
  EXPECT_EQ(c.exp, now() + 24 * 3600);
  EXPECT_EQ(c.jti.size(), 32u);
  EXPECT_EQ(c.jti.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST_F(JwtTest, EmitsExactHeaderAndCanonicalSegments) {
  const auto parts = split(codec_.issue(alice_));
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(b64url_decode(parts[0]), kHs256);
  EXPECT_EQ(parts[0], "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9");
  EXPECT_EQ(parts[2].size(), 43u);  // 32 bytes, unpadded.
  for (const auto& p : parts) EXPECT_EQ(p.find_first_of("=+/"), std::string::npos);
  // The signature is the plain HMAC-SHA256 of the first two segments.
  EXPECT_EQ(b64url_decode(parts[2]), hmac(EVP_sha256(), kSecret, parts[0] + "." + parts[1]));
}

// The original's front end reads `isAdmin` from the payload for its admin badge.
TEST_F(JwtTest, ThePayloadSaysIsAdminForAdminsOnly) {
  const auto claim = [this](const Identity& id) {
    const auto payload = boost::json::parse(b64url_decode(split(codec_.issue(id))[1])).as_object();
    return payload.at("isAdmin").as_bool();
  };
  EXPECT_TRUE(claim(alice_));
  EXPECT_FALSE(claim(Identity{"u-9", "bob@example.com", "bob", "moderator"}));
  EXPECT_FALSE(claim(Identity{"u-8", "carol@example.com", "carol", "user"}));
}

TEST_F(JwtTest, JtiIsFreshPerToken) {
  auto a = codec_.verify(codec_.issue(alice_));
  auto b = codec_.verify(codec_.issue(alice_));
  ASSERT_TRUE(a && b);
  EXPECT_NE(a.claims->jti, b.claims->jti);
}

TEST_F(JwtTest, InteroperatesWithRfc7515AppendixA1) {
  // RFC 7515 A.1 / RFC 7519 §3.1: HS256 with a 64-byte JWK key. The example has no aud, so
  // the best possible outcome is wrong_audience, which is only reached after the alg,
  // signature, exp and iss checks have all passed.
  const std::string token =
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
      "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
      "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  const std::array<unsigned char, 64> key = {
      0x03, 0x23, 0x35, 0x4b, 0x2b, 0x0f, 0xa5, 0xbc, 0x83, 0x7e, 0x06, 0x65, 0x77, 0x7b, 0xa6, 0x8f,
      0x5a, 0xb3, 0x28, 0xe6, 0xf0, 0x54, 0xc9, 0x28, 0xa9, 0x0f, 0x84, 0xb2, 0xd2, 0x50, 0x2e, 0xbf,
      0xd3, 0xfb, 0x5a, 0x92, 0xd2, 0x06, 0x47, 0xef, 0x96, 0x8a, 0xb4, 0xc3, 0x77, 0x62, 0x3d, 0x22,
      0x3d, 0x2e, 0x21, 0x72, 0x05, 0x2e, 0x4f, 0x08, 0xc0, 0xcd, 0x9a, 0xf5, 0x67, 0xd0, 0x80, 0xa3};
  JwtConfig cfg = config(std::string(reinterpret_cast<const char*>(key.data()), key.size()));
  cfg.issuer = "joe";
  clock_.set(SystemTime{1'300'819'000s});
  JwtCodec rfc(cfg, clock_, random_);
  EXPECT_EQ(outcome(rfc.verify(token)), "wrong_audience");

  std::string tampered = token;
  tampered.back() = 'Y';
  EXPECT_EQ(outcome(rfc.verify(tampered)), "bad_signature");
}

TEST_F(JwtTest, TamperedPayloadIsRejected) {
  const auto parts = split(codec_.issue(alice_));
  std::string body = b64url_decode(parts[1]);
  const auto pos = body.find("\"admin\"");
  ASSERT_NE(pos, std::string::npos);
  body.replace(pos, 7, "\"owner\"");
  const VerifyResult r = codec_.verify(parts[0] + "." + b64url(body) + "." + parts[2]);
  EXPECT_FALSE(r);
  EXPECT_EQ(outcome(r), "bad_signature");
}

TEST_F(JwtTest, TamperedSignatureIsRejected) {
  const auto parts = split(codec_.issue(alice_));
  std::string sig = parts[2];
  sig[0] = sig[0] == 'A' ? 'B' : 'A';
  EXPECT_EQ(outcome(codec_.verify(parts[0] + "." + parts[1] + "." + sig)), "bad_signature");
  // Too short / too long / empty signatures.
  EXPECT_EQ(outcome(codec_.verify(parts[0] + "." + parts[1] + "." + parts[2].substr(0, 40))), "bad_signature");
  EXPECT_EQ(outcome(codec_.verify(parts[0] + "." + parts[1] + "." + parts[2] + "AAAA")), "bad_signature");
  EXPECT_EQ(outcome(codec_.verify(parts[0] + "." + parts[1] + ".")), "bad_signature");
}

TEST_F(JwtTest, NonCanonicalSignatureSpellingIsRejected) {
  // 43 characters carry 258 bits for a 256-bit MAC; the 2 spare bits must be zero, or one
  // token would have four accepted spellings.
  const auto parts = split(codec_.issue(alice_));
  std::string sig = parts[2];
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const auto idx = alphabet.find(sig.back());
  ASSERT_EQ(idx % 4, 0u);
  sig.back() = alphabet[idx + 1];
  EXPECT_EQ(outcome(codec_.verify(parts[0] + "." + parts[1] + "." + sig)), "malformed");
}

TEST_F(JwtTest, WrongSecretIsRejected) {
  JwtCodec other(config("another-secret-that-is-32-bytes-long!!"), clock_, random_);
  EXPECT_EQ(outcome(codec_.verify(other.issue(alice_))), "bad_signature");
  EXPECT_EQ(outcome(other.verify(codec_.issue(alice_))), "bad_signature");
}

TEST_F(JwtTest, AlgNoneIsRejectedBeforeSignature) {
  const std::string p = b64url(payload());
  EXPECT_EQ(outcome(codec_.verify(b64url(R"({"alg":"none"})") + "." + p + ".")), "wrong_algorithm");
  EXPECT_EQ(outcome(codec_.verify(b64url(R"({"alg":"none","typ":"JWT"})") + "." + p + ".")), "wrong_algorithm");
  // Case variants and near misses are not "HS256" either.
  for (const char* h : {R"({"alg":"None"})", R"({"alg":"hs256"})", R"({"alg":"HS256 "})", R"({"alg":""})",
                        R"({"alg":null})", R"({"alg":256})", R"({"alg":["HS256"]})", R"({"typ":"JWT"})", "{}"}) {
    EXPECT_EQ(outcome(codec_.verify(sign(h, payload()))), "wrong_algorithm") << h;
  }
}

TEST_F(JwtTest, OtherAlgorithmsAreRejected) {
  // Even correctly signed with HMAC-SHA512 under our own secret.
  const std::string input512 = b64url(R"({"alg":"HS512","typ":"JWT"})") + "." + b64url(payload());
  const std::string hs512 = input512 + "." + b64url(hmac(EVP_sha512(), kSecret, input512));
  EXPECT_EQ(outcome(codec_.verify(hs512)), "wrong_algorithm");
  // RS256 with an HS256 signature: the classic key-confusion shape.
  EXPECT_EQ(outcome(codec_.verify(sign(R"({"alg":"RS256","typ":"JWT"})", payload()))), "wrong_algorithm");
  EXPECT_EQ(outcome(codec_.verify(sign(R"({"alg":"ES256"})", payload()))), "wrong_algorithm");
}

TEST_F(JwtTest, KeyLocatingHeadersAreIgnored) {
  const std::string header =
      R"({"alg":"HS256","typ":"JWT","jku":"https://attacker.example/jwks.json","x5u":"https://attacker.example/c.pem",)"
      R"("kid":"../../../../dev/null","jwk":{"kty":"oct","k":"AAAA"}})";
  const VerifyResult r = codec_.verify(sign(header, payload()));
  ASSERT_TRUE(r) << to_string(r.error);
  EXPECT_EQ(r.claims->user_id, "u1");
  // ...and they do not rescue a token signed with the key they point at.
  EXPECT_EQ(outcome(codec_.verify(sign(header, payload(), std::string(32, '\0')))), "bad_signature");
}

TEST_F(JwtTest, CritHeaderIsRejected) {
  EXPECT_EQ(outcome(codec_.verify(sign(R"({"alg":"HS256","crit":["exp"]})", payload()))), "malformed");
}

TEST_F(JwtTest, ExpiryHonoursLeeway) {
  const std::string token = codec_.issue(alice_);
  clock_.advance(24h + 10s);  // Past exp but inside the 30 s leeway.
  EXPECT_TRUE(codec_.verify(token));
  clock_.advance(20s);  // exactly exp + leeway: still accepted.
  EXPECT_TRUE(codec_.verify(token));
  clock_.advance(1s);
  const VerifyResult r = codec_.verify(token);
  EXPECT_FALSE(r);
  EXPECT_EQ(outcome(r), "expired");
}

TEST_F(JwtTest, NotBeforeAndIssuedAtInTheFuture) {
  const auto at = [&](std::int64_t offset) { return std::to_string(now() + offset); };
  EXPECT_EQ(outcome(codec_.verify(sign(kHs256, payload(R"("nbf":)" + at(31))))), "not_yet_valid");
  EXPECT_EQ(outcome(codec_.verify(sign(kHs256, payload(R"("iat":)" + at(3600))))), "not_yet_valid");
  EXPECT_TRUE(codec_.verify(sign(kHs256, payload(R"("nbf":)" + at(30)))));  // Within leeway.
  EXPECT_TRUE(codec_.verify(sign(kHs256, payload(R"("nbf":)" + at(-5) + R"(,"iat":)" + at(-5)))));
  // A token issued by a clock running ahead becomes valid once ours catches up.
  const std::string future = sign(kHs256, payload(R"("nbf":)" + at(120)));
  clock_.advance(100s);
  EXPECT_TRUE(codec_.verify(future));
}

TEST_F(JwtTest, NumericDatesMayBeFractional) {
  const VerifyResult r = codec_.verify(sign(
      kHs256, R"({"user_id":"u1","iss":"chatorbit","aud":"chatorbit","exp":)" + std::to_string(now() + 60) + ".75}"));
  ASSERT_TRUE(r) << to_string(r.error);
  EXPECT_EQ(r.claims->exp, now() + 60);
  EXPECT_EQ(outcome(codec_.verify(sign(kHs256, payload(R"("exp":1.0e3)")))), "expired");
}

TEST_F(JwtTest, WrongIssuer) {
  JwtConfig cfg = config();
  cfg.issuer = "someone-else";
  JwtCodec other(cfg, clock_, random_);
  EXPECT_EQ(outcome(codec_.verify(other.issue(alice_))), "wrong_issuer");
  EXPECT_EQ(outcome(codec_.verify(
                sign(kHs256, R"({"user_id":"u1","aud":"chatorbit","exp":)" + std::to_string(now() + 60) + "}"))),
            "wrong_issuer");
}

TEST_F(JwtTest, TokensShapedLikeTheGoServiceFailOnIssuer) {
  // The Go service signed {user_id, email, exp} only; deliberately not accepted.
  const std::string go =
      sign(kHs256, R"({"user_id":"42","email":"bob@example.com","exp":)" + std::to_string(now() + 60) + "}");
  EXPECT_EQ(outcome(codec_.verify(go)), "wrong_issuer");
}

// --- The original Go service's tokens (JwtConfig::accept_legacy) ---------------------

constexpr std::string_view kGoUserId = "507f1f77bcf86cd799439011";

class LegacyJwtTest : public JwtTest {
 protected:
  JwtConfig legacy_config() {
    JwtConfig c = config();
    c.accept_legacy = true;
    return c;
  }
  // The claim set the original signs, as Go's encoding/json writes a map (keys sorted).
  std::string go_payload(std::string_view user_id = kGoUserId, std::int64_t exp_in = 3600) const {
    return R"({"email":"bob@example.com","exp":)" + std::to_string(now() + exp_in) + R"(,"user_id":")" +
           std::string(user_id) + "\"}";
  }
  std::string go_token(std::string_view user_id = kGoUserId, std::int64_t exp_in = 3600) const {
    return sign(kHs256, go_payload(user_id, exp_in));
  }

  JwtCodec legacy_{legacy_config(), clock_, random_};
};

TEST_F(LegacyJwtTest, RefusedByDefault) {
  EXPECT_FALSE(codec_.config().accept_legacy);
  EXPECT_EQ(outcome(codec_.verify(go_token())), "wrong_issuer");
}

TEST_F(LegacyJwtTest, AcceptedWhenTurnedOn) {
  const std::string token = go_token();
  const VerifyResult r = legacy_.verify(token);
  ASSERT_TRUE(r) << to_string(r.error);
  const Claims& c = *r.claims;
  EXPECT_TRUE(c.legacy);
  EXPECT_EQ(c.user_id, kGoUserId);
  EXPECT_EQ(c.email, "bob@example.com");
  EXPECT_EQ(c.exp, now() + 3600);
  EXPECT_EQ(c.iat, 0) << "no iat: issued before any password-change floor";
  EXPECT_TRUE(c.iss.empty() && c.aud.empty() && c.role.empty() && c.username.empty());
  // A stable stand-in jti, derived from the token, in a shape no issued jti has.
  ASSERT_EQ(c.jti.size(), 7u + 32u);
  EXPECT_EQ(c.jti.rfind("legacy-", 0), 0u);
  EXPECT_EQ(c.jti.find_first_not_of("0123456789abcdef", 7), std::string::npos);
  EXPECT_EQ(legacy_.verify(token).claims->jti, c.jti);
  EXPECT_NE(legacy_.verify(go_token(kGoUserId, 3601)).claims->jti, c.jti);
  // The jti is a digest, not the signature (which with the guessable rest is the token).
  EXPECT_EQ(c.jti.find(split(token)[2].substr(0, 8)), std::string::npos);
}

TEST_F(LegacyJwtTest, ExpiryHonoursTheSameLeeway) {
  const std::string token = go_token(kGoUserId, 60);
  clock_.advance(60s + 30s);
  EXPECT_TRUE(legacy_.verify(token));
  clock_.advance(1s);
  EXPECT_EQ(outcome(legacy_.verify(token)), "expired");
  EXPECT_EQ(outcome(legacy_.verify(go_token(kGoUserId, -3600))), "expired");
}

TEST_F(LegacyJwtTest, StillRefusedWhenTurnedOn) {
  const std::string p = go_payload();
  // The algorithm stays pinned, before any key is used.
  EXPECT_EQ(outcome(legacy_.verify(b64url(R"({"alg":"none","typ":"JWT"})") + "." + b64url(p) + ".")),
            "wrong_algorithm");
  EXPECT_EQ(outcome(legacy_.verify(sign(R"({"alg":"RS256","typ":"JWT"})", p))), "wrong_algorithm");
  const std::string input512 = b64url(R"({"alg":"HS512","typ":"JWT"})") + "." + b64url(p);
  EXPECT_EQ(outcome(legacy_.verify(input512 + "." + b64url(hmac(EVP_sha512(), kSecret, input512)))), "wrong_algorithm");
  // The signature must be ours.
  EXPECT_EQ(outcome(legacy_.verify(sign(kHs256, p, "another-secret-that-is-32-bytes-long!!"))), "bad_signature");
  const auto parts = split(go_token());
  const std::string other = go_payload("507f1f77bcf86cd799439012");
  EXPECT_EQ(outcome(legacy_.verify(parts[0] + "." + b64url(other) + "." + parts[2])), "bad_signature");
  // exp is mandatory.
  EXPECT_EQ(
      outcome(legacy_.verify(sign(kHs256, R"({"email":"bob@example.com","user_id":"507f1f77bcf86cd799439011"})"))),
      "missing_claim");
  // user_id must be an id as the original wrote them: 24 lower-case hex digits.
  for (const char* bad : {"", "42", "507f1f77bcf86cd79943901", "507f1f77bcf86cd7994390111", "507f1f77bcf86cd79943901g",
                          "507F1F77BCF86CD799439011", "../../../../etc/passwd00"}) {
    EXPECT_EQ(outcome(legacy_.verify(go_token(bad))), "missing_claim") << bad;
  }
  EXPECT_EQ(
      outcome(legacy_.verify(sign(kHs256, R"({"email":"bob@example.com","exp":)" + std::to_string(now() + 60) + "}"))),
      "missing_claim");
  EXPECT_EQ(outcome(legacy_.verify(sign(kHs256, R"({"exp":)" + std::to_string(now() + 60) + R"(,"user_id":7})"))),
            "malformed");
  // Times from the future are refused as for any token.
  EXPECT_EQ(outcome(legacy_.verify(sign(kHs256, R"({"exp":)" + std::to_string(now() + 60) + R"(,"nbf":)" +
                                                    std::to_string(now() + 600) + R"(,"user_id":")" +
                                                    std::string(kGoUserId) + "\"}"))),
            "not_yet_valid");
}

TEST_F(LegacyJwtTest, TokensWithAnyOfOurClaimsAreCheckedAsOurs) {
  const std::string exp = std::to_string(now() + 60);
  const std::string uid = R"("user_id":")" + std::string(kGoUserId) + "\"";
  // iss, aud or jti alone makes a token ours, and then it must have all of ours.
  EXPECT_EQ(outcome(legacy_.verify(sign(kHs256, "{" + uid + R"(,"exp":)" + exp + R"(,"iss":"chatorbit"})"))),
            "wrong_audience");
  EXPECT_EQ(outcome(legacy_.verify(sign(kHs256, "{" + uid + R"(,"exp":)" + exp + R"(,"iss":"someone-else"})"))),
            "wrong_issuer");
  EXPECT_EQ(outcome(legacy_.verify(sign(kHs256, "{" + uid + R"(,"exp":)" + exp + R"(,"aud":"chatorbit"})"))),
            "wrong_issuer");
  EXPECT_EQ(outcome(legacy_.verify(sign(kHs256, "{" + uid + R"(,"exp":)" + exp + R"(,"jti":"legacy-0"})"))),
            "wrong_issuer");
  // Our own tokens: verified exactly as without the setting.
  const VerifyResult r = legacy_.verify(legacy_.issue(alice_));
  ASSERT_TRUE(r) << to_string(r.error);
  EXPECT_FALSE(r.claims->legacy);
  EXPECT_EQ(r.claims->jti.size(), 32u);
  EXPECT_EQ(r.claims->iss, "chatorbit");
  EXPECT_EQ(r.claims->user_id, "u-123") << "our user_id is not held to the legacy shape";
  EXPECT_EQ(outcome(legacy_.verify(sign(kHs256, payload(R"("user_id":"")")))), "missing_claim");
  JwtConfig foreign = legacy_config();
  foreign.issuer = "someone-else";
  EXPECT_EQ(outcome(legacy_.verify(JwtCodec(foreign, clock_, random_).issue(alice_))), "wrong_issuer");
  EXPECT_FALSE(codec_.verify(codec_.issue(alice_)).claims->legacy);
}

TEST_F(LegacyJwtTest, LifetimeToCoverIsTheLongerOfOursAndTheOriginals) {
  EXPECT_EQ(codec_.max_token_lifetime(), 24h);
  JwtConfig c = config();
  c.ttl = 1h;
  EXPECT_EQ(JwtCodec(c, clock_, random_).max_token_lifetime(), 1h);
  c.accept_legacy = true;
  EXPECT_EQ(JwtCodec(c, clock_, random_).max_token_lifetime(), 24h);
  c.ttl = 48h;
  EXPECT_EQ(JwtCodec(c, clock_, random_).max_token_lifetime(), 48h);
}

TEST_F(JwtTest, WrongAudience) {
  JwtConfig cfg = config();
  cfg.audience = "admin-console";
  JwtCodec other(cfg, clock_, random_);
  EXPECT_EQ(outcome(codec_.verify(other.issue(alice_))), "wrong_audience");
  EXPECT_EQ(outcome(codec_.verify(sign(kHs256, payload(R"("aud":"chatorbitx")")))), "wrong_audience");
  EXPECT_EQ(outcome(codec_.verify(sign(kHs256, payload(R"("aud":[])")))), "wrong_audience");
  EXPECT_EQ(outcome(codec_.verify(sign(kHs256, payload(R"("aud":["a","b"])")))), "wrong_audience");
  EXPECT_EQ(outcome(codec_.verify(
                sign(kHs256, R"({"user_id":"u1","iss":"chatorbit","exp":)" + std::to_string(now() + 60) + "}"))),
            "wrong_audience");
}

TEST_F(JwtTest, AudienceArrayContainingOursIsAccepted) {
  const VerifyResult r = codec_.verify(sign(kHs256, payload(R"("aud":["billing","chatorbit","search"])")));
  ASSERT_TRUE(r) << to_string(r.error);
  EXPECT_EQ(r.claims->aud, "chatorbit");
  EXPECT_EQ(outcome(codec_.verify(sign(kHs256, payload(R"("aud":["chatorbit",7])")))), "malformed");
  EXPECT_EQ(outcome(codec_.verify(sign(kHs256, payload(R"("aud":{"x":"chatorbit"})")))), "malformed");
}

TEST_F(JwtTest, MissingClaims) {
  const std::string exp = std::to_string(now() + 60);
  EXPECT_EQ(outcome(codec_.verify(sign(kHs256, R"({"iss":"chatorbit","aud":"chatorbit","exp":)" + exp + "}"))),
            "missing_claim");
  EXPECT_EQ(outcome(codec_.verify(sign(kHs256, payload(R"("user_id":"")")))), "missing_claim");
  EXPECT_EQ(outcome(codec_.verify(sign(kHs256, R"({"user_id":"u1","iss":"chatorbit","aud":"chatorbit"})"))),
            "missing_claim");
}

TEST_F(JwtTest, WronglyTypedClaimsAreMalformed) {
  for (const std::string extra :
       {R"("user_id":7)", R"("user_id":null)", R"("email":false)", R"("role":["admin"])", R"("jti":1)", R"("sub":{})",
        R"("iss":1)", R"("aud":7)", R"("exp":"9999999999")", R"("exp":true)", R"("exp":-1)", R"("exp":1e400)",
        R"("exp":1e300)", R"("exp":18446744073709551615)", R"("nbf":"0")", R"("iat":null)"}) {
    const VerifyResult r = codec_.verify(sign(kHs256, payload(extra)));
    EXPECT_FALSE(r) << extra;
    EXPECT_EQ(outcome(r), "malformed") << extra;
  }
}

TEST_F(JwtTest, UnknownClaimsAreIgnored) {
  EXPECT_TRUE(codec_.verify(sign(kHs256, payload(R"("scope":["a"],"x":{"y":null})"))));
}

TEST_F(JwtTest, SizeLimitIsExact) {
  // The largest padding claim that still fits must land exactly on the limit: with a 36-char
  // header and 43-char signature the payload segment is 8111 chars, a reachable base64 length.
  auto token_with = [&](std::size_t pad) { return sign(kHs256, payload(R"("pad":")" + std::string(pad, 'x') + "\"")); };
  std::size_t pad = 5500;
  while (token_with(pad + 1).size() <= JwtCodec::kMaxTokenBytes) ++pad;
  const std::string at_limit = token_with(pad);
  ASSERT_EQ(at_limit.size(), JwtCodec::kMaxTokenBytes);
  EXPECT_TRUE(codec_.verify(at_limit));
  EXPECT_EQ(outcome(codec_.verify(token_with(pad + 1))), "malformed");
}

TEST_F(JwtTest, GarbageNeverThrowsAndNeverVerifies) {
  const std::string good = codec_.issue(alice_);
  const auto parts = split(good);
  const std::string h = parts[0], p = parts[1], s = parts[2];
  std::vector<std::string> inputs = {
      "",
      ".",
      "..",
      "...",
      "a.b",
      h + "." + p,
      good + "." + s,
      good + ".",
      "." + good,
      h + ".." + s,
      "eyJ!@#.e30.AAAA",
      h + "=." + p + "." + s,  // Padded.
      h + "." + p + "." + s + "=",
      h + "." + p + "==." + s,
      h + ".e30=." + s,
      b64url(R"({"alg":"HS256"})") + "=" + "." + p + "." + s,
      "eyJhbGciOiJIUzI1NiJ9+." + p + "." + s,  // Standard, not url-safe, alphabet.
      "eyJhbGciOiJIUzI1NiJ9/." + p + "." + s,
      " " + good,
      good + "\n",
      h + "." + p + " ." + s,
      "A." + p + "." + s,  // Impossible length (1 mod 4).
      b64url("not json") + "." + p + "." + s,
      b64url(R"(["alg","HS256"])") + "." + p + "." + s,
      b64url("\"HS256\"") + "." + p + "." + s,
      b64url(std::string(R"({"alg":"HS256"})") + "trailing") + "." + p + "." + s,
      b64url(std::string("{\"alg\":\"HS256\0\"}", 16)) + "." + p + "." + s,
      b64url("{\"alg\":\"HS\xff\xfe\"}") + "." + p + "." + s,  // Invalid UTF-8.
      b64url(std::string(2000, '[') + std::string(2000, ']')) + "." + p + "." + s,
      std::string(JwtCodec::kMaxTokenBytes + 1, 'A'),
      std::string(1 << 20, '.'),
      std::string("\0\0\0", 3),
      std::string("\xff\xfe.\x80.\x01", 7),
  };
  // Correctly signed, but the payload is not a JSON object.
  for (const char* body : {"[]", R"([{"user_id":"u1"}])", "\"u1\"", "42", "null", "", "{", R"({"user_id":"u1",})",
                           "{\"user_id\":\"\xc3\x28\"}", "{} {}"}) {
    inputs.push_back(sign(kHs256, body));
  }
  for (const std::string& in : inputs) {
    VerifyResult r;
    EXPECT_NO_THROW(r = codec_.verify(in)) << in.substr(0, 80);
    EXPECT_FALSE(r) << in.substr(0, 80);
    EXPECT_NE(r.error, JwtError::expired) << in.substr(0, 80);
  }
  EXPECT_EQ(outcome(codec_.verify(sign(kHs256, "[]"))), "malformed");
  EXPECT_EQ(outcome(codec_.verify(b64url("not json") + "." + p + "." + s)), "malformed");
  EXPECT_EQ(outcome(codec_.verify(h + "=." + p + "." + s)), "malformed");
  EXPECT_EQ(outcome(codec_.verify(good + "." + s)), "malformed");
}

TEST_F(JwtTest, RandomMutationsNeverThrowOrVerify) {
  const std::string good = codec_.issue(alice_);
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string t = good;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t pos = rng() % t.size();
      switch (rng() % 3) {
        case 0: t[pos] = static_cast<char>(rng()); break;
        case 1: t.erase(pos, 1 + rng() % 8); break;
        default: t.insert(pos, 1, "A.=_-/+\0"[rng() % 8]); break;
      }
      if (t.empty()) t = ".";
    }
    if (t == good) continue;
    VerifyResult r;
    ASSERT_NO_THROW(r = codec_.verify(t));
    EXPECT_FALSE(r) << t;
  }
}

TEST_F(JwtTest, ConstructorRejectsWeakConfig) {
  EXPECT_THROW((JwtCodec{config(""), clock_, random_}), std::invalid_argument);
  // Short keys are the caller's call to warn about (RFC 7518 §3.2 wants 32 bytes); they still work.
  JwtCodec short_key{config("short"), clock_, random_};
  EXPECT_TRUE(short_key.verify(short_key.issue(alice_)));
  JwtConfig cfg = config();
  cfg.ttl = 0s;
  EXPECT_THROW((JwtCodec{cfg, clock_, random_}), std::invalid_argument);
  cfg = config();
  cfg.leeway = -1s;
  EXPECT_THROW((JwtCodec{cfg, clock_, random_}), std::invalid_argument);
  cfg = config();
  cfg.leeway = 2h;
  EXPECT_THROW((JwtCodec{cfg, clock_, random_}), std::invalid_argument);
  cfg = config();
  cfg.ttl = std::chrono::hours{24 * 365 * 101};
  EXPECT_THROW((JwtCodec{cfg, clock_, random_}), std::invalid_argument);
  cfg.ttl = std::chrono::hours{24 * 365 * 100};  // The longest allowed still round-trips.
  JwtCodec long_lived{cfg, clock_, random_};
  EXPECT_TRUE(long_lived.verify(long_lived.issue(alice_)));
}

TEST_F(JwtTest, ConfigAndErrorNames) {
  EXPECT_EQ(codec_.config().issuer, "chatorbit");
  EXPECT_EQ(codec_.config().secret, kSecret);
  EXPECT_EQ(to_string(JwtError::malformed), "malformed");
  EXPECT_EQ(to_string(JwtError::wrong_algorithm), "wrong_algorithm");
  EXPECT_EQ(to_string(JwtError::bad_signature), "bad_signature");
  EXPECT_EQ(to_string(JwtError::expired), "expired");
  EXPECT_EQ(to_string(JwtError::not_yet_valid), "not_yet_valid");
  EXPECT_EQ(to_string(JwtError::wrong_issuer), "wrong_issuer");
  EXPECT_EQ(to_string(JwtError::wrong_audience), "wrong_audience");
  EXPECT_EQ(to_string(JwtError::missing_claim), "missing_claim");
}

}  // namespace
}  // namespace chatorbit::auth
