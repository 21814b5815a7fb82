#pragma once
// What a publication from the broker becomes before it reaches any session: the frames
// for each protocol version, built once per process, and what the hub must do besides
// sending them (close a banned user's sessions, apply an account event). The Hub posts
// one Delivery to each loop (Hub::on_publication()).
//
// Threading: decode_delivery() is a pure function; call it from any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "chat/publication.hpp"
#include "net/ws_stream.hpp"

namespace chatorbit::chat {

/// Channel names on the broker: the original's per-room channel, plus one for
/// events that concern every room (global bans, account events).
std::string room_channel(const std::string& room);
inline const std::string kControlChannel = "chat_control";

/// One publication, ready for the loops.
struct Delivery {
  char kind = 'M';  ///< 'M' message, 'D' moderation, 'P' presence, 'U' account event
  std::string room;
  bool global = false;    ///< from the control channel: for every session, whatever its room
  std::uint64_t seq = 0;  ///< messages: the per-room number; 0 otherwise
  ws::Frame v1;           ///< null: not sent to version 1 clients
  ws::Frame v2;           ///< null: not sent to version 2 clients
  std::string kick_user;  ///< ban/timeout: this user's sessions are closed with 4003
  std::string kick_json;  ///< the error frame they receive first
  // 'U': whose sessions, and what happened to the account (v2: the role frame).
  std::string account_user;
  std::string revoked_jti;            ///< revoke: that token's sessions; empty: the user's older ones
  std::int64_t revoked_before_s = 0;  ///< revoke without jti: tokens issued before this
  std::string new_role;               ///< role change
  bool revoke = false;
};

/// What decode_delivery() made of a publication.
struct DecodedDelivery {
  /// nullopt: dropped (`dropped` says why), or on a channel that is not chat's.
  std::optional<Delivery> delivery;
  /// Why a publication was refused ("malformed", "unknown kind", "newer version", "bad
  /// account event"): for the log and chatorbit_publications_dropped_total. Empty if not.
  std::string_view dropped;
  /// A moderation event's JSON, pointing into the payload, for the node's observers.
  std::string_view moderation_json;
  /// An account event, for the node's observers.
  std::optional<AccountEvent> account;
};

/// Decodes `payload`, published on `channel`, into the frames every loop appends.
/// `now_ms` (Unix milliseconds) dates the bans it announces, for their retry_after.
DecodedDelivery decode_delivery(std::string_view channel, std::string_view payload, std::int64_t now_ms);

}  // namespace chatorbit::chat
