#include "chat/wire.hpp"

#include "core/log.hpp"
#include "core/time_format.hpp"

namespace chatorbit::chat {

std::optional<std::string> normalize_room_id(std::string_view raw, std::string* why) {
  if (raw.empty() || raw.size() > 64) {
    if (why) *why = "room_id must be 1 to 64 characters";
    return std::nullopt;
  }
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) {
      if (why) *why = "room_id may only contain a-z, 0-9, _ and -";
      return std::nullopt;
    }
    out.push_back(c);
  }
  return out;
}

ContentCheck check_content(std::string_view text, int max_chars) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  if (text.empty()) return {{}, "invalid", "content is empty"};
  std::size_t chars = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xc0) != 0x80) ++chars;
    // C0 controls and DEL; C1 controls are U+0080-U+009F, encoded as C2 80-9F.
    if (c < 0x20 || c == 0x7f) return {{}, "invalid", "content must not contain control characters"};
    if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xa0) {
      return {{}, "invalid", "content must not contain control characters"};
    }
  }
  if (chars > static_cast<std::size_t>(max_chars)) {
    return {{}, "too_long", "content is longer than " + std::to_string(max_chars) + " characters"};
  }
  return {std::string(text), {}, {}};
}

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  log::append_json_escaped(out, s);
  out.push_back('"');
}

std::string message_json_v1(const store::Message& m) {
  std::string out;
  out.reserve(160 + m.content.size() + m.username.size());
  out += "{\"id\":";
  append_json_string(out, m.id);
  out += ",\"room_id\":";
  append_json_string(out, m.room_id);
  out += ",\"user_id\":";
  append_json_string(out, m.user_id);
  out += ",\"content\":";
  append_json_string(out, m.content);
  out += ",\"timestamp\":";
  append_json_string(out, format_rfc3339(m.timestamp_ns, 9));
  out += ",\"username\":";
  append_json_string(out, m.username);
  out += ",\"seq\":";
  out += std::to_string(m.seq);
  out += '}';
  return out;
}

std::string message_json_v2_from_v1(std::string_view v1) {
  std::string out = "{\"type\":\"message\",";
  out.append(v1.substr(1));
  return out;
}

std::string error_json(std::string_view code, std::string_view message, std::optional<std::int64_t> retry_after_ms,
                       std::string_view cid) {
  std::string out = "{\"type\":\"error\",\"code\":";
  append_json_string(out, code);
  out += ",\"message\":";
  append_json_string(out, message);
  if (retry_after_ms) out += ",\"retry_after_ms\":" + std::to_string(*retry_after_ms);
  if (!cid.empty()) {
    out += ",\"cid\":";
    append_json_string(out, cid);
  }
  out += '}';
  return out;
}

}  // namespace chatorbit::chat
