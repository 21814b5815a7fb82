// The chat service's WebSocket handshake: the checks made before anything is created
// (upgrade headers, Origin, token, room, last_seq, the per-address cap, the connect
// rate, the account and its bans), the refusal or the 101, and the new session's first
// steps (join, welcome, presence, resume).
//
// These are ChatService members in a file of their own, not a class: the checks read
// nearly every dependency of the service (configuration, authenticator, store, engine,
// rooms, address caps), and the coroutine ends by handing the session to the service's
// own steps (welcome(), resume(), presence). A separate class would take all of that and
// call back into the service, which only moves the coupling into its constructor.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/write.hpp>

#include <optional>
#include <string>

#include "chat/chat_service.hpp"
#include "chat/util.hpp"
#include "chat/wire.hpp"
#include "core/log.hpp"
#include "net/use_nothrow.hpp"
#include "net/ws_handshake.hpp"

namespace chatorbit::chat {

namespace asio = boost::asio;
namespace beast = boost::beast;
using http::Status;

namespace {

using net::use_nothrow;

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  auto found = http::find_query_param(query, name);
  return found.present ? std::move(found.value) : std::nullopt;
}

bool wants_v2(const http::Request& req, std::string_view query) {
  if (query_param(query, "v") == "2") return true;
  const auto protocols = req[http::bhttp::field::sec_websocket_protocol];
  return protocols.find("chatorbit.v2") != std::string_view::npos;
}

}  // namespace

namespace {

/// A viewer that connected to this node itself: the answer goes to its socket.
class SocketPeer final : public HandshakePeer {
 public:
  SocketPeer(beast::tcp_stream stream, beast::flat_buffer buffer)
      : stream_(std::move(stream)), buffer_(std::move(buffer)) {}

  asio::awaitable<void> refuse(http::Response res) override {
    stream_.expires_after(std::chrono::seconds{5});
    co_await beast::http::async_write(stream_, res, use_nothrow);
    beast::error_code ec;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  }

  asio::awaitable<bool> accept(const http::Response& res) override {
    stream_.expires_after(std::chrono::seconds{10});
    auto [ec, n] = co_await beast::http::async_write(stream_, res, use_nothrow);
    (void)n;
    stream_.expires_never();
    co_return !ec;
  }

  Session& hand_over(Hub& hub, std::size_t loop, Session proto,
                     std::chrono::steady_clock::time_point state_read_at) override {
    const auto leftover = beast::buffers_to_string(buffer_.data());
    return hub.add(loop, stream_.release_socket(), std::move(proto), leftover, state_read_at);
  }

