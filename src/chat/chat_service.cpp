#include "chat/chat_service.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/serialize.hpp>

#include <optional>
#include <string>

#include "chat/client_frame.hpp"
#include "chat/events_json.hpp"
#include "chat/publication.hpp"
#include "chat/util.hpp"
#include "chat/wire.hpp"
#include "core/log.hpp"
#include "core/random.hpp"
#include "net/json_body.hpp"
#include "net/ws_handshake.hpp"

namespace chatorbit::chat {

namespace asio = boost::asio;
namespace beast = boost::beast;
using http::HttpError;
using http::Status;

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  auto found = http::find_query_param(query, name);
  return found.present ? std::move(found.value) : std::nullopt;
}

bool wants_v2(const http::Request& req, std::string_view query) {
  if (query_param(query, "v") == "2") return true;
  const auto protocols = req[http::bhttp::field::sec_websocket_protocol];
  return protocols.find("chatorbit.v2") != std::string_view::npos;
}

std::string json_line(const boost::json::object& o) { return boost::json::serialize(o); }

}  // namespace

ChatService::ChatService(ChatDeps deps) : d_(deps), node_id_(OsRandom::instance().hex(4)) {}

ChatService::~ChatService() = default;

void ChatService::register_routes(http::Router& router) {
  using verb = http::bhttp::verb;
  router.add(verb::post, "/chat/rooms", [this](http::Context& c) { return create_room(c); });
  router.add(verb::get, "/chat/rooms", [this](http::Context& c) { return list_rooms(c); });
  router.add(verb::get, "/chat/history/{room}", [this](http::Context& c) { return history(c); });
  router.add(verb::get, "/chat/rooms/{room}/presence", [this](http::Context& c) { return presence(c); });
  router.add(verb::get, "/ws/chat", [](http::Context&) -> asio::awaitable<http::Response> {
    auto res = http::error_response(Status::upgrade_required, "websocket upgrade required");
    res.set(http::bhttp::field::upgrade, "websocket");
    co_return res;
  });
}

void ChatService::start() {
  presence_timer_ = std::make_unique<asio::steady_timer>(d_.loops.loop(0));
  asio::post(d_.loops.loop(0), [this] { schedule_presence_tick(); });
}

void ChatService::stop() {
  if (presence_timer_) {
    asio::post(d_.loops.loop(0), [this] { presence_timer_->cancel(); });
  }
}

// ---------------------------------------------------------------------------------
// Handshake

void ChatService::upgrade(beast::tcp_stream stream, beast::flat_buffer buffer, http::Request req, http::Context& ctx) {
  UpgradeInfo info{ctx.query_string, ctx.client_ip, ctx.loop};
  auto ex = stream.get_executor();
  asio::co_spawn(ex, handshake(std::move(stream), std::move(buffer), std::move(req), std::move(info)), asio::detached);
}

namespace {

http::Response refusal(Status status, std::string_view error, const boost::json::object& extra = {}) {
  auto res = http::error_response(status, error, extra);
  res.version(11);
  res.keep_alive(false);
  return res;
}

}  // namespace

