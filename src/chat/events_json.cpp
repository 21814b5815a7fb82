#include "chat/events_json.hpp"

#include <boost/json/array.hpp>

#include "chat/wire.hpp"

namespace chatorbit::chat {

namespace {

boost::json::value room_or_null(const std::string& scope) {
  return scope.empty() ? boost::json::value(nullptr) : boost::json::value(scope);
}

void put_counts(boost::json::object& o, const std::string& room, const engine::PresenceCounts& c) {
  o["room_id"] = room;
  o["online"] = c.online();
  o["chatters"] = c.chatters;
  o["viewers"] = c.viewers;
}

}  // namespace

boost::json::object ban_event(const std::string& scope, std::string_view user_id, std::string_view reason,
                              std::optional<std::int64_t> duration_seconds) {
  boost::json::object event{{"type", "moderation"},
                            {"action", duration_seconds ? "timeout" : "ban"},
                            {"user_id", user_id},
                            {"reason", reason}};
  event["room_id"] = room_or_null(scope);
  if (duration_seconds) event["duration_seconds"] = *duration_seconds;
  return event;
}

boost::json::object unban_event(const std::string& scope, std::string_view user_id) {
  boost::json::object event{{"type", "moderation"}, {"action", "unban"}, {"user_id", user_id}};
  event["room_id"] = room_or_null(scope);
  return event;
}

boost::json::object purge_event(const std::string& scope, std::string_view user_id,
                                const std::vector<std::string>& message_ids) {
  boost::json::array ids;
  for (const auto& id : message_ids) ids.emplace_back(id);
  return {{"type", "moderation"}, {"action", "purge"}, {"room_id", scope}, {"user_id", user_id}, {"message_ids", ids}};
}

boost::json::object delete_event(const std::string& scope, std::string_view message_id) {
  return {{"type", "moderation"}, {"action", "delete"}, {"room_id", scope}, {"message_id", message_id}};
}

boost::json::object slow_mode_event(const std::string& scope, std::int64_t seconds) {
  return {{"type", "moderation"}, {"action", "slow_mode"}, {"room_id", scope}, {"seconds", seconds}};
}

boost::json::object clear_event(const std::string& scope) {
  return {{"type", "moderation"}, {"action", "clear"}, {"room_id", scope}};
}

std::string banned_json(std::string_view message, const engine::BanState& ban, std::int64_t now_ms) {
  return error_json("banned", message, ban.retry_after_ms(now_ms));
}

boost::json::object presence_counts_json(const std::string& room, const engine::PresenceCounts& counts) {
  boost::json::object o;
  put_counts(o, room, counts);
  return o;
}

boost::json::object presence_frame(const std::string& room, const engine::PresenceCounts& counts,
                                   std::string_view event) {
  boost::json::object o{{"type", "presence"}};
  put_counts(o, room, counts);
  o["event"] = event;
  return o;
}

boost::json::object presence_frame(const std::string& room, const engine::PresenceCounts& counts,
                                   std::string_view event, const std::string& user_id, const std::string& username) {
  auto o = presence_frame(room, counts, event);
  o["user_id"] = user_id.empty() ? boost::json::value(nullptr) : boost::json::value(user_id);
  o["username"] = username;
  return o;
}

std::string role_frame_json(std::string_view user_id, std::string_view role) {
  std::string frame = R"({"type":"role","user_id":)";
  append_json_string(frame, user_id);
  frame += R"(,"role":)";
  append_json_string(frame, role);
  frame += '}';
  return frame;
}

}  // namespace chatorbit::chat
