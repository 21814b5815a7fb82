// The chat service proper: each session's frames, one at a time and in order (with
// messages admitted ahead while earlier ones are stored), posting, room moves, history,
// resume, and what the hub reports about sessions (closed, kicked, revoked). The
// handshake is in chat_handshake.cpp, the REST routes in chat_rest.cpp.
#include "chat/chat_service.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <optional>
#include <string>

#include "chat/client_frame.hpp"
#include "chat/events_json.hpp"
#include "chat/replay.hpp"
#include "chat/resend_window.hpp"
#include "chat/util.hpp"
#include "chat/wire.hpp"
#include "core/log.hpp"
#include "core/random.hpp"

namespace chatorbit::chat {

namespace asio = boost::asio;
using http::Status;

namespace {

std::string json_line(const boost::json::object& o) { return boost::json::serialize(o); }

}  // namespace

ChatService::ChatService(ChatDeps deps)
    : d_(deps),
      caps_(d_.config.max_connections_per_ip),
      presence_(d_.engine, d_.loops, d_.config.presence_events_max, d_.config.presence_ttl),
      node_id_(OsRandom::instance().hex(4)) {}

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

void ChatService::start() { presence_.start(); }

void ChatService::stop() {
  stopping_.store(true, std::memory_order_relaxed);
  presence_.stop();
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

asio::awaitable<void> ChatService::room_live(const std::string& room) {
  try {
    co_await d_.engine.subscribed(room_channel(room));
  } catch (const engine::EngineUnavailable& e) {
    // The broker is down: the member is let in anyway (history works, posts are refused
    // as unavailable); live messages come once the broker is back.
    log::warn("room_not_live", {{"room", room}, {"why", e.what()}});
  }
}

asio::awaitable<void> ChatService::resume(std::shared_ptr<ws::Connection> conn, std::uint64_t last_seq) {
  Session* s = alive(conn);
  if (!s) co_return;
  const std::string room = s->room;
  constexpr std::size_t kLimit = 200;
  auto job = [room](store::Store& st) { return st.history(room, kLimit, std::nullopt); };
  std::vector<store::Message> newest_first;
  try {
    // History is read only once live messages are coming in (the hub subscribed when the
    // session joined; this waits until that is in force), so nothing falls between.
    co_await d_.engine.subscribed(room_channel(room));
    newest_first = co_await d_.store.run(job);
    // A hole next to a young message may be another node's message, numbered before
    // its neighbours and not yet stored: read again once it had the order wait to land
    // (docs/architecture.md, "Order across nodes"). Live frames are held meanwhile.
    const auto recent = std::max<std::chrono::nanoseconds>(std::chrono::seconds{3}, 10 * d_.config.order_wait);
    // Only up to what the first read reached: what came after is held live.
    if (replay_has_recent_hole(newest_first, kLimit, last_seq, d_.clock.unix_nanos(), recent)) {
      asio::steady_timer wait(co_await asio::this_coro::executor);
      wait.expires_after(d_.config.order_wait);
      co_await wait.async_wait(asio::use_awaitable);
      const std::uint64_t reached = newest_first.front().seq;
      auto again = [room, reached](store::Store& st) { return st.history(room, kLimit, reached + 1); };
      newest_first = co_await d_.store.run(again);
    }
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
    } catch (const engine::EngineUnavailable& e) {
      log::warn("ws_frame_unavailable", {{"what", e.what()}});
      if (alive(conn)) conn->send_text(error_json("unavailable", "chat is unavailable for a moment; try again", 1000));
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
      co_await post_message(conn, std::move(*f.content), f.cid, f.resend);
      break;
  }
  co_return Next::go_on;
}

asio::awaitable<void> ChatService::post_message(std::shared_ptr<ws::Connection> conn, std::string content,
                                                std::string cid, bool said_resend) {
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
  engine::Admission admission;
  try {
    admission = co_await d_.engine.admit(std::move(request));
  } catch (const engine::EngineUnavailable& e) {
    log::warn("admission_unavailable", {{"what", e.what()}});
    if (alive(conn)) {
      conn->send_text(error_json(
          "unavailable", "chat is unavailable for a moment; the message was not sent, send it again", 1000, cid));
    }
    co_return;
  }
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
  const bool may_be_resend = note_post(*s, cid, said_resend);
  // Not awaited: process() takes the next frame while this one is stored (see on_text).
  ++s->in_pipeline;
  const auto home = co_await asio::this_coro::executor;
  auto done = [this, conn, cid](std::exception_ptr error, PostResult result) { on_stored(conn, cid, error, result); };
  d_.pipeline.enqueue(std::move(m), home, std::move(done), may_be_resend);
}

namespace {

/// What a sender is told of a message its batch failed to store: the error code and
/// text. A lost connection leaves the outcome unknown: then the message may be stored,
/// and a resend with the same cid finds out without storing it twice (MessagePipeline).
/// A batch that could not be numbered (the engine is unavailable) stored nothing.
std::pair<std::string, std::string> stored_error(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const engine::EngineUnavailable&) {
    return {"unavailable", "chat is unavailable for a moment; the message was not stored, send it again"};
  } catch (const store::StoreUnavailable&) {
    return {"unavailable", "chat's database is unreachable for a moment; the message was not stored, send it again"};
  } catch (const store::PartialAppend& e) {
    const bool unknown = e.rest() == store::PartialAppend::Rest::unknown;
    if (e.unreachable()) {
      return {"unavailable", unknown ? "chat's database stopped answering; the message may have been stored and was "
                                       "not sent: resend it with the same cid"
                                     : "chat's database is unreachable for a moment; the message was not stored, send "
                                       "it again"};
    }
    if (unknown) {
      return {"internal", "the message may not have been stored and was not sent; resend it with the same cid to know"};
    }
  } catch (...) {
  }
  return {"internal", "the message could not be stored; it was not sent"};
}

}  // namespace

void ChatService::on_stored(const std::shared_ptr<ws::Connection>& conn, const std::string& cid,
                            std::exception_ptr error, const PostResult& result) {
  Session* s = alive(conn);
  if (!s) return;
  --s->in_pipeline;
  if (error) {
    const auto [code, text] = stored_error(error);
    conn->send_text(
        error_json(code, text, code == "unavailable" ? std::optional<std::int64_t>{1000} : std::nullopt, cid));
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
  s->resuming = true;  // live frames of the new room wait for the welcome
  d_.hub.join(*s, *room);
  co_await room_live(*room);
  s = alive(conn);
  if (!s) co_return false;
  welcome(*s);
  d_.hub.release_held(*s, 0);
  const auto fresh = s->presence();
  const auto user_id = s->user_id;
  const auto username = s->username;
  co_await d_.engine.presence_remove(one(old));
  co_await d_.engine.presence_refresh(one(fresh), d_.config.presence_ttl);
  presence_.notify(old.room_id, "leave", user_id, username);
  presence_.notify(*room, "join", user_id, username);
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
  if (!s.room.empty()) presence_.gone(s.loop, s.presence(), s.user_id, s.username);
  caps_.release(s.client_ip);
  // Housekeeping: a crowd that leaves at once must not hold up the rooms still chatting.
  asio::co_spawn(d_.loops.background(s.loop).executor(), release_address_slot(s.client_ip, s.conn_id), asio::detached);
}

asio::awaitable<void> ChatService::release_address_slot(std::string ip, std::string conn_id) {
  try {
    co_await d_.engine.release_slot(address_slot_key(ip), std::move(conn_id));
  } catch (const std::exception& e) {
    // It expires by itself a presence TTL after its last refresh.
    log::warn("address_slot_release_failed", {{"what", e.what()}});
  }
}

void ChatService::on_presence_due(std::size_t loop, const std::vector<const Session*>& due) {
  std::vector<engine::PresenceEntry> entries;
  std::vector<engine::SlotRef> slots;
  entries.reserve(due.size());
  slots.reserve(due.size());
  for (const Session* s : due) {
    entries.push_back(s->presence());
    slots.push_back({address_slot_key(s->client_ip), s->conn_id});
  }
  presence_.refresh(loop, std::move(entries));
  asio::co_spawn(d_.loops.background(loop).executor(), refresh_address_slots(std::move(slots)), asio::detached);
}

asio::awaitable<void> ChatService::refresh_address_slots(std::vector<engine::SlotRef> slots) {
  try {
    co_await d_.engine.refresh_slots(std::move(slots), d_.config.presence_ttl);
  } catch (const std::exception& e) {
    log::warn("address_slot_refresh_failed", {{"what", e.what()}});
  }
}

std::string address_slot_key(const std::string& ip) { return "ws_address:" + ip; }

void ChatService::on_kick(Session& s, const std::string& error_frame) {
  s.conn->send_text(error_frame);
  s.conn->close(ws::close_code::banned, "banned");
}

void ChatService::on_revoked(Session& s) {
  s.conn->send_text(
      error_json("unauthorized", "your session has ended (logged out or password changed); log in again"));
  s.conn->close(ws::close_code::unauthorized, "token revoked");
}

}  // namespace chatorbit::chat