std::optional<http::Response> ChatService::check_handshake(const http::Request& req, const UpgradeInfo& info,
                                                           Admitted& out) {
  const auto& cfg = d_.config;
  if (auto refused = ws::check_upgrade_headers(req)) {
    auto res = refusal(refused->status, refused->error, {{"detail", refused->detail}});
    if (refused->status == Status::upgrade_required) res.set(http::bhttp::field::sec_websocket_version, "13");
    return res;
  }
  const std::string_view origin = req[http::bhttp::field::origin];
  const bool origin_listed =
      std::find(cfg.cors_origins.begin(), cfg.cors_origins.end(), origin) != cfg.cors_origins.end();
  if (!cfg.cors_origins.empty() && !origin.empty() && !origin_listed) {
    return refusal(Status::forbidden, "origin not allowed");
  }
  out.accept = ws::accept_key(req[http::bhttp::field::sec_websocket_key]);

  // Who: a token from the query, the Authorization header or the cookie, checked
  // before anything is created. A token that is present but undecodable is refused, not
  // taken for a missing one.
  http::Request& mutable_req = const_cast<http::Request&>(req);
  http::Context view{mutable_req, "/ws/chat", info.query, {}, info.client_ip, {}, {}};
  const auto query_token = http::find_query_param(info.query, "token");
  if (query_token.present && !query_token.value) return refusal(Status::unauthorized, "invalid token");
  std::optional<std::string> token = query_token.value;
  bool by_cookie = false;
  if (!token || token->empty()) {
    token = view.bearer();
    if (!token) {
      token = view.cookie("token");
      by_cookie = token && !token->empty();
    }
  }
  if (token && !token->empty()) {
    // A browser attaches the cookie to a handshake that any page opens: with an
    // allowlist, only listed origins may ride on it (cross-site WebSocket hijacking).
    if (by_cookie && !http::cookie_origin_ok(req, cfg.cors_origins)) {
      return refusal(Status::forbidden, "origin not allowed",
                     {{"detail", "a handshake authenticated by cookie must come from an allowed Origin"}});
    }
    out.claims = d_.authenticator.verify(*token);
    if (!out.claims) return refusal(Status::unauthorized, "invalid token");
  } else if (!cfg.anonymous_viewers) {
    return refusal(Status::unauthorized, "missing token");
  }

  // Where: the room, normalised; nothing is created for a bad id. A room_id that is
  // present must be a valid one: `?room_id=` and `?room_id=%ZZ` are refused, not sent to
  // the default room.
  out.room = "general";
  auto raw = http::find_query_param(info.query, "room_id");
  if (!raw.present) raw = http::find_query_param(info.query, "roomId");
  if (raw.present) {
    std::string why = "malformed percent-encoding";
    auto room = raw.value ? normalize_room_id(*raw.value, &why) : std::nullopt;
    if (!room) return refusal(Status::bad_request, "invalid room_id", {{"detail", why}});
    out.room = *room;
  }
  out.v2 = wants_v2(req, info.query);
  out.subprotocol = req[http::bhttp::field::sec_websocket_protocol].find("chatorbit.v2") != std::string_view::npos;
  if (const auto q = http::find_query_param(info.query, "last_seq"); q.present) {
    const auto seq = q.value ? parse_u64(*q.value) : std::nullopt;
    if (!seq) return refusal(Status::bad_request, "invalid last_seq", {{"detail", "last_seq must be a whole number"}});
    if (out.v2) out.last_seq = seq;
  }

  // How many: open connections per client address.
  std::lock_guard lock(addr_mu_);
  if (open_per_address_[info.client_ip] >= cfg.max_connections_per_ip) {
    auto res = refusal(Status::too_many_requests, "too many connections");
    res.set(http::bhttp::field::retry_after, "1");
    return res;
  }
  ++open_per_address_[info.client_ip];
  out.counted = true;
  return std::nullopt;
}

