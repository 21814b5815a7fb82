#pragma once
// Who is calling: the token from "Authorization: Bearer" or the `token` cookie,
// verified (HS256 pinned, exp/nbf/iss/aud) and checked against revocations.
// Thread-safe (immutable state plus the thread-safe RevocationList).

#include <optional>
#include <string>

#include "auth/jwt.hpp"
#include "auth/revocations.hpp"
#include "net/router.hpp"

namespace chatorbit::auth {

class Authenticator {
 public:
  Authenticator(const JwtCodec& jwt, const RevocationList& revocations) : jwt_(jwt), revocations_(revocations) {}

  /// The raw token a request presents, if any (Bearer header first, then the cookie).
  static std::optional<std::string> token_of(const http::Context& ctx);
  /// Verifies a raw token: claims if valid and not revoked.
  std::optional<Claims> verify(std::string_view token) const;
  /// The caller's claims, or nullopt if no valid token was presented.
  std::optional<Claims> identify(const http::Context& ctx) const;
  /// The caller's claims; throws HttpError 401 {"error":"Unauthorized"} otherwise.
  Claims require(const http::Context& ctx) const;

 private:
  const JwtCodec& jwt_;
  const RevocationList& revocations_;
};

}  // namespace chatorbit::auth
