// The chat service's REST routes: rooms, history and presence.
#include <boost/json/array.hpp>

#include <limits>

#include "chat/chat_service.hpp"
#include "chat/events_json.hpp"
#include "chat/util.hpp"
#include "chat/wire.hpp"
#include "net/json_body.hpp"

namespace chatorbit::chat {

namespace asio = boost::asio;
using http::HttpError;
using http::Status;

asio::awaitable<http::Response> ChatService::create_room(http::Context& ctx) {
  const http::JsonBody body(ctx.req, "room_id is required");
  const auto raw = body.optional_string("room_id");
  if (!raw || raw->empty()) throw HttpError(Status::bad_request, "room_id is required");
  std::string why;
  const auto room = normalize_room_id(*raw, &why);
  if (!room) throw HttpError(Status::bad_request, "invalid room_id", {{"detail", why}});
  co_await d_.rooms.ensure(*room);
  co_return http::json_response(Status::ok, {{"room_id", *room}});
}

asio::awaitable<http::Response> ChatService::list_rooms(http::Context&) {
  auto job = [](store::Store& s) { return s.list_rooms(); };
  const auto rooms = co_await d_.store.run(std::move(job));
  std::vector<std::string> ids;
  ids.reserve(rooms.size());
  for (const auto& r : rooms) ids.push_back(r.room_id);
  const auto counts = co_await d_.engine.presence_counts(ids);
  boost::json::array out;
  for (std::size_t i = 0; i < rooms.size(); ++i) {
    const auto c = i < counts.size() ? counts[i] : engine::PresenceCounts{};
    auto room = presence_counts_json(rooms[i].room_id, c);
    room["slow_mode_seconds"] = rooms[i].slow_mode_seconds;
    out.push_back(std::move(room));
  }
  co_return http::json_response(Status::ok, out);
}

asio::awaitable<http::Response> ChatService::history(http::Context& ctx) {
  std::string why;
  const auto room = normalize_room_id(ctx.param("room"), &why);
  if (!room) throw HttpError(Status::bad_request, "invalid room_id", {{"detail", why}});
  int limit = 50;
  std::optional<std::uint64_t> before;
  if (const auto l = ctx.query("limit")) {
    const auto v = parse_u64(*l);
    if (!v || *v < 1 || *v > 200) throw HttpError(Status::bad_request, "limit must be a whole number from 1 to 200");
    limit = static_cast<int>(*v);
  }
  if (const auto b = ctx.query("before")) {
    // A seq is 1 to 2^63-1 (signed 64-bit in storage), as the OpenAPI document says.
    before = parse_u64(*b);
    if (!before || *before < 1 || *before > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw HttpError(Status::bad_request, "before must be a sequence number from 1 to 9223372036854775807");
    }
  }
  auto job = [r = *room, limit, before](store::Store& s) { return s.history(r, limit, before); };
  const auto rows = co_await d_.store.run(std::move(job));
  // Built by hand so each item is byte-identical to the live frame.
  std::string body = "[";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i) body += ',';
    body += message_json_v1(rows[i]);
  }
  body += ']';
  http::Response res{Status::ok, 11};
  res.set(http::bhttp::field::content_type, "application/json; charset=utf-8");
  res.set(http::bhttp::field::cache_control, "no-store");
  res.body() = std::move(body);
  co_return res;
}

asio::awaitable<http::Response> ChatService::presence(http::Context& ctx) {
  std::string why;
  const auto room = normalize_room_id(ctx.param("room"), &why);
  if (!room) throw HttpError(Status::bad_request, "invalid room_id", {{"detail", why}});
  const auto counts = co_await d_.engine.presence_counts(one(*room));
  co_return http::json_response(Status::ok, presence_counts_json(*room, counts.at(0)));
}

}  // namespace chatorbit::chat