asio::awaitable<void> ChatService::handshake(beast::tcp_stream stream, beast::flat_buffer buffer, http::Request req,
                                             UpgradeInfo info) {
  Admitted a;
  // Before the token is verified: an account event (logout, password or role change)
  // that arrives from here on and before the session exists is replayed to it by
  // Hub::add(). Replaying one that the checks below already saw is harmless.
  a.state_read_at = std::chrono::steady_clock::now();
  try {
    auto refused = check_handshake(req, info, a);
    if (!refused) {
      const auto verdict = co_await d_.engine.rate_hit("connect:" + info.client_ip, d_.config.connect_rate_per_ip);
      if (verdict.verdict != engine::Admission::Verdict::ok) {
        const auto ms = verdict.retry_after.count();
        refused = refusal(Status::too_many_requests, "too many connections", {{"retry_after_ms", ms}});
        refused->set(http::bhttp::field::retry_after, std::to_string(std::max<std::int64_t>(1, (ms + 999) / 1000)));
      }
    }
    if (!refused && a.claims) {
      // The role is the account's current one, not the token's claim: a demoted
      // moderator's token must not bring the old powers back. Changes made during and
      // after this read reach the session as account events (see state_read_at).
      auto find = [id = a.claims->user_id](store::Store& st) { return st.find_user_by_id(id); };
      a.user = co_await d_.store.run(std::move(find));
      if (!a.user) refused = refusal(Status::unauthorized, "invalid token");
    }
    if (!refused && a.claims) {
      if (auto ban = co_await d_.engine.ban_state(a.room, a.claims->user_id)) {
        boost::json::object extra{{"reason", ban->reason}};
        if (const auto retry = ban->retry_after_ms(d_.clock.unix_millis())) extra["retry_after_ms"] = *retry;
        refused = refusal(Status::forbidden, "banned", extra);
      }
    }
    if (refused) {
      if (a.counted) release_address(info.client_ip);
      refused->prepare_payload();
      stream.expires_after(std::chrono::seconds{5});
      co_await beast::http::async_write(stream, *refused, use_nothrow);
      beast::error_code ec;
      stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
      co_return;
    }
    co_await d_.rooms.ensure(a.room);

    http::Response res{Status::switching_protocols, 11};
    res.set(http::bhttp::field::upgrade, "websocket");
    res.set(http::bhttp::field::connection, "Upgrade");
    res.set(http::bhttp::field::sec_websocket_accept, a.accept);
    if (a.subprotocol) res.set(http::bhttp::field::sec_websocket_protocol, "chatorbit.v2");
    stream.expires_after(std::chrono::seconds{10});
    auto [wec, wn] = co_await beast::http::async_write(stream, res, use_nothrow);
    (void)wn;
    if (wec) {
      release_address(info.client_ip);
      co_return;
    }
    stream.expires_never();
    a.counted = false;  // from here the session releases the address when it closes

    Session proto;
    proto.conn_id = node_id_ + "-" + std::to_string(next_conn_.fetch_add(1, std::memory_order_relaxed));
    proto.client_ip = info.client_ip;
    proto.version = a.v2 ? 2 : 1;
    if (a.user) {
      proto.user_id = a.user->id;
      proto.username = a.user->username;
      proto.role = a.user->role;
      proto.jti = a.claims->jti;
      proto.token_iat = a.claims->iat;
    }
    proto.resuming = a.last_seq.has_value();
    const auto leftover = beast::buffers_to_string(buffer.data());
    Session& s = d_.hub.add(info.loop, stream.release_socket(), std::move(proto), leftover, a.state_read_at);
    auto conn = s.conn;
    d_.hub.join(s, a.room);
    welcome(s);
    log::debug("ws_open", {{"conn", s.conn_id}, {"room", a.room}, {"user_id", s.user_id}, {"v", s.version}});

    co_await d_.engine.presence_refresh(one(s.presence()), d_.config.presence_ttl);
    if (Session* live = alive(conn)) notify_presence(a.room, "join", live->user_id, live->username);
    if (a.last_seq) co_await resume(conn, *a.last_seq);
  } catch (const std::exception& e) {
    log::error("ws_handshake_failed", {{"client", info.client_ip}, {"what", e.what()}});
    if (a.counted) release_address(info.client_ip);
  }
}

void ChatService::release_address(const std::string& ip) {
  std::lock_guard lock(addr_mu_);
  const auto it = open_per_address_.find(ip);
  if (it != open_per_address_.end() && --it->second <= 0) open_per_address_.erase(it);
}

void ChatService::welcome(Session& s) {
  if (s.version != 2) return;
  boost::json::object w{{"type", "welcome"},
                        {"room_id", s.room},
                        {"user_id", s.anonymous() ? boost::json::value(nullptr) : boost::json::value(s.user_id)},
                        {"username", s.username},
                        {"role", s.anonymous() ? "viewer" : s.role},
                        {"read_only", s.anonymous()},
                        {"protocol", 2}};
  s.conn->send_text(json_line(w));
}

asio::awaitable<void> ChatService::resume(std::shared_ptr<ws::Connection> conn, std::uint64_t last_seq) {
  Session* s = alive(conn);
  if (!s) co_return;
  const std::string room = s->room;
  auto job = [room](store::Store& st) { return st.history(room, 200, std::nullopt); };
  std::vector<store::Message> newest_first;
  try {
    // History is read only once live messages are coming in (the hub subscribed when the
    // session joined; this waits until that is in force), so nothing falls between.
    co_await d_.engine.subscribed(room_channel(room));
    newest_first = co_await d_.store.run(std::move(job));
  } catch (const std::exception& e) {
    log::error("resume_failed", {{"what", e.what()}});
  }
  s = alive(conn);
  if (!s) co_return;
  std::uint64_t sent = last_seq;
  for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) {
    if (it->seq <= last_seq) continue;
    s->conn->send_text(message_json_v2_from_v1(message_json_v1(*it)));
    sent = it->seq;
  }
  d_.hub.release_held(*s, sent);
}

// ---------------------------------------------------------------------------------
// Frames from clients

