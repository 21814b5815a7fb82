#include "chat/publication.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <charconv>

namespace chatorbit::chat {

namespace {

constexpr std::string_view kVersionField = " v=1";
static_assert(kPublicationVersion == 1, "kVersionField spells the version");

std::optional<std::uint64_t> parse_number(std::string_view s) {
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::string with_header(std::string head, std::string_view json) {
  head += kVersionField;
  head += '\n';
  head += json;
  return head;
}

std::optional<boost::json::object> parse_object(std::string_view json) {
  boost::system::error_code ec;
  boost::json::parse_options opts;
  opts.max_depth = 16;
  auto v = boost::json::parse(json, ec, {}, opts);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

std::string string_field(const boost::json::object& o, std::string_view name) {
  const auto* f = o.if_contains(name);
  return f && f->is_string() ? std::string(f->as_string()) : std::string();
}

std::optional<std::int64_t> int_field(const boost::json::object& o, std::string_view name) {
  const auto* f = o.if_contains(name);
  if (f && f->is_int64()) return f->as_int64();
  return std::nullopt;
}

}  // namespace

DecodedPublication decode_publication(std::string_view payload) {
  DecodedPublication out;
  const auto nl = payload.find('\n');
  if (nl == std::string_view::npos || nl == 0) {
    out.error = PublicationError::malformed;
    return out;
  }
  Publication p;
  switch (payload[0]) {
    case 'M': p.kind = PublicationKind::message; break;
    case 'D': p.kind = PublicationKind::moderation; break;
    case 'P': p.kind = PublicationKind::presence; break;
    case 'U': p.kind = PublicationKind::account; break;
    default: out.error = PublicationError::unknown_kind; return out;
  }
  std::string_view header = payload.substr(1, nl - 1);
  bool first = true;
  while (!header.empty()) {
    if (header.front() != ' ') {
      out.error = PublicationError::malformed;
      return out;
    }
    header.remove_prefix(1);
    const auto field = header.substr(0, header.find(' '));
    header.remove_prefix(field.size());
    if (field.rfind("v=", 0) == 0) {
      const auto v = parse_number(field.substr(2));
      if (!v || *v == 0) {
        out.error = PublicationError::malformed;
        return out;
      }
      if (*v > static_cast<std::uint64_t>(kPublicationVersion)) {
        out.error = PublicationError::newer_version;
        return out;
      }
      p.version = static_cast<int>(*v);
    } else if (first && p.kind == PublicationKind::message) {
      const auto seq = parse_number(field);
      if (!seq) {
        out.error = PublicationError::malformed;
        return out;
      }
      p.seq = *seq;
    }  // other fields: from a newer release of this version, ignored
    first = false;
  }
  if (p.kind == PublicationKind::message && p.seq == 0) {
    out.error = PublicationError::malformed;
    return out;
  }
  p.json = payload.substr(nl + 1);
  out.publication = p;
  return out;
}

std::string encode_message(std::uint64_t seq, std::string_view v1_json) {
  return with_header("M " + std::to_string(seq), v1_json);
}

std::string encode_moderation(const boost::json::object& event) {
  return with_header("D", boost::json::serialize(event));
}

std::string encode_presence(const boost::json::object& frame) {
  return with_header("P", boost::json::serialize(frame));
}

std::string encode_role_changed(std::string_view user_id, std::string_view role) {
  return with_header(
      "U", boost::json::serialize(boost::json::object{{"action", "role"}, {"user_id", user_id}, {"role", role}}));
}

std::string encode_tokens_revoked(const auth::AccountEvents::Revocation& r) {
  return with_header("U", boost::json::serialize(boost::json::object{{"action", "revoke"},
                                                                     {"user_id", r.user_id},
                                                                     {"jti", r.jti},
                                                                     {"expires_at", r.expires_at_s},
                                                                     {"not_before", r.not_before_s}}));
}

std::optional<ModerationEvent> parse_moderation_event(std::string_view json) {
  const auto o = parse_object(json);
  if (!o) return std::nullopt;
  ModerationEvent e;
  e.action = string_field(*o, "action");
  if (e.action.empty()) return std::nullopt;
  e.user_id = string_field(*o, "user_id");
  e.room_id = string_field(*o, "room_id");
  e.duration_seconds = int_field(*o, "duration_seconds");
  e.seconds = int_field(*o, "seconds");
  return e;
}

std::optional<AccountEvent> parse_account_event(std::string_view json) {
  const auto o = parse_object(json);
  if (!o) return std::nullopt;
  const auto action = string_field(*o, "action");
  AccountEvent e;
  e.user_id = string_field(*o, "user_id");
  if (e.user_id.empty() || (action != "role" && action != "revoke")) return std::nullopt;
  e.revoke = action == "revoke";
  e.role = string_field(*o, "role");
  e.jti = string_field(*o, "jti");
  e.expires_at_s = int_field(*o, "expires_at").value_or(0);
  e.not_before_s = int_field(*o, "not_before").value_or(0);
  return e;
}

}  // namespace chatorbit::chat
