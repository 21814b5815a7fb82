#pragma once
// Method + path routing with named parameters: "/user/{id}" matches "/user/42" with
// id = "42"; a final "{*rest}" segment matches the remainder of the path. Routes are
// added at start-up and read concurrently afterwards (no locking: add() must not be
// called once the server runs).

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/verb.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/http_types.hpp"

namespace chatorbit::http {

/// What a handler sees of one request. Owned by the connection for the request's life.
struct Context {
  Request& req;
  std::string path;  ///< raw path, without the query
  std::string query_string;
  std::vector<std::pair<std::string, std::string>> params;  ///< decoded path parameters
  std::string client_ip;
  std::string request_id;
  std::string route;     ///< matched pattern, for metrics and logs
  std::size_t loop = 0;  ///< index of the event loop serving this connection

  /// A path parameter by name ("" if absent).
  std::string_view param(std::string_view name) const;
  /// A decoded query parameter (first occurrence); nullopt if absent or malformed (see
  /// find_query_param() to tell those apart).
  std::optional<std::string> query(std::string_view name) const;
  /// A cookie from the Cookie header.
  std::optional<std::string> cookie(std::string_view name) const;
  /// The token of an "Authorization: Bearer <token>" header.
  std::optional<std::string> bearer() const;
};

using Handler = std::function<boost::asio::awaitable<Response>(Context&)>;

struct Route {
  bhttp::verb method;
  std::string pattern;
  Handler handler;
  std::vector<std::string> segments;  ///< pattern split on '/'
};

class Router {
 public:
  /// Registers `handler` for `method` on `pattern`. Throws std::logic_error on a duplicate.
  void add(bhttp::verb method, std::string pattern, Handler handler);

  struct Match {
    const Route* route = nullptr;  ///< null: no route for this method (see allowed)
    std::vector<std::pair<std::string, std::string>> params;
    std::vector<bhttp::verb> allowed;  ///< methods the path accepts (empty: unknown path)
    bool bad_encoding = false;         ///< a path segment had a malformed %-escape
  };
  /// Finds the route for (method, path). Literal segments beat parameters.
  Match match(bhttp::verb method, std::string_view path) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

/// Decodes %XX escapes (and '+' as space when `plus_is_space`); nullopt if malformed.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

/// A query parameter as the client sent it: absent, or present with its decoded value,
/// or present but not decodable (`value` empty), so that callers can refuse `?x=%ZZ`
/// instead of mistaking it for a missing `x`.
struct QueryParam {
  bool present = false;
  std::optional<std::string> value;  ///< when present: the decoded value, nullopt if malformed
};
/// The first occurrence of `name` in the raw query string `query` (without the '?').
QueryParam find_query_param(std::string_view query, std::string_view name);

}  // namespace chatorbit::http
