#pragma once
// What the gateway lets through, and to which service: the contract's routes, each with
// whether it needs a signed-in caller. A path that is not here is answered at the edge
// (404 or 405) and never reaches a service; a route that needs a caller is refused at
// the edge (401) unless its token is valid. The table must match what the services
// register: gateway_test.cpp holds it to the routes of an all-roles process.

#include <ostream>  // before Beast: Boost 1.81's string_view needs it complete

#include <boost/beast/http/verb.hpp>

#include <string_view>
#include <vector>

namespace chatorbit::gateway {

enum class Service : unsigned char { auth, user, chat };

struct RouteSpec {
  boost::beast::http::verb method;
  std::string_view pattern;
  Service service;
  bool needs_caller;  ///< a valid token, checked at the edge
};

/// Every route the gateway forwards (not the WebSocket upgrade, nor its own /healthz,
/// /readyz, /metrics and /swagger/*).
const std::vector<RouteSpec>& forwarded_routes();

std::string_view service_name(Service s);

}  // namespace chatorbit::gateway
