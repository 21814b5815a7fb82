#include "net/http_types.hpp"

#include <boost/json/serialize.hpp>

#include <boost/beast/core/string.hpp>

#include <algorithm>

namespace chatorbit::http {

bool is_json_content_type(std::string_view value) {
  return boost::beast::iequals(trim_ows(value.substr(0, value.find(';'))), "application/json");
}

bool same_origin(std::string_view origin, std::string_view host) {
  const auto scheme = origin.find("://");
  if (scheme == std::string_view::npos || host.empty()) return false;
  return boost::beast::iequals(origin.substr(scheme + 3), trim_ows(host));
}

bool is_loopback_origin(std::string_view origin) {
  std::string_view rest;
  if (origin.starts_with("http://")) {
    rest = origin.substr(7);
  } else if (origin.starts_with("https://")) {
    rest = origin.substr(8);
  } else {
    return false;
  }
  std::string_view port;
  for (const std::string_view host : {"localhost", "127.0.0.1", "[::1]"}) {
    if (rest.size() < host.size() || !boost::beast::iequals(rest.substr(0, host.size()), host)) continue;
    port = rest.substr(host.size());
    if (port.empty()) return true;
    if (port.front() != ':' || port.size() < 2 || port.size() > 6) return false;
    return std::all_of(port.begin() + 1, port.end(), [](char c) { return c >= '0' && c <= '9'; });
  }
  return false;
}

bool cors_origin_allowed(std::string_view origin, const std::vector<std::string>& allowlist) {
  if (!allowlist.empty()) return std::find(allowlist.begin(), allowlist.end(), origin) != allowlist.end();
  return is_loopback_origin(origin);
}

bool cookie_origin_ok(const Request& req, const std::vector<std::string>& allowlist) {
  const std::string_view origin = req[bhttp::field::origin];
  if (!allowlist.empty()) return cors_origin_allowed(origin, allowlist);
  return origin.empty() || same_origin(origin, req[bhttp::field::host]) || is_loopback_origin(origin);
}

Response json_response(Status status, const boost::json::value& body) {
  Response res{status, 11};
  res.set(bhttp::field::content_type, "application/json; charset=utf-8");
  res.set(bhttp::field::cache_control, "no-store");
  res.body() = boost::json::serialize(body);
  return res;
}

Response error_response(Status status, std::string_view message, const boost::json::object& extra) {
  boost::json::object body;
  body["error"] = message;
  for (const auto& kv : extra) body[kv.key()] = kv.value();
  return json_response(status, body);
}

}  // namespace chatorbit::http
