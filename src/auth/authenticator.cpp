#include "auth/authenticator.hpp"

namespace chatorbit::auth {

std::optional<std::string> Authenticator::token_of(const http::Context& ctx) {
  if (auto b = ctx.bearer()) return b;
  if (auto c = ctx.cookie("token"); c && !c->empty()) return c;
  return std::nullopt;
}

std::optional<Claims> Authenticator::verify(std::string_view token) const {
  auto result = jwt_.verify(token);
  if (!result) return std::nullopt;
  if (revocations_.is_revoked(*result.claims)) return std::nullopt;
  return std::move(result.claims);
}

std::optional<Claims> Authenticator::identify(const http::Context& ctx) const {
  const auto token = token_of(ctx);
  if (!token) return std::nullopt;
  return verify(*token);
}

Claims Authenticator::require(const http::Context& ctx) const {
  auto claims = identify(ctx);
  if (!claims) throw http::HttpError(http::Status::unauthorized, "Unauthorized");
  return std::move(*claims);
}

}  // namespace chatorbit::auth