// A connection's frames are handled one at a time, in order, but a chat message only
// waits for its admission: once it is in the pipeline the next frame is taken, up to
// kMaxInPipeline messages per connection. The pipeline keeps their order (numbers,
// storage, publication and acks), and a busy sender's messages then share batches
// instead of costing a store round trip each. Any other frame (history, join, ping,
// a malformed one) waits until the connection's earlier messages are stored, so its
// reply comes after their acks, as if everything had been handled one by one.
namespace {

constexpr std::uint32_t kMaxInPipeline = 32;

/// The session's next waiting frame; none if the inbox is empty (the session is then no
/// longer busy).
std::optional<std::string> next_frame(Session& s) {
  if (s.inbox.empty()) {
    s.busy = false;
    return std::nullopt;
  }
  std::string text = std::move(s.inbox.front());
  s.inbox.erase(s.inbox.begin());
  return text;
}

}  // namespace

void ChatService::on_text(Session& s, std::string text) {
  if (s.busy) {
    // Frames beyond a bounded backlog are refused, not buffered without end (and a
    // client that also ignores the refusals fills its send queue and is dropped as too
    // slow).
    if (s.inbox.size() >= 64) {
      s.conn->send_text(error_json("rate_limited", "too many frames in flight; wait for replies", 100));
      return;
    }
    s.inbox.push_back(std::move(text));
    return;
  }
  s.busy = true;
  asio::co_spawn(d_.loops.loop(s.loop), process(s.conn, std::move(text)), asio::detached);
}

void ChatService::on_binary(Session& s) {
  s.conn->send_text(error_json("invalid", "binary frames are not supported; send JSON text frames"));
}

asio::awaitable<void> ChatService::process(std::shared_ptr<ws::Connection> conn, std::string text) {
  for (;;) {
    Next next = Next::go_on;
    try {
      next = co_await handle_frame(conn, text);
    } catch (const std::exception& e) {
      log::error("ws_frame_failed", {{"what", e.what()}});
      if (alive(conn)) conn->send_text(error_json("internal", "the server could not handle this frame"));
    }
    Session* s = alive(conn);
    if (!s) co_return;
    // Paused sessions stay busy (frames keep going to the inbox); on_stored() resumes them.
    if (next == Next::after_stored_ones) {
      s->inbox.insert(s->inbox.begin(), std::move(text));
      s->paused = true;
      s->barrier = true;
      co_return;
    }
    if (s->in_pipeline >= kMaxInPipeline) {
      s->paused = true;
      co_return;
    }
    auto more = next_frame(*s);
    if (!more) co_return;
    text = std::move(*more);
  }
}

asio::awaitable<ChatService::Next> ChatService::handle_frame(std::shared_ptr<ws::Connection> conn,
                                                             const std::string& text) {
  Session* s = alive(conn);
  if (!s) co_return Next::go_on;
  auto parsed = parse_client_frame(text);
  const bool plain_message = parsed.frame && parsed.frame->type == ClientFrame::Type::message &&
                             (!parsed.frame->room_id || *parsed.frame->room_id == s->room);
  if (s->in_pipeline && !plain_message) co_return Next::after_stored_ones;
  if (!parsed.frame) {
    conn->send_text(error_json("invalid", parsed.error, {}, parsed.cid));
    co_return Next::go_on;
  }
  auto& f = *parsed.frame;
  switch (f.type) {
    case ClientFrame::Type::ping: conn->send_text(R"({"type":"pong"})"); break;
    case ClientFrame::Type::history: co_await send_history(conn, f.before, f.limit); break;
    case ClientFrame::Type::join:
      if (!f.room_id) {
        conn->send_text(error_json("invalid", "room_id is required"));
        break;
      }
      co_await switch_room(conn, *f.room_id);
      break;
    case ClientFrame::Type::message:
      if (f.room_id && *f.room_id != s->room) {
        if (!co_await switch_room(conn, *f.room_id)) break;
        // The original moved the connection and posted; a bare move has no content.
        if (!f.content) break;
      }
      if (!f.content) {
        conn->send_text(error_json("invalid", "content is required", {}, f.cid));
        break;
      }
      co_await post_message(conn, std::move(*f.content), f.cid);
      break;
  }
  co_return Next::go_on;
}

