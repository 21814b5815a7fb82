#include "net/http_types.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>

namespace chatorbit::http {

namespace {

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

}  // namespace

bool is_json_content_type(std::string_view value) {
  return iequals_ascii(trim(value.substr(0, value.find(';'))), "application/json");
}

bool same_origin(std::string_view origin, std::string_view host) {
  const auto scheme = origin.find("://");
  if (scheme == std::string_view::npos || host.empty()) return false;
  return iequals_ascii(origin.substr(scheme + 3), trim(host));
}

bool cookie_origin_ok(const Request& req, const std::vector<std::string>& allowlist) {
  const std::string_view origin = req[bhttp::field::origin];
  if (!allowlist.empty()) return std::find(allowlist.begin(), allowlist.end(), origin) != allowlist.end();
  return origin.empty() || same_origin(origin, req[bhttp::field::host]);
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
