#pragma once
// The tiny blocking HTTP/1.1 client of chatorbit-bench (/register, /login, /metrics), and
// the parsing of HTTP response heads that the WebSocket upgrade shares.

#include <netinet/in.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chatorbit::bench {

/// ws://host:port/path?query, or http://...; IPv4 (names are resolved with getaddrinfo).
struct Url {
  std::string host;
  std::uint16_t port = 80;
  std::string path = "/";  ///< path and query
  sockaddr_in addr{};
  std::string host_header() const { return host + ":" + std::to_string(port); }
};
/// Throws std::runtime_error on a malformed URL or a name that does not resolve.
Url parse_url(const std::string& url);

struct HttpResult {
  int status = 0;  ///< 0: no answer (connection failed); see error
  std::string body;
  std::string error;
};
/// A tiny blocking HTTP/1.1 client: one request, `Connection: close`, reads to EOF.
HttpResult http_request(const Url& base, std::string_view method, std::string_view path, std::string_view body,
                        int timeout_s = 60);
/// The string value of `"key":"..."` in a flat JSON document (no unescaping).
std::optional<std::string> json_string_field(std::string_view json, std::string_view key);

/// The status code of an HTTP response head ("HTTP/1.1 101 Switching Protocols"); 0 if
/// it is malformed.
int parse_status(std::string_view head);
/// The value of header `name` (lower case, without the colon) in `head`, trimmed.
std::optional<std::string_view> header_value(std::string_view head, std::string_view name);

}  // namespace chatorbit::bench
