#include "auth/auth_service.hpp"

#include <algorithm>

#include "auth/credentials.hpp"
#include "auth/shared_revocations.hpp"
#include "core/log.hpp"
#include "net/json_body.hpp"

namespace chatorbit::auth {

using http::HttpError;
using http::Status;
namespace asio = boost::asio;

namespace {

constexpr std::string_view kInvalidInput = "Invalid input";

std::string session_cookie(const std::string& token, std::chrono::seconds ttl) {
  return "token=" + token + "; Path=/; Max-Age=" + std::to_string(ttl.count()) + "; HttpOnly; SameSite=Lax";
}

const std::string& dummy_hash() {
  // Verified against when the account does not exist, so that "no such user" and
  // "wrong password" take the same time and cannot be told apart.
  static const std::string h = hash_password("chatorbit-timing-equaliser");
  return h;
}

}  // namespace

void AuthService::register_routes(http::Router& router) {
  using bhttp = http::bhttp::verb;
  router.add(bhttp::post, "/register", [this](http::Context& c) { return register_user(c); });
  router.add(bhttp::post, "/login", [this](http::Context& c) { return login(c); });
  router.add(bhttp::post, "/change-password", [this](http::Context& c) { return change_password(c); });
  router.add(bhttp::post, "/logout", [this](http::Context& c) { return logout(c); });
}

std::string AuthService::effective_role(const std::string& email_lower, const std::string& stored) const {
  if (std::find(d_.admins.begin(), d_.admins.end(), email_lower) != d_.admins.end()) return "admin";
  return stored.empty() ? "user" : stored;
}

asio::awaitable<void> AuthService::enforce(LoginThrottle& throttle, std::string key) const {
  if (const auto wait = co_await throttle.check(std::move(key))) {
    HttpError e(Status::too_many_requests, "too many failed login attempts; try again later",
                {{"retry_after_s", wait->count()}});
    e.headers.emplace_back("Retry-After", std::to_string(wait->count()));
    throw e;
  }
}

std::string AuthService::pair_key(const std::string& account, const std::string& address) {
  return account + '\n' + address;  // neither can hold a newline
}

// Plain functions returning the awaitable, not coroutines (see StoreWorker::run).
asio::awaitable<bool> AuthService::verify(std::string password, std::string hash) {
  return offload(d_.cpu.get_executor(),
                 [p = std::move(password), h = std::move(hash)] { return verify_password(p, h); });
}

asio::awaitable<std::string> AuthService::hash(std::string password) {
  return offload(d_.cpu.get_executor(),
                 [p = std::move(password), params = d_.argon2] { return hash_password(p, params); });
}

asio::awaitable<void> AuthService::share(AccountEvents::Revocation revocation) {
  const auto user_id = revocation.user_id;
  try {
    co_await share_revocation(d_.engine, std::move(revocation), d_.clock);
  } catch (const engine::EngineUnavailable& e) {
    log::warn("revocation_not_shared", {{"user_id", user_id}, {"what", e.what()}});
  }
}

asio::awaitable<http::Response> AuthService::register_user(http::Context& ctx) {
  const http::JsonBody body(ctx.req, std::string(kInvalidInput));
  const auto email = body.string("email");
  const auto username = body.string("username");
  const auto password = body.string("password");
  for (const auto& problem : {check_email(email), check_username(username), check_password(password)}) {
    if (!problem.empty()) body.fail(problem);
  }
  const auto email_lower = lower_ascii(email);
  auto exists = [e = email_lower](store::Store& s) { return s.find_user_by_email(e).has_value(); };
  if (co_await d_.store.run(std::move(exists))) {
    throw HttpError(Status::bad_request, "Email already registered.");
  }
  store::User user;
  user.id = d_.ids.next();
  user.username = username;
  user.email = email;
  user.password_hash = co_await hash(password);
  user.role = effective_role(email_lower, "user");
  user.created_at_ms = user.update_time_ms = d_.clock.unix_millis();
  // The check above is only a fast path; the unique index decides races.
  auto create = [u = user](store::Store& s) { return s.create_user(u); };
  if (!co_await d_.store.run(std::move(create))) {
    throw HttpError(Status::bad_request, "Email already registered.");
  }
  log::info("user_registered", {{"request_id", ctx.request_id}, {"user_id", user.id}});
  co_return http::json_response(Status::ok, {{"message", "Registration successful"}});
}

asio::awaitable<http::Response> AuthService::login(http::Context& ctx) {
  const http::JsonBody body(ctx.req, std::string(kInvalidInput));
  const auto email = body.string("email");
  const auto password = body.string("password");
  if (email.empty() || password.empty() || password.size() > kMaxPassword) body.fail("email and password are required");
  const auto account_key = lower_ascii(email);
  const auto address_key = ctx.client_ip;
  const auto pair = pair_key(account_key, address_key);
  co_await enforce(d_.pair_throttle, pair);
  co_await enforce(d_.address_throttle, address_key);
  co_await enforce(d_.account_throttle, account_key);

  auto find = [e = account_key](store::Store& s) { return s.find_user_by_email(e); };
  auto user = co_await d_.store.run(std::move(find));
  const bool ok = co_await verify(password, user ? user->password_hash : dummy_hash());
  if (!user || !ok) {
    co_await d_.pair_throttle.fail(pair);
    co_await d_.account_throttle.fail(account_key);
    co_await d_.address_throttle.fail(address_key);
    log::info("login_failed", {{"request_id", ctx.request_id}, {"client", ctx.client_ip}});
    throw HttpError(Status::unauthorized, "Invalid email or password");
  }
  co_await d_.pair_throttle.clear(pair);
  co_await d_.account_throttle.clear(account_key);

  const auto now_ms = d_.clock.unix_millis();
  std::string new_hash;
  if (needs_rehash(user->password_hash, d_.argon2)) new_hash = co_await hash(password);
  const auto role = effective_role(account_key, user->role);
  auto record = [id = user->id, new_hash, role, stored_role = user->role, now_ms, ip = ctx.client_ip](store::Store& s) {
    if (!new_hash.empty()) s.update_password_hash(id, new_hash, now_ms);
    if (role != stored_role) s.set_role(id, role, now_ms);
    return s.record_login(id, now_ms, ip);
  };
  co_await d_.store.run(std::move(record));
  if (!new_hash.empty()) log::info("password_rehashed", {{"user_id", user->id}});

  // Not before the account's token floor (a password change in this very second).
  const auto token = d_.jwt.issue({user->id, user->email, user->username, role}, d_.revocations.floor_of(user->id));
  auto res = http::json_response(Status::ok, {{"token", token}});
  res.set(http::bhttp::field::set_cookie, session_cookie(token, d_.jwt.config().ttl));
  log::info("login", {{"request_id", ctx.request_id}, {"user_id", user->id}});
  co_return res;
}

asio::awaitable<http::Response> AuthService::change_password(http::Context& ctx) {
  const auto claims = d_.authenticator.require(ctx);
  const http::JsonBody body(ctx.req, std::string(kInvalidInput));
  const auto old_password = body.string("old_password");
  const auto new_password = body.string("new_password");
  if (const auto problem = check_password(new_password); !problem.empty()) body.fail("new_" + problem);
  const auto account_key = lower_ascii(claims.email);
  const auto pair = pair_key(account_key, ctx.client_ip);
  co_await enforce(d_.pair_throttle, pair);
  co_await enforce(d_.account_throttle, account_key);

  auto find = [id = claims.user_id](store::Store& s) { return s.find_user_by_id(id); };
  auto user = co_await d_.store.run(std::move(find));
  if (!user) throw HttpError(Status::unauthorized, "Unauthorized");
  if (old_password.size() > kMaxPassword || !co_await verify(old_password, user->password_hash)) {
    // A stolen session must not be a free password-guessing oracle.
    co_await d_.pair_throttle.fail(pair);
    co_await d_.account_throttle.fail(account_key);
    throw HttpError(Status::bad_request, "Old password is incorrect");
  }
  auto new_hash = co_await hash(new_password);
  // Every token issued until now dies with the old password: a floor on the issue time,
  // one second ahead so that a token issued earlier in this second is covered too (iat
  // has whole seconds). It is kept until the last of those tokens would have expired:
  // the original's, if they are accepted, may live longer than ours (and carry no iat,
  // so the floor covers them too).
  const auto now_s = d_.clock.unix_seconds();
  const auto& jwt = d_.jwt.config();
  const store::TokenFloor floor{user->id, now_s + 1,
                                now_s + 1 + d_.jwt.max_token_lifetime().count() + jwt.leeway.count()};
  d_.revocations.add_floor(floor.user_id, floor.not_before_s, floor.expires_at_s);
  auto update = [id = user->id, h = std::move(new_hash), now = d_.clock.unix_millis(), floor](store::Store& s) {
    s.put_token_floor(floor);
    return s.update_password_hash(id, h, now);
  };
  co_await d_.store.run(std::move(update));
  const AccountEvents::Revocation revocation{user->id, "", floor.expires_at_s, floor.not_before_s};
  co_await share(revocation);
  d_.events.tokens_revoked(revocation);
  log::info("password_changed", {{"request_id", ctx.request_id}, {"user_id", user->id}});
  // This browser stays signed in: a fresh token in the cookie (the body is the original's).
  const auto token = d_.jwt.issue({user->id, user->email, user->username, effective_role(account_key, user->role)},
                                  floor.not_before_s);
  auto res = http::json_response(Status::ok, {{"message", "Password changed successfully"}});
  res.set(http::bhttp::field::set_cookie, session_cookie(token, jwt.ttl));
  co_return res;
}

asio::awaitable<http::Response> AuthService::logout(http::Context& ctx) {
  // The token dies with the session: revoked by its jti until it would have expired,
  // the verifier's leeway included (as a password change's floor is). A legacy token
  // (the original's) has a jti derived from the token, so it is revoked the same way.
  if (const auto token = Authenticator::token_of(ctx)) {
    if (auto claims = d_.authenticator.verify(*token)) {
      const AccountEvents::Revocation revocation{claims->user_id, claims->jti,
                                                 claims->exp + d_.jwt.config().leeway.count(), 0};
      d_.revocations.add(revocation.jti, revocation.expires_at_s);
      auto revoke = [jti = revocation.jti, until = revocation.expires_at_s](store::Store& s) {
        s.revoke_token(jti, until);
        return true;
      };
      co_await d_.store.run(std::move(revoke));
      co_await share(revocation);
      d_.events.tokens_revoked(revocation);
      log::info("logout", {{"request_id", ctx.request_id}, {"user_id", claims->user_id}, {"legacy", claims->legacy}});
    }
  }
  auto res = http::json_response(Status::ok, {{"message", "Logged out successfully"}});
  res.set(http::bhttp::field::set_cookie, "token=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
  co_return res;
}

}  // namespace chatorbit::auth
