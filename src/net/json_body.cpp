#include "net/json_body.hpp"

#include <boost/json/parse.hpp>

#include <cmath>

namespace chatorbit::http {

JsonBody::JsonBody(const Request& req, std::string error_message) : error_message_(std::move(error_message)) {
  boost::system::error_code ec;
  // Boost.JSON rejects invalid UTF-8 and nesting deeper than max_depth by default.
  boost::json::parse_options opts;
  opts.max_depth = 16;
  auto value = boost::json::parse(req.body(), ec, {}, opts);
  if (ec) fail(req.body().empty() ? "request body is empty; expected a JSON object" : "request body is not valid JSON");
  if (!value.is_object()) fail("request body must be a JSON object");
  obj_ = std::move(value.as_object());
}

void JsonBody::fail(const std::string& detail) const {
  throw HttpError(Status::bad_request, error_message_, {{"detail", detail}});
}

std::string JsonBody::string(std::string_view key) const {
  auto v = optional_string(key);
  if (!v) fail(std::string(key) + " is required");
  return *v;
}

std::optional<std::string> JsonBody::optional_string(std::string_view key) const {
  const auto* v = obj_.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) fail(std::string(key) + " must be a string");
  return std::string(v->as_string());
}

std::optional<std::int64_t> JsonBody::optional_int(std::string_view key, std::int64_t lo, std::int64_t hi) const {
  const auto* v = obj_.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  std::int64_t n = 0;
  if (v->is_int64()) {
    n = v->as_int64();
  } else if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(hi)) {
    n = static_cast<std::int64_t>(v->as_uint64());
  } else if (v->is_double() && std::trunc(v->as_double()) == v->as_double() && std::abs(v->as_double()) < 9e15) {
    n = static_cast<std::int64_t>(v->as_double());
  } else {
    fail(std::string(key) + " must be a whole number");
  }
  if (n < lo || n > hi) fail(std::string(key) + " must be from " + std::to_string(lo) + " to " + std::to_string(hi));
  return n;
}

std::optional<bool> JsonBody::optional_bool(std::string_view key) const {
  const auto* v = obj_.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_bool()) fail(std::string(key) + " must be true or false");
  return v->as_bool();
}

}  // namespace chatorbit::http
