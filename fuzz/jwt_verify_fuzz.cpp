// Fuzz target: auth::JwtCodec::verify on hostile tokens, with a fixed secret, clock and
// randomness (fuzz/jwt_common.hpp).
//
// Input: byte 0 is the mode.
//  - even: bytes 1.. are the token, verbatim. Reaches the shape, base64url, header and
//    alg checks; mutations of the seed tokens also hit the signature check.
//  - odd: bytes 1.. are "<header JSON>\n<payload JSON>"; the target signs them correctly
//    itself, so that arbitrary JSON gets past the signature and exercises the claim
//    parsing (types, NumericDate ranges, aud arrays, times) that only an authenticated
//    payload reaches.
//
// Oracles, beyond the sanitizers: verify() never throws; an accepted token satisfies
// every rule the header promises (non-empty user_id, our issuer and audience, not
// expired, not from the future, alg HS256) and has user_id equal to the payload's.

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
  static const auth::JwtCodec codec(fuzz::jwt_config(), clock, random);

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
  check(c.iss == cfg.issuer, "accepted with a foreign issuer");
  check(c.aud == cfg.audience, "accepted with a foreign audience");
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
  }
  return 0;
}
