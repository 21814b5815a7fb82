#include "engine/redis/redis_router.hpp"

namespace chatorbit::engine::redis {

std::string describe(const RedisEndpoint& endpoint) {
  const bool v6 = endpoint.host.find(':') != std::string::npos;
  return (v6 ? "[" + endpoint.host + "]" : endpoint.host) + ":" + std::to_string(endpoint.port);
}

StandaloneRouter::StandaloneRouter(boost::asio::io_context& io, const RedisEndpoint& endpoint,
                                   const RedisSettings& settings, std::string name, const Route& route)
    : server_(endpoint),
      connection_(std::make_shared<Connection>(io, routed(route, endpoint), settings, Connection::Mode::commands,
                                               std::move(name) + " " + describe(endpoint), Connection::Events{})) {}

bool StandaloneRouter::up(std::string* detail) const {
  const bool is_up = connection_->up();
  if (!is_up && detail) *detail = connection_->name() + " is not connected";
  return is_up;
}

}  // namespace chatorbit::engine::redis
