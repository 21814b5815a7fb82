#include "chat/delivery.hpp"

#include "chat/events_json.hpp"
#include "chat/wire.hpp"
#include "net/ws_frame.hpp"

namespace chatorbit::chat {

namespace {

constexpr std::string_view kRoomPrefix = "chat_room:";

ws::Frame text_frame(std::string_view json) {
  return std::make_shared<const std::string>(ws::make_frame(ws::Opcode::text, json));
}

std::string_view why(PublicationError e) {
  switch (e) {
    case PublicationError::newer_version: return "newer version";
    case PublicationError::unknown_kind: return "unknown kind";
    case PublicationError::malformed: break;
  }
  return "malformed";
}

}  // namespace

std::string room_channel(const std::string& room) { return std::string(kRoomPrefix) + room; }

DecodedDelivery decode_delivery(std::string_view channel, std::string_view payload, std::int64_t now_ms) {
  DecodedDelivery out;
  const auto decoded = decode_publication(payload);
  if (!decoded.publication) {
    out.dropped = why(decoded.error);
    return out;
  }
  const Publication& pub = *decoded.publication;
  const std::string_view json = pub.json;
  Delivery d;
  d.kind = static_cast<char>(pub.kind);
  if (channel == kControlChannel) {
    d.global = true;
  } else if (channel.starts_with(kRoomPrefix)) {
    d.room = channel.substr(kRoomPrefix.size());
  } else {
    return out;
  }
  switch (pub.kind) {
    case PublicationKind::message:
      d.seq = pub.seq;
      d.v1 = text_frame(json);
      d.v2 = text_frame(message_json_v2_from_v1(json));
      break;
    case PublicationKind::moderation: {
      out.moderation_json = json;
      d.v1 = d.v2 = text_frame(json);
      const auto event = parse_moderation_event(json);
      if (event && !event->user_id.empty() && (event->action == "ban" || event->action == "timeout")) {
        d.kick_user = event->user_id;
        // The ban the event announces, as it stands now: it ends after its duration.
        const engine::BanState ban{d.room, {}, event->duration_seconds ? now_ms + *event->duration_seconds * 1000 : 0};
        d.kick_json = banned_json(d.global ? "you are banned" : "you are banned from this room", ban, now_ms);
      }
      break;
    }
    case PublicationKind::presence: d.v2 = text_frame(json); break;
    case PublicationKind::account: {
      auto event = parse_account_event(json);
      if (!event) {
        out.dropped = "bad account event";
        return out;
      }
      d.account_user = event->user_id;
      d.revoke = event->revoke;
      d.revoked_jti = event->jti;
      d.revoked_before_s = event->not_before_s;
      d.new_role = event->role;
      if (!d.revoke) d.v2 = text_frame(role_frame_json(d.account_user, d.new_role));
      out.account = std::move(event);
      break;
    }
  }
  out.delivery = std::move(d);
  return out;
}

}  // namespace chatorbit::chat