 private:
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

}  // namespace

void ChatService::upgrade(beast::tcp_stream stream, beast::flat_buffer buffer, http::Request req, http::Context& ctx) {
  upgrade(std::make_unique<SocketPeer>(std::move(stream), std::move(buffer)), std::move(req), ctx.query_string,
          ctx.client_ip, ctx.loop);
}

void ChatService::upgrade(std::unique_ptr<HandshakePeer> peer, http::Request req, std::string query,
                          std::string client_ip, std::size_t loop) {
  UpgradeInfo info{std::move(query), std::move(client_ip), loop};
  // Background work (net/background.hpp): a crowd's handshakes yield to the live rooms.
  auto ex = d_.loops.background(info.loop).executor();
  asio::co_spawn(ex, handshake(std::move(peer), std::move(req), std::move(info)), asio::detached);
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
  if (stopping()) {
    // A node on its way down: its listeners are closed, but a gateway's link still
    // brings handshakes. The gateway tries the next node on a 503.
    auto res = refusal(Status::service_unavailable, "shutting down");
    res.set(http::bhttp::field::retry_after, "1");
    return res;
  }
  if (auto refused = ws::check_upgrade_headers(req)) {
    auto res = refusal(refused->status, refused->error, {{"detail", refused->detail}});
    if (refused->status == Status::upgrade_required) res.set(http::bhttp::field::sec_websocket_version, "13");
    return res;
  }
  // With an allowlist, a page of another origin may not open chat at all; without one,
  // only what rides on the cookie is checked (below).
  const std::string_view origin = req[http::bhttp::field::origin];
  if (!cfg.cors_origins.empty() && !origin.empty() && !http::cors_origin_allowed(origin, cfg.cors_origins)) {
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
  if (!caps_.try_acquire(info.client_ip)) {
    auto res = refusal(Status::too_many_requests, "too many connections");
    res.set(http::bhttp::field::retry_after, "1");
    return res;
  }
  out.counted = true;
  return std::nullopt;
}

asio::awaitable<std::optional<http::Response>> ChatService::claim_address_slot(const UpgradeInfo& info, Admitted& a) {
  // The same cap across every node: each session holds a slot of its address's count in
  // the engine, refreshed with its presence, so that a node that dies frees its slots a
  // presence TTL later. The per-node count (check_handshake) came first and is cheaper.
  a.conn_id = node_id_ + "-" + std::to_string(next_conn_.fetch_add(1, std::memory_order_relaxed));
  try {
    a.slot = co_await d_.engine.claim_slot(address_slot_key(info.client_ip), a.conn_id,
                                           d_.config.max_connections_per_ip, d_.config.presence_ttl);
  } catch (const engine::EngineUnavailable& e) {
    // Open, not shut, while the engine is away: the per-node cap still holds, and a
    // chat that refuses every viewer because a counter is unreachable is worse.
    log::warn("address_slot_unavailable", {{"what", e.what()}});
    co_return std::nullopt;
  }
  if (a.slot) co_return std::nullopt;
  auto res = refusal(Status::too_many_requests, "too many connections");
  res.set(http::bhttp::field::retry_after, "1");
  co_return res;
}

asio::awaitable<void> ChatService::handshake(std::unique_ptr<HandshakePeer> peer, http::Request req, UpgradeInfo info) {
  Admitted a;
  // Before the token is verified: an account event (logout, password or role change)
  // that arrives from here on and before the session exists is replayed to it by
  // Hub::add(). Replaying one that the checks below already saw is harmless.
  a.state_read_at = std::chrono::steady_clock::now();
  bool answered = false;  // a refusal or the 101 has gone to the peer
  bool failed = false;
  try {
    auto refused = check_handshake(req, info, a);
    if (!refused) {
      engine::Admission verdict;
      try {
        verdict = co_await d_.engine.rate_hit("connect:" + info.client_ip, d_.config.connect_rate_per_ip);
      } catch (const engine::EngineUnavailable& e) {
        // Viewers keep coming in while Redis is away; the node's own per-address cap
        // (caps_) still holds.
        log::warn("connect_rate_unchecked", {{"client", info.client_ip}, {"why", e.what()}});
      }
      if (verdict.verdict != engine::Admission::Verdict::ok) {
        const auto ms = verdict.retry_after.count();
        refused = refusal(Status::too_many_requests, "too many connections", {{"retry_after_ms", ms}});
        refused->set(http::bhttp::field::retry_after, std::to_string(std::max<std::int64_t>(1, (ms + 999) / 1000)));
      }
    }
    if (!refused) refused = co_await claim_address_slot(info, a);
    if (!refused && a.claims) {
      // The role is the account's current one, not the token's claim: a demoted
      // moderator's token must not bring the old powers back. Changes made during and
      // after this read reach the session as account events (see state_read_at).
      auto find = [id = a.claims->user_id](store::Store& st) { return st.find_user_by_id(id); };
      a.user = co_await d_.store.run(std::move(find));
      if (!a.user) refused = refusal(Status::unauthorized, "invalid token");
    }
    if (!refused && a.claims) {
      try {
        if (auto ban = co_await d_.engine.ban_state(a.room, a.claims->user_id)) {
          boost::json::object extra{{"reason", ban->reason}};
          if (const auto retry = ban->retry_after_ms(d_.clock.unix_millis())) extra["retry_after_ms"] = *retry;
          refused = refusal(Status::forbidden, "banned", extra);
        }
      } catch (const engine::EngineUnavailable& e) {
        // A signed-in user whose bans cannot be read is not let in: a ban must not
        // lapse because Redis is away. Viewers (no account) need no ban check.
        log::warn("ban_unchecked", {{"user_id", a.claims->user_id}, {"why", e.what()}});
        refused = refusal(Status::service_unavailable, "unavailable", {{"retry_after_ms", 1000}});
        refused->set(http::bhttp::field::retry_after, "1");
      }
    }
    if (refused) {
      if (a.counted) caps_.release(info.client_ip);
      if (a.slot) co_await release_address_slot(info.client_ip, a.conn_id);
      refused->prepare_payload();
      answered = true;
      co_await peer->refuse(std::move(*refused));
      co_return;
    }
    co_await d_.rooms.ensure(a.room);

    http::Response res{Status::switching_protocols, 11};
    res.set(http::bhttp::field::upgrade, "websocket");
    res.set(http::bhttp::field::connection, "Upgrade");
    res.set(http::bhttp::field::sec_websocket_accept, a.accept);
    if (a.subprotocol) res.set(http::bhttp::field::sec_websocket_protocol, "chatorbit.v2");
    answered = true;
    if (!co_await peer->accept(res)) {
      caps_.release(info.client_ip);
      co_await release_address_slot(info.client_ip, a.conn_id);
      co_return;
    }
    a.counted = false;  // from here the session releases the address when it closes

    Session proto;
    proto.conn_id = a.conn_id;
    proto.client_ip = info.client_ip;
    proto.version = a.v2 ? 2 : 1;
    if (a.user) {
      proto.user_id = a.user->id;
      proto.username = a.user->username;
      proto.role = a.user->role;
      proto.jti = a.claims->jti;
      proto.token_iat = a.claims->iat;
    }
    // Live frames are held until the welcome is out (and, for a resume, the replay).
    proto.resuming = true;
    Session& joined = peer->hand_over(d_.hub, info.loop, std::move(proto), a.state_read_at);
    auto conn = joined.conn;
    d_.hub.join(joined, a.room);
    co_await room_live(a.room);
    Session* s = alive(conn);
    if (!s) co_return;
    welcome(*s);
    if (!a.last_seq) d_.hub.release_held(*s, 0);
    log::debug("ws_open", {{"conn", s->conn_id}, {"room", a.room}, {"user_id", s->user_id}, {"v", s->version}});

    try {
      co_await d_.engine.presence_refresh(one(s->presence()), d_.config.presence_ttl);
    } catch (const engine::EngineUnavailable& e) {
      log::warn("presence_unrecorded", {{"conn", a.conn_id}, {"why", e.what()}});  // the next sweep retries
    }
    if (Session* live = alive(conn)) presence_.notify(a.room, "join", live->user_id, live->username);
    if (a.last_seq) co_await resume(conn, *a.last_seq);
  } catch (const std::exception& e) {
    log::error("ws_handshake_failed", {{"client", info.client_ip}, {"what", e.what()}});
    if (a.counted) caps_.release(info.client_ip);
    if (a.slot)
      asio::co_spawn(d_.loops.background(info.loop).executor(), release_address_slot(info.client_ip, a.conn_id),
                     asio::detached);
    failed = true;
  }
  // A check that failed inside (the store or the engine in trouble) before any answer:
  // the viewer hears so and may retry (a gateway tries the next node), rather than see
  // its connection drop without a word.
  if (failed && !answered) {
    auto res = refusal(Status::service_unavailable, "unavailable", {{"retry_after_ms", 1000}});
    res.set(http::bhttp::field::retry_after, "1");
    res.prepare_payload();
    co_await peer->refuse(std::move(res));
  }
}

}  // namespace chatorbit::chat
