// Fuzz target: a token issued by auth::JwtCodec::issue, verified, then mutated.
//
// Input: "<user_id>\0<email>\0<username>\0<role>\0<mutation bytes>". Missing parts are
// empty. Each pair of mutation bytes is one edit of the issued token: the first byte
// picks where (modulo its length) and what (flip, insert, delete, truncate), the second
// is the byte to write.
//
// Oracles, beyond the sanitizers:
//  - an issued token verifies, and its claims are exactly the identity it was issued
//    for (user_id non-empty and all fields valid UTF-8; see below), our iss and aud,
//    iat = nbf = now, exp = now + ttl;
//  - it is refused as expired just after exp + leeway, and accepted just before;
//  - a token that differs from the issued one in any byte is refused: base64url is
//    decoded strictly, so no other spelling of the same bytes exists, and anything else
//    would be a forgery. verify() never throws.
//
// Identity fields reach issue() from JSON request bodies, so they are valid UTF-8 in the
// product. Fields that are not are still issued and verified (neither may crash), but
// the token is not required to verify: JSON cannot carry invalid UTF-8 faithfully.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "jwt_common.hpp"
#include "net/utf8.hpp"

namespace {

void check(bool ok, const char* what) { chatorbit::fuzz::check(ok, "jwt_roundtrip_fuzz", what); }

std::string_view take_field(std::string_view& in) {
  const std::size_t nul = in.find('\0');
  const std::string_view field = in.substr(0, nul);
  in = nul == std::string_view::npos ? std::string_view{} : in.substr(nul + 1);
  return field;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace chatorbit;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auth::Identity id;
  id.user_id = take_field(in);
  id.email = take_field(in);
  id.username = take_field(in);
  id.role = take_field(in);
  const std::string_view mutations = in;

  ManualClock clock{SystemTime{std::chrono::seconds{fuzz::kJwtNow}}};
  SeededRandom random{size};
  const auth::JwtCodec codec(fuzz::jwt_config(), clock, random);
  const std::string token = codec.issue(id);

  bool utf8 = true;
  for (const std::string* f : {&id.user_id, &id.email, &id.username, &id.role}) utf8 = utf8 && ws::is_valid_utf8(*f);
  const bool must_verify = utf8 && !id.user_id.empty() && token.size() <= auth::JwtCodec::kMaxTokenBytes;

  const auth::VerifyResult r = codec.verify(token);
  if (must_verify) {
    check(static_cast<bool>(r), "an issued token does not verify");
    const auth::Claims& c = *r.claims;
    check(c.user_id == id.user_id && c.sub == id.user_id, "user_id/sub changed");
    check(c.email == id.email && c.username == id.username && c.role == id.role, "identity changed");
    check(c.iss == codec.config().issuer && c.aud == codec.config().audience, "iss/aud changed");
    check(c.iat == fuzz::kJwtNow && c.nbf == fuzz::kJwtNow, "iat/nbf is not now");
    check(c.exp == fuzz::kJwtNow + codec.config().ttl.count(), "exp is not now + ttl");
    check(c.jti.size() == 32, "jti is not 16 hex-encoded bytes");

    // Expiry, on either side of exp + leeway.
    const auto expiry = std::chrono::seconds{c.exp + codec.config().leeway.count()};
    clock.set(SystemTime{expiry});
    check(static_cast<bool>(codec.verify(token)), "refused at exp + leeway");
    clock.set(SystemTime{expiry + std::chrono::seconds{1}});
    const auth::VerifyResult late = codec.verify(token);
    check(!late && late.error == auth::JwtError::expired, "accepted after exp + leeway");
    clock.set(SystemTime{std::chrono::seconds{fuzz::kJwtNow}});
  }

  std::string mutated = token;
  for (std::size_t i = 0; i + 1 < mutations.size(); i += 2) {
    const auto how = static_cast<unsigned char>(mutations[i]);
    const char byte = mutations[i + 1];
    const std::size_t at = mutated.empty() ? 0 : (how >> 2) * 2654435761u % mutated.size();
    switch (how & 3) {
      case 0:
        if (!mutated.empty()) mutated[at] = static_cast<char>(mutated[at] ^ (byte == 0 ? 1 : byte));
        break;
      case 1: mutated.insert(at, 1, byte); break;
      case 2:
        if (!mutated.empty()) mutated.erase(at, 1);
        break;
      case 3: mutated.resize(at); break;
    }
  }
  if (mutated != token) {
    auth::VerifyResult m;
    try {
      m = codec.verify(mutated);
    } catch (...) {
      fuzz::fail("jwt_roundtrip_fuzz", "verify() threw on a mutated token");
    }
    check(!m, "a mutated token verified");
  }
  return 0;
}
