#pragma once
// What chat nodes say to each other through the engine's broker: one codec for every
// publication, so that the format is written down once, versioned, and fuzzed.
//
// Wire format (text, so that redis-cli MONITOR stays readable):
//
//   <kind>[ <seq>][ v=<version>]\n<json>
//
// kind: 'M' a chat message (seq = its per-room number; json = the version 1 frame),
// 'D' a moderation event (json = the frame every client gets), 'P' a presence frame,
// 'U' an account event (json = {"action":"role"|"revoke","user_id",...}; never sent to
// clients). Header fields after the kind are space-separated; unknown ones are ignored.
//
// Versioning, for rolling upgrades (nodes of two releases on one broker):
// - additive changes (a new JSON field, a new header field, a new kind) keep the version:
//   older nodes ignore what they do not know;
// - an incompatible change raises `v`. A node drops (and counts) publications of a
//   version above kVersion, so a release that raises it must first ship one that
//   decodes both and still encodes the old one.
// Publications without `v` (the first release, before this codec) are version 1.
// Version 1 decoders of that release read the seq with from_chars up to the first
// space, so " v=1" after the seq is invisible to them.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "auth/account_events.hpp"

namespace chatorbit::chat {

inline constexpr int kPublicationVersion = 1;

enum class PublicationKind : char { message = 'M', moderation = 'D', presence = 'P', account = 'U' };

/// A decoded publication. `json` points into the payload it was decoded from.
struct Publication {
  PublicationKind kind = PublicationKind::message;
  std::uint64_t seq = 0;  ///< messages only
  int version = 1;
  std::string_view json;
};

/// Why decode_publication() refused a payload (for the log and the metric).
enum class PublicationError : std::uint8_t { malformed, unknown_kind, newer_version };

struct DecodedPublication {
  std::optional<Publication> publication;
  PublicationError error{};
};

/// Decodes a payload. Never throws; refuses a missing header line, an unknown kind, a
/// message without a seq, and a version above kPublicationVersion.
DecodedPublication decode_publication(std::string_view payload);

/// A chat message with its per-room number; `v1_json` is message_json_v1().
std::string encode_message(std::uint64_t seq, std::string_view v1_json);
/// A moderation event, as the frame clients receive.
std::string encode_moderation(const boost::json::object& event);
/// A presence frame.
std::string encode_presence(const boost::json::object& frame);
/// An account event: the user's role changed.
std::string encode_role_changed(std::string_view user_id, std::string_view role);
/// An account event: a token of the user was revoked (logout), or every token issued
/// before a time (password change).
std::string encode_tokens_revoked(const auth::AccountEvents::Revocation& revocation);

/// The fields of a moderation event that nodes act on. Absent fields are empty / nullopt.
struct ModerationEvent {
  std::string action;  ///< ban, timeout, unban, delete, clear, slow_mode, purge
  std::string user_id;
  std::optional<std::int64_t> duration_seconds;  ///< timeout
  std::optional<std::int64_t> seconds;           ///< slow_mode
  std::string room_id;                           ///< empty: global (or absent)
};
/// Reads a moderation event's JSON; nullopt if it is not an object with a string action.
std::optional<ModerationEvent> parse_moderation_event(std::string_view json);

/// An account event ('U').
struct AccountEvent {
  bool revoke = false;  ///< else a role change
  std::string user_id;
  std::string role;  ///< role change
  // revoke, as auth::AccountEvents::Revocation:
  std::string jti;  ///< that token; empty: every token of the user issued before not_before_s
  std::int64_t expires_at_s = 0;
  std::int64_t not_before_s = 0;
};
/// Reads an account event's JSON; nullopt unless action is role or revoke and user_id
/// is a non-empty string.
std::optional<AccountEvent> parse_account_event(std::string_view json);

}  // namespace chatorbit::chat
