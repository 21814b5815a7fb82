#pragma once
// The JSON of the events the server broadcasts to clients (docs/protocol.md), each
// built here and nowhere else: moderation events, the `banned` error a user kept out
// by a ban receives, presence frames (and the counts the REST routes return), and the
// v2 role frame. Frames that answer one client (acks, history, welcome) stay with the
// code that sends them; wire.hpp has messages, errors and the JSON string helper.
//
// Key order is part of what is built here: clients of the original compare frames
// loosely, but tests and logs read them, and the order has not changed since the first
// release.

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.hpp"

namespace chatorbit::chat {

// --- moderation events (published as 'D', see publication.hpp) ------------------------
// `scope` is a room id, or empty for a global action. A ban's and an unban's room_id is
// null when global; the other actions exist only in a room.

/// {"type":"moderation","action":"ban"|"timeout","user_id","reason","room_id"[,"duration_seconds"]}:
/// a timeout is a ban with a duration.
boost::json::object ban_event(const std::string& scope, std::string_view user_id, std::string_view reason,
                              std::optional<std::int64_t> duration_seconds);
/// {"type":"moderation","action":"unban","user_id","room_id"}.
boost::json::object unban_event(const std::string& scope, std::string_view user_id);
/// {"type":"moderation","action":"purge","room_id","user_id","message_ids"}: messages of a
/// banned user taken out of the room's history.
boost::json::object purge_event(const std::string& scope, std::string_view user_id,
                                const std::vector<std::string>& message_ids);
/// {"type":"moderation","action":"delete","room_id","message_id"}.
boost::json::object delete_event(const std::string& scope, std::string_view message_id);
/// {"type":"moderation","action":"slow_mode","room_id","seconds"} (0: off).
boost::json::object slow_mode_event(const std::string& scope, std::int64_t seconds);
/// {"type":"moderation","action":"clear","room_id"}.
boost::json::object clear_event(const std::string& scope);

/// The error frame a user kept out by `ban` receives ({"type":"error","code":"banned",...}),
/// with retry_after_ms until the ban ends as of `now_ms` (BanState::retry_after_ms), none
/// if it is permanent. `message` says where: the room, that room, everywhere.
std::string banned_json(std::string_view message, const engine::BanState& ban, std::int64_t now_ms);

// --- presence (published as 'P') -------------------------------------------------------

/// {"room_id","online","chatters","viewers"}: a room's counts, as the REST routes give
/// them (callers may append fields).
boost::json::object presence_counts_json(const std::string& room, const engine::PresenceCounts& counts);
/// {"type":"presence","room_id","online","chatters","viewers","event"}: a room's presence
/// frame (v2); `event` is `count` for a periodic count of a large room.
boost::json::object presence_frame(const std::string& room, const engine::PresenceCounts& counts,
                                   std::string_view event);
/// The same for a `join` or `leave` of one user, with "user_id" (null: a viewer without
/// an account) and "username" appended.
boost::json::object presence_frame(const std::string& room, const engine::PresenceCounts& counts,
                                   std::string_view event, const std::string& user_id, const std::string& username);

// --- account events ----------------------------------------------------------------------

/// {"type":"role","user_id","role"}: a v2 client's own account has a new role.
std::string role_frame_json(std::string_view user_id, std::string_view role);

}  // namespace chatorbit::chat
