#pragma once
// Request/response types shared by the router, the server and the services, and the
// helpers that turn outcomes into the JSON bodies clients expect.

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/value.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chatorbit::http {

namespace bhttp = boost::beast::http;
using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;
using Status = bhttp::status;

/// An outcome to report to the client: `status` with body {"error": message, ...extra}.
/// Thrown by handlers; the server turns it into a response. Never used for bugs.
class HttpError : public std::runtime_error {
 public:
  HttpError(Status status, std::string message, boost::json::object extra = {})
      : std::runtime_error(message), status_(status), extra_(std::move(extra)) {}
  Status status() const { return status_; }
  const boost::json::object& extra() const { return extra_; }
  /// Extra response headers (e.g. Retry-After).
  std::vector<std::pair<std::string, std::string>> headers;

 private:
  Status status_;
  boost::json::object extra_;
};

/// A response with a JSON body and Content-Type application/json.
Response json_response(Status status, const boost::json::value& body);
/// {"error": message} plus `extra` fields.
Response error_response(Status status, std::string_view message, const boost::json::object& extra = {});

}  // namespace chatorbit::http
