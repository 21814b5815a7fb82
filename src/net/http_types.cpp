#include "net/http_types.hpp"

#include <boost/json/serialize.hpp>

namespace chatorbit::http {

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
