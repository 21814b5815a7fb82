// Fuzz target: auth::JwtCodec::verify on hostile tokens, with a fixed secret, clock and
// randomness (fuzz/jwt_common.hpp).
//
// Input: byte 0 is the mode.
//  - bit 0 clear: bytes 1.. are the token, verbatim. Reaches the shape, base64url, header
//    and alg checks; mutations of the seed tokens also hit the signature check.
//  - bit 0 set: bytes 1.. are "<header JSON>\n<payload JSON>"; the target signs them
//    correctly itself, so that arbitrary JSON gets past the signature and exercises the
//    claim parsing (types, NumericDate ranges, aud arrays, times) that only an
//    authenticated payload reaches.
//  - bit 1 set: the codec also accepts the original service's tokens (accept_legacy).
//
// Oracles, beyond the sanitizers: verify() never throws; an accepted token satisfies
// every rule the header promises (non-empty user_id, our issuer and audience, not
// expired, not from the future, alg HS256) and has user_id equal to the payload's; a
// token accepted as legacy came from the legacy codec, carried none of iss, aud and jti,
// and has a 24-hex user_id and a derived "legacy-" jti.

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "jwt_common.hpp"

namespace {

void check(bool ok, const char* what) { chatorbit::fuzz::check(ok, "jwt_verify_fuzz", what); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace chatorbit;
  if (size < 1) return 0;
  static const ManualClock clock{SystemTime{std::chrono::seconds{fuzz::kJwtNow}}};
  static SeededRandom random{42};
  static const auth::JwtCodec strict(fuzz::jwt_config(), clock, random);
  static const auth::JwtCodec legacy(
      [] {
        auto cfg = fuzz::jwt_config();
        cfg.accept_legacy = true;
        return cfg;
      }(),
      clock, random);
  const auth::JwtCodec& codec = (data[0] & 2) != 0 ? legacy : strict;

  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string token;
  std::string_view payload_json;
  if ((data[0] & 1) == 0) {
    token.assign(rest);
  } else {
    const std::size_t nl = rest.find('\n');
    const std::string_view header_json = rest.substr(0, nl);
    payload_json = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    token = fuzz::sign_hs256(header_json, payload_json);
  }

  auth::VerifyResult r;
  try {
    r = codec.verify(token);
  } catch (...) {
    fuzz::fail("jwt_verify_fuzz", "verify() threw");
  }
  if (!r) {
    check(!auth::to_string(r.error).empty(), "error without a name");
    return 0;
  }
  const auth::Claims& c = *r.claims;
  const auth::JwtConfig& cfg = codec.config();
  check(!c.user_id.empty(), "accepted without user_id");
  if (c.legacy) {
    check(cfg.accept_legacy, "accepted a legacy token without the setting");
    check(c.iss.empty() && c.aud.empty(), "a legacy token with an issuer or audience");
    check(c.user_id.size() == 24 && c.user_id.find_first_not_of("0123456789abcdef") == std::string::npos,
          "a legacy token whose user_id is not 24 lower-case hex digits");
    check(c.jti.size() == 39 && c.jti.rfind("legacy-", 0) == 0, "a legacy token without its derived jti");
  } else {
    check(c.iss == cfg.issuer, "accepted with a foreign issuer");
    check(c.aud == cfg.audience, "accepted with a foreign audience");
  }
  check(c.exp + cfg.leeway.count() >= fuzz::kJwtNow, "accepted an expired token");
  check(c.nbf <= fuzz::kJwtNow + cfg.leeway.count(), "accepted a token not yet valid");
  check(c.iat <= fuzz::kJwtNow + cfg.leeway.count(), "accepted a token issued in the future");
  if (!payload_json.empty()) {
    // Signed by us around this payload: what was accepted must be what it says.
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(payload_json, ec);
    check(!ec && v.is_object(), "accepted a payload that is not a JSON object");
    const boost::json::value* uid = v.as_object().if_contains("user_id");
    check(uid != nullptr && uid->is_string() && uid->as_string() == c.user_id, "user_id differs from the payload");
    if (c.legacy) {
      const auto& o = v.as_object();
      check(!o.contains("iss") && !o.contains("aud") && !o.contains("jti"), "one of our claims taken for legacy");
    }
  }
  return 0;
}
