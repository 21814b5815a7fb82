#include "chat/moderation_service.hpp"

#include <boost/json/serialize.hpp>

#include "auth/credentials.hpp"
#include "chat/events_json.hpp"
#include "chat/hub.hpp"
#include "chat/publication.hpp"
#include "chat/wire.hpp"
#include "core/log.hpp"
#include "core/run_blocking.hpp"
#include "core/time_format.hpp"
#include "net/json_body.hpp"

namespace chatorbit::chat {

namespace asio = boost::asio;
using http::HttpError;
using http::Status;

namespace {

constexpr std::int64_t kMaxBanSeconds = 10LL * 365 * 24 * 3600;

boost::json::value ms_or_null(std::int64_t ms) {
  return ms == 0 ? boost::json::value(nullptr) : boost::json::value(format_rfc3339(ms * 1'000'000, 3));
}

boost::json::object ban_json(const store::Ban& b) {
  return {{"room_id", b.room_id.empty() ? boost::json::value(nullptr) : boost::json::value(b.room_id)},
          {"user_id", b.user_id},
          {"reason", b.reason},
          {"actor_id", b.actor_id},
          {"created_at", format_rfc3339(b.created_at_ms * 1'000'000, 3)},
          {"expires_at", ms_or_null(b.expires_at_ms)}};
}

}  // namespace

void ModerationService::register_routes(http::Router& router) {
  using verb = http::bhttp::verb;
  auto add = [&](verb v, const char* path, asio::awaitable<http::Response> (ModerationService::*fn)(http::Context&)) {
    router.add(v, path, [this, fn](http::Context& c) { return (this->*fn)(c); });
  };
  add(verb::post, "/chat/rooms/{room}/bans", &ModerationService::ban);
  add(verb::get, "/chat/rooms/{room}/bans", &ModerationService::list_bans);
  add(verb::delete_, "/chat/rooms/{room}/bans/{user_id}", &ModerationService::unban);
  add(verb::post, "/chat/bans", &ModerationService::ban);
  add(verb::get, "/chat/bans", &ModerationService::list_bans);
  add(verb::delete_, "/chat/bans/{user_id}", &ModerationService::unban);
  add(verb::delete_, "/chat/rooms/{room}/messages/{id}", &ModerationService::delete_message);
  add(verb::post, "/chat/rooms/{room}/slow", &ModerationService::slow_mode);
  add(verb::post, "/chat/rooms/{room}/clear", &ModerationService::clear);
  add(verb::get, "/chat/rooms/{room}/moderation", &ModerationService::log);
}

void ModerationService::restore_bans(store::Store& store, engine::Engine& engine, const Clock& clock) {
  const auto now_ms = clock.unix_millis();
  for (const auto& b : store.all_active_bans(now_ms)) {
    std::optional<std::chrono::seconds> ttl;
    // Rounded up: a restored ban must not end before the one recorded.
    if (b.expires_at_ms) ttl = std::chrono::seconds{std::max<std::int64_t>(1, (b.expires_at_ms - now_ms + 999) / 1000)};
    auto ban = engine.ban(b.room_id, b.user_id, b.reason, ttl);
    run_blocking(std::move(ban));
  }
}

void ModerationService::apply_to_cache(RoomCache& rooms, std::string_view event_json) {
  const auto e = parse_moderation_event(event_json);
  if (e && e->action == "slow_mode" && !e->room_id.empty() && e->seconds) {
    rooms.set_slow_mode(e->room_id, static_cast<int>(*e->seconds));
  }
}

asio::awaitable<ModerationService::Actor> ModerationService::require_moderator(http::Context& ctx) {
  const auto claims = d_.authenticator.require(ctx);
  // The current role, from the store: a demoted moderator's token must not keep the power.
  auto find = [id = claims.user_id](store::Store& s) { return s.find_user_by_id(id); };
  const auto user = co_await d_.store.run(std::move(find));
  if (!user) throw HttpError(Status::unauthorized, "Unauthorized");
  if (user->role != "moderator" && user->role != "admin") {
    throw HttpError(Status::forbidden, "forbidden: moderator role required");
  }
  co_return Actor{user->id, user->role};
}

std::string ModerationService::scope_of(http::Context& ctx) {
  const auto raw = ctx.param("room");
  if (raw.empty()) return {};
  std::string why;
  auto room = normalize_room_id(raw, &why);
  if (!room) throw HttpError(Status::bad_request, "invalid room_id", {{"detail", why}});
  return *room;
}

asio::awaitable<void> ModerationService::record(store::ModerationAction action) {
  auto job = [a = std::move(action)](store::Store& s) {
    s.record_moderation(a);
    return true;
  };
  co_await d_.store.run(std::move(job));
}

void ModerationService::publish(const std::string& scope, const boost::json::object& event) {
  const auto channel = scope.empty() ? kControlChannel : room_channel(scope);
  d_.engine.publish(channel, std::make_shared<const std::string>(encode_moderation(event)));
}

asio::awaitable<http::Response> ModerationService::ban(http::Context& ctx) {
  const auto scope = scope_of(ctx);
  const auto actor = co_await require_moderator(ctx);
  const http::JsonBody body(ctx.req, "Invalid input");
  const auto user_id = auth::lower_ascii(body.string("user_id"));
  if (!is_object_id(user_id)) body.fail("user_id must be a 24-character hex id");
  const auto duration = body.optional_int("duration_seconds", 1, kMaxBanSeconds);
  const auto reason = body.optional_string("reason").value_or("");
  if (reason.size() > 500) body.fail("reason must be at most 500 bytes");
  const bool purge = body.optional_bool("purge").value_or(false);
  // Forbidden, not bad input: the request is well formed, the actor may not do this to themselves.
  if (user_id == actor.id) throw HttpError(Status::forbidden, "you cannot ban yourself");

  auto find = [user_id](store::Store& s) { return s.find_user_by_id(user_id); };
  const auto target = co_await d_.store.run(std::move(find));
  if (!target) throw HttpError(Status::not_found, "user not found");
  if (target->role == "admin" && actor.role != "admin")
    throw HttpError(Status::forbidden, "only admins can ban admins");

  const auto now_ms = d_.clock.unix_millis();
  store::Ban record_ban{scope, user_id, actor.id, reason, now_ms, duration ? now_ms + *duration * 1000 : 0};
  std::optional<std::chrono::seconds> ttl;
  if (duration) ttl = std::chrono::seconds{*duration};
  co_await d_.engine.ban(scope, user_id, reason, ttl);
  store::ModerationAction action{
      d_.ids.next(), scope, actor.id, duration ? "timeout" : "ban", user_id, "", reason, duration.value_or(0), now_ms};
  auto persist = [record_ban, action, purge, scope, user_id](store::Store& s) {
    s.put_ban(record_ban);
    s.record_moderation(action);
    std::vector<std::string> purged;
    if (purge && !scope.empty()) purged = s.purge_user_messages(scope, user_id, 100);
    return purged;
  };
  const auto purged = co_await d_.store.run(std::move(persist));

  publish(scope, ban_event(scope, user_id, reason, duration));
  if (!purged.empty()) publish(scope, purge_event(scope, user_id, purged));
  log::info("ban", {{"request_id", ctx.request_id}, {"actor", actor.id}, {"user_id", user_id}, {"scope", scope}});
  auto out = ban_json(record_ban);
  out["purged"] = purged.size();
  co_return http::json_response(Status::ok, out);
}

asio::awaitable<http::Response> ModerationService::unban(http::Context& ctx) {
  const auto scope = scope_of(ctx);
  const auto actor = co_await require_moderator(ctx);
  const auto user_id = auth::lower_ascii(std::string(ctx.param("user_id")));
  const bool lifted = co_await d_.engine.unban(scope, user_id);
  store::ModerationAction action{d_.ids.next(), scope, actor.id, "unban", user_id, "", "", 0, d_.clock.unix_millis()};
  auto persist = [scope, user_id, action](store::Store& s) {
    const bool had = s.remove_ban(scope, user_id);
    if (had) s.record_moderation(action);
    return had;
  };
  const bool recorded = co_await d_.store.run(std::move(persist));
  if (!lifted && !recorded) throw HttpError(Status::not_found, "ban not found");
  publish(scope, unban_event(scope, user_id));
  co_return http::json_response(Status::ok, {{"user_id", user_id}, {"unbanned", true}});
}

asio::awaitable<http::Response> ModerationService::list_bans(http::Context& ctx) {
  const auto scope = scope_of(ctx);
  co_await require_moderator(ctx);
  auto job = [scope, now = d_.clock.unix_millis()](store::Store& s) { return s.active_bans(scope, now); };
  const auto bans = co_await d_.store.run(std::move(job));
  boost::json::array out;
  for (const auto& b : bans) out.push_back(ban_json(b));
  co_return http::json_response(Status::ok, out);
}

asio::awaitable<http::Response> ModerationService::delete_message(http::Context& ctx) {
  const auto scope = scope_of(ctx);
  const auto actor = co_await require_moderator(ctx);
  const auto id = auth::lower_ascii(std::string(ctx.param("id")));
  if (!is_object_id(id)) throw HttpError(Status::not_found, "message not found");
  store::ModerationAction action{d_.ids.next(), scope, actor.id, "delete", "", id, "", 0, d_.clock.unix_millis()};
  auto job = [scope, id, action](store::Store& s) {
    if (!s.delete_message(scope, id)) return false;
    s.record_moderation(action);
    return true;
  };
  if (!co_await d_.store.run(std::move(job))) throw HttpError(Status::not_found, "message not found");
  publish(scope, delete_event(scope, id));
  co_return http::json_response(Status::ok, {{"id", id}, {"deleted", true}});
}

asio::awaitable<http::Response> ModerationService::slow_mode(http::Context& ctx) {
  const auto scope = scope_of(ctx);
  const auto actor = co_await require_moderator(ctx);
  const http::JsonBody body(ctx.req, "Invalid input");
  const auto seconds = body.optional_int("seconds", 0, 3600);
  if (!seconds) body.fail("seconds is required (0 turns slow mode off)");
  co_await d_.rooms.ensure(scope);
  store::ModerationAction action{d_.ids.next(),         scope, actor.id, "slow_mode", "", "", "", *seconds,
                                 d_.clock.unix_millis()};
  auto job = [scope, s = static_cast<int>(*seconds), action](store::Store& st) {
    st.set_slow_mode(scope, s);
    st.record_moderation(action);
    return true;
  };
  co_await d_.store.run(std::move(job));
  d_.rooms.set_slow_mode(scope, static_cast<int>(*seconds));
  publish(scope, slow_mode_event(scope, *seconds));
  co_return http::json_response(Status::ok, {{"room_id", scope}, {"seconds", *seconds}});
}

asio::awaitable<http::Response> ModerationService::clear(http::Context& ctx) {
  const auto scope = scope_of(ctx);
  const auto actor = co_await require_moderator(ctx);
  store::ModerationAction action{d_.ids.next(), scope, actor.id, "clear", "", "", "", 0, d_.clock.unix_millis()};
  auto job = [scope, action](store::Store& s) {
    const auto n = s.clear_room(scope);
    s.record_moderation(action);
    return n;
  };
  const auto cleared = co_await d_.store.run(std::move(job));
  publish(scope, clear_event(scope));
  co_return http::json_response(Status::ok, {{"room_id", scope}, {"cleared", cleared}});
}

asio::awaitable<http::Response> ModerationService::log(http::Context& ctx) {
  const auto scope = scope_of(ctx);
  co_await require_moderator(ctx);
  auto job = [scope](store::Store& s) { return s.moderation_log(scope, 200); };
  const auto actions = co_await d_.store.run(std::move(job));
  boost::json::array out;
  for (const auto& a : actions) {
    out.push_back(boost::json::object{{"id", a.id},
                                      {"action", a.action},
                                      {"actor_id", a.actor_id},
                                      {"target_user_id", a.target_user_id},
                                      {"target_message_id", a.target_message_id},
                                      {"reason", a.reason},
                                      {"duration_seconds", a.duration_seconds},
                                      {"at", format_rfc3339(a.at_ms * 1'000'000, 3)}});
  }
  co_return http::json_response(Status::ok, out);
}

}  // namespace chatorbit::chat