asio::awaitable<void> ChatService::post_message(std::shared_ptr<ws::Connection> conn, std::string content,
                                                std::string cid) {
  Session* s = alive(conn);
  if (!s) co_return;
  if (s->anonymous()) {
    conn->send_text(error_json("forbidden", "viewers without an account cannot post; log in to chat", {}, cid));
    co_return;
  }
  auto checked = check_content(content, d_.config.max_message_chars);
  if (!checked.error_code.empty()) {
    conn->send_text(error_json(checked.error_code, checked.message, {}, cid));
    co_return;
  }
  engine::AdmitRequest request{s->room, s->user_id, s->moderator() ? d_.config.mod_rate_limit : d_.config.rate_limit,
                               s->moderator() ? 0 : d_.rooms.slow_mode(s->room)};
  const auto admission = co_await d_.engine.admit(std::move(request));
  s = alive(conn);
  if (!s) co_return;
  using Verdict = engine::Admission::Verdict;
  switch (admission.verdict) {
    case Verdict::ok: break;
    case Verdict::banned:
      // Engine::admit() gives the ban with a banned verdict.
      on_kick(*s, banned_json("you are banned from this room", admission.ban.value_or(engine::BanState{}),
                              d_.clock.unix_millis()));
      co_return;
    case Verdict::slow_mode:
      conn->send_text(error_json("slow_mode", "slow mode is on in this room", admission.retry_after.count(), cid));
      co_return;
    case Verdict::rate_limited:
      conn->send_text(
          error_json("rate_limited", "you are sending messages too fast", admission.retry_after.count(), cid));
      co_return;
  }
  store::Message m;
  m.id = d_.ids.next();
  m.room_id = s->room;
  m.user_id = s->user_id;
  m.username = s->username;
  m.content = std::move(checked.content);
  m.timestamp_ns = d_.clock.unix_nanos();
  m.cid = cid;
  // Not awaited: process() takes the next frame while this one is stored (see on_text).
  ++s->in_pipeline;
  const auto home = co_await asio::this_coro::executor;
  auto done = [this, conn, cid](std::exception_ptr error, PostResult result) { on_stored(conn, cid, error, result); };
  d_.pipeline.enqueue(std::move(m), home, std::move(done));
}

void ChatService::on_stored(const std::shared_ptr<ws::Connection>& conn, const std::string& cid,
                            std::exception_ptr error, const PostResult& result) {
  Session* s = alive(conn);
  if (!s) return;
  --s->in_pipeline;
  if (error) {
    conn->send_text(error_json("internal", "the message could not be stored; it was not sent", {}, cid));
  } else {
    if (s->version == 2 && !cid.empty()) {
      boost::json::object ack{
          {"type", "ack"}, {"cid", cid}, {"id", result.id}, {"seq", result.seq}, {"duplicate", result.duplicate}};
      conn->send_text(json_line(ack));
    }
    if (!result.published) {
      conn->send_text(error_json("unavailable",
                                 "the message was stored but could not be delivered live; it is in the room's history",
                                 {}, cid));
    }
  }
  if (!s->paused || (s->barrier ? s->in_pipeline > 0 : s->in_pipeline >= kMaxInPipeline)) return;
  s->paused = false;
  s->barrier = false;
  if (auto text = next_frame(*s)) {
    asio::co_spawn(d_.loops.loop(s->loop), process(conn, std::move(*text)), asio::detached);
  }
}

asio::awaitable<bool> ChatService::switch_room(std::shared_ptr<ws::Connection> conn, std::string raw_room) {
  std::string why;
  const auto room = normalize_room_id(raw_room, &why);
  if (!room) {
    conn->send_text(error_json("invalid", why));
    co_return false;
  }
  Session* s = alive(conn);
  if (!s) co_return false;
  if (*room == s->room) co_return true;
  if (!s->anonymous()) {
    if (auto ban = co_await d_.engine.ban_state(*room, s->user_id)) {
      if (alive(conn)) conn->send_text(banned_json("you are banned from that room", *ban, d_.clock.unix_millis()));
      co_return false;
    }
  }
  co_await d_.rooms.ensure(*room);
  s = alive(conn);
  if (!s) co_return false;
  const auto old = s->presence();
  d_.hub.join(*s, *room);
  welcome(*s);
  const auto fresh = s->presence();
  const auto user_id = s->user_id;
  const auto username = s->username;
  co_await d_.engine.presence_remove(one(old));
  co_await d_.engine.presence_refresh(one(fresh), d_.config.presence_ttl);
  notify_presence(old.room_id, "leave", user_id, username);
  notify_presence(*room, "join", user_id, username);
  co_return true;
}

