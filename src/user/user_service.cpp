#include "user/user_service.hpp"

#include "auth/credentials.hpp"
#include "core/log.hpp"
#include "core/time_format.hpp"
#include "net/json_body.hpp"

namespace chatorbit::user {

using http::HttpError;
using http::Status;
namespace asio = boost::asio;

void UserService::register_routes(http::Router& router) {
  using verb = http::bhttp::verb;
  router.add(verb::get, "/user/{id}", [this](http::Context& c) { return get_user(c); });
  router.add(verb::get, "/users/me", [this](http::Context& c) { return me(c); });
  router.add(verb::put, "/users/{id}/role", [this](http::Context& c) { return set_role(c); });
}

asio::awaitable<http::Response> UserService::get_user(http::Context& ctx) {
  // The original answered 500 for ids that are not ObjectIds; they simply do not exist.
  const std::string id = auth::lower_ascii(ctx.param("id"));
  if (!is_object_id(id)) throw HttpError(Status::not_found, "user not found");
  auto find = [id](store::Store& s) { return s.find_user_by_id(id); };
  auto user = co_await d_.store.run(std::move(find));
  if (!user) throw HttpError(Status::not_found, "user not found");
  co_return http::json_response(Status::ok, {{"id", user->id}, {"name", user->username}, {"email", user->email}});
}

asio::awaitable<http::Response> UserService::me(http::Context& ctx) {
  const auto claims = d_.authenticator.require(ctx);
  auto find = [id = claims.user_id](store::Store& s) { return s.find_user_by_id(id); };
  auto user = co_await d_.store.run(std::move(find));
  if (!user) throw HttpError(Status::unauthorized, "Unauthorized");
  co_return http::json_response(Status::ok, {{"id", user->id},
                                             {"name", user->username},
                                             {"username", user->username},
                                             {"email", user->email},
                                             {"role", user->role},
                                             {"created_at", format_rfc3339(user->created_at_ms * 1'000'000, 3)}});
}

asio::awaitable<http::Response> UserService::set_role(http::Context& ctx) {
  const auto claims = d_.authenticator.require(ctx);
  // The caller's role is read from the store, not the token: a demoted admin's
  // still-valid token must not keep the power.
  auto find = [id = claims.user_id](store::Store& s) { return s.find_user_by_id(id); };
  auto caller = co_await d_.store.run(std::move(find));
  if (!caller) throw HttpError(Status::unauthorized, "Unauthorized");
  if (caller->role != "admin") throw HttpError(Status::forbidden, "forbidden: admin role required");

  const http::JsonBody body(ctx.req, "Invalid input");
  const auto role = body.string("role");
  if (role != "user" && role != "moderator" && role != "admin") body.fail("role must be user, moderator or admin");
  const std::string id = auth::lower_ascii(ctx.param("id"));
  if (!is_object_id(id)) throw HttpError(Status::not_found, "user not found");

  store::ModerationAction action;
  action.id = d_.ids.next();
  action.actor_id = caller->id;
  action.action = "role";
  action.target_user_id = id;
  action.reason = role;
  action.at_ms = d_.clock.unix_millis();
  auto update = [id, role, action](store::Store& s) {
    if (!s.set_role(id, role, action.at_ms)) return false;
    s.record_moderation(action);
    return true;
  };
  const bool found = co_await d_.store.run(std::move(update));
  if (!found) throw HttpError(Status::not_found, "user not found");
  d_.events.role_changed(id, role);
  log::info("role_changed", {{"request_id", ctx.request_id}, {"actor", caller->id}, {"user_id", id}, {"role", role}});
  co_return http::json_response(Status::ok, {{"id", id}, {"role", role}});
}

}  // namespace chatorbit::user
