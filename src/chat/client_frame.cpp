#include "chat/client_frame.hpp"

#include <boost/json/parse.hpp>

#include <algorithm>

namespace chatorbit::chat {

namespace {

/// A field that must be a string if present; null counts as absent.
bool read_string(const boost::json::object& o, std::string_view name, std::optional<std::string>& out) {
  const auto* v = o.if_contains(name);
  if (!v || v->is_null()) return true;
  if (!v->is_string()) return false;
  out = std::string(v->as_string());
  return true;
}

/// A whole number if present (JSON numbers with a fraction or exponent are not).
bool read_whole(const boost::json::object& o, std::string_view name, std::optional<std::int64_t>& out, bool& huge) {
  const auto* v = o.if_contains(name);
  if (!v || v->is_null()) return true;
  if (v->is_int64()) {
    out = v->as_int64();
    return true;
  }
  if (v->is_uint64()) {  // above INT64_MAX
    huge = true;
    return true;
  }
  return false;
}

}  // namespace

ParsedFrame parse_client_frame(std::string_view text) {
  ParsedFrame out;
  boost::system::error_code ec;
  boost::json::parse_options opts;
  opts.max_depth = 16;
  const auto value = boost::json::parse(text, ec, {}, opts);
  if (ec || !value.is_object()) {
    out.error = "frames must be JSON objects";
    return out;
  }
  const auto& o = value.as_object();
  ClientFrame f;
  std::optional<std::string> type, cid;
  // cid first: a refusal of the other fields names it.
  if (!read_string(o, "cid", cid) || !read_string(o, "type", type) || !read_string(o, "room_id", f.room_id) ||
      !read_string(o, "content", f.content)) {
    if (cid) out.cid = *cid;
    out.error = "type, room_id, content and cid must be strings";
    return out;
  }
  if (cid) {
    if (cid->size() > kMaxCidBytes) {
      out.error = "cid must be at most 64 characters";
      return out;
    }
    f.cid = std::move(*cid);
  }
  out.cid = f.cid;
  if (const auto* r = o.if_contains("resend"); r && !r->is_null()) {
    if (!r->is_bool()) {
      out.error = "resend must be true or false";
      return out;
    }
    f.resend = r->as_bool();
  }
  const std::string_view t = type ? std::string_view(*type) : "message";
  if (t == "message") {
    f.type = ClientFrame::Type::message;
  } else if (t == "join") {
    f.type = ClientFrame::Type::join;
  } else if (t == "ping") {
    f.type = ClientFrame::Type::ping;
  } else if (t == "history") {
    f.type = ClientFrame::Type::history;
    std::optional<std::int64_t> before, limit;
    bool before_huge = false, limit_huge = false;
    if (!read_whole(o, "before", before, before_huge) || (before && *before < 1)) {
      out.error = "before must be a whole number of at least 1";
      return out;
    }
    if (before_huge) {
      f.before = o.at("before").as_uint64();
    } else if (before) {
      f.before = static_cast<std::uint64_t>(*before);
    }
    if (!read_whole(o, "limit", limit, limit_huge) || (limit && *limit < 1)) {
      out.error = "limit must be a whole number of at least 1";
      return out;
    }
    if (limit_huge) {
      f.limit = kMaxHistoryLimit;
    } else if (limit) {
      f.limit = static_cast<int>(std::min<std::int64_t>(*limit, kMaxHistoryLimit));
    }
  } else {
    out.error = "unknown frame type";
    return out;
  }
  out.frame = std::move(f);
  return out;
}

}  // namespace chatorbit::chat