asio::awaitable<void> ChatService::send_history(std::shared_ptr<ws::Connection> conn,
                                                std::optional<std::uint64_t> before, int limit) {
  Session* s = alive(conn);
  if (!s) co_return;
  auto job = [room = s->room, limit, before](store::Store& st) { return st.history(room, limit, before); };
  const auto rows = co_await d_.store.run(std::move(job));
  s = alive(conn);
  if (!s) co_return;
  std::string out = "{\"type\":\"history\",\"room_id\":";
  append_json_string(out, s->room);
  out += ",\"messages\":[";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i) out += ',';
    out += message_json_v1(rows[i]);
  }
  out += "]}";
  conn->send_text(out);
}

void ChatService::on_closed(Session& s) {
  if (!s.room.empty()) {
    asio::co_spawn(d_.loops.loop(s.loop), presence_gone(s.presence(), s.user_id, s.username), asio::detached);
  }
  release_address(s.client_ip);
}

// Coroutines here are member functions, never lambdas: a lambda coroutine reads its
// captures through the closure, which is gone once co_spawn's caller returns.
asio::awaitable<void> ChatService::presence_gone(engine::PresenceEntry entry, std::string user_id,
                                                 std::string username) {
  const std::string room = entry.room_id;
  co_await d_.engine.presence_remove(one(std::move(entry)));
  notify_presence(room, "leave", user_id, username);
}

asio::awaitable<void> ChatService::presence_refresh_batch(std::vector<engine::PresenceEntry> entries) {
  co_await d_.engine.presence_refresh(std::move(entries), d_.config.presence_ttl);
}

void ChatService::on_presence_due(std::size_t loop, std::vector<engine::PresenceEntry> entries) {
  asio::co_spawn(d_.loops.loop(loop), presence_refresh_batch(std::move(entries)), asio::detached);
}

void ChatService::on_kick(Session& s, const std::string& error_frame) {
  s.conn->send_text(error_frame);
  s.conn->close(ws::close_code::banned, "banned");
}

void ChatService::on_revoked(Session& s) {
  s.conn->send_text(
      error_json("unauthorized", "your session has ended (logged out or password changed); log in again"));
  s.conn->close(ws::close_code::unauthorized, "token revoked");
}

// ---------------------------------------------------------------------------------
// Presence notifications

void ChatService::notify_presence(const std::string& room, const char* event, const std::string& user_id,
                                  const std::string& username) {
  asio::co_spawn(d_.loops.loop(0), presence_changed(room, event, user_id, username), asio::detached);
}

asio::awaitable<void> ChatService::presence_changed(std::string room, std::string event, std::string user_id,
                                                    std::string username) {
  try {
    const auto counts = co_await d_.engine.presence_counts(one(room));
    const auto& c = counts.at(0);
    if (c.online() > d_.config.presence_events_max) {
      std::lock_guard lock(presence_mu_);
      presence_dirty_.insert(room);
      co_return;
    }
    const auto frame = presence_frame(room, c, event, user_id, username);
    d_.engine.publish(room_channel(room), std::make_shared<const std::string>(encode_presence(frame)));
  } catch (const std::exception& e) {
    log::warn("presence_notify_failed", {{"what", e.what()}});
  }
}

void ChatService::schedule_presence_tick() {
  presence_timer_->expires_after(std::chrono::seconds{1});
  presence_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    std::set<std::string> rooms;
    {
      std::lock_guard lock(presence_mu_);
      rooms.swap(presence_dirty_);
    }
    if (!rooms.empty()) {
      asio::co_spawn(d_.loops.loop(0), publish_counts(std::vector<std::string>(rooms.begin(), rooms.end())),
                     asio::detached);
    }
    schedule_presence_tick();
  });
}

asio::awaitable<void> ChatService::publish_counts(std::vector<std::string> rooms) {
  const auto counts = co_await d_.engine.presence_counts(rooms);
  for (std::size_t i = 0; i < rooms.size() && i < counts.size(); ++i) {
    d_.engine.publish(room_channel(rooms[i]), std::make_shared<const std::string>(
                                                  encode_presence(presence_frame(rooms[i], counts[i], "count"))));
  }
}

}  // namespace chatorbit::chat
