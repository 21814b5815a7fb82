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

/// `v` without leading and trailing spaces and tabs (HTTP's optional white space).
/// Inline, so that pure parsers can use it without linking the HTTP layer.
inline std::string_view trim_ows(std::string_view v) noexcept {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

/// True if a Content-Type header value names application/json (parameters allowed).
bool is_json_content_type(std::string_view value);

/// True if `origin` (an Origin header value, "scheme://host[:port]") names the same host
/// and port as `host` (the Host header), whatever the scheme: behind a TLS proxy the
/// browser says https while the Host header is the same.
bool same_origin(std::string_view origin, std::string_view host);

/// True if `origin` is a page on this machine: "http://" or "https://", then
/// `localhost`, `127.0.0.1` or `[::1]`, then an optional port, and nothing else (no
/// path, no user info: "http://localhost.evil.example" and "http://localhost@evil" are
/// not).
bool is_loopback_origin(std::string_view origin);

/// Whether pages of `origin` may read responses with credentials (CORS): with an
/// allowlist (CHATORBIT_CORS_ORIGINS), if it is listed exactly; without one, if it is
/// a loopback origin on any port (local development: the original's front end on
/// http://localhost:8080). Any other is refused.
bool cors_origin_allowed(std::string_view origin, const std::vector<std::string>& allowlist);

/// Whether a request that rides on the session cookie may have come from where it says.
/// With an allowlist, its Origin must be listed (a missing one is not: browsers send it
/// on every request that could change state). Without one (development, or a front end
/// served from the same host), an Origin that is present must be this host's or a
/// loopback one; no Origin means no browser, so no forgery.
bool cookie_origin_ok(const Request& req, const std::vector<std::string>& allowlist);

/// A response with a JSON body and Content-Type application/json.
Response json_response(Status status, const boost::json::value& body);
/// {"error": message} plus `extra` fields.
Response error_response(Status status, std::string_view message, const boost::json::object& extra = {});

}  // namespace chatorbit::http
