#pragma once
// Where a command goes. A Router owns the command connections of one engine and sends
// each command to the server that holds its key: the one server of a standalone Redis
// (StandaloneRouter, here), or the master owning the key's hash slot in a Redis Cluster
// (ClusterRouter, redis_cluster.hpp), which also follows MOVED and ASK redirections.
//
// Thread-safety: send() and up() from any thread; start()/stop() once each. Replies
// arrive on the engine's network thread.

#include <boost/asio/io_context.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "engine/engine_factory.hpp"
#include "engine/redis/redis_connection.hpp"

namespace chatorbit::engine::redis {

/// Where a connection to a server really goes (see RedisTopology::broker_route); empty:
/// to the server itself.
using Route = std::function<RedisEndpoint(const RedisEndpoint&)>;

/// `endpoint` through `route`, if there is one.
inline RedisEndpoint routed(const Route& route, const RedisEndpoint& endpoint) {
  return route ? route(endpoint) : endpoint;
}

class Router {
 public:
  virtual ~Router() = default;
  virtual void start() = 0;
  virtual void stop() = 0;
  /// Sends one encoded command whose keys all hash to the slot of `slot_key` (empty: any
  /// server). `done` gets the reply, after redirections, on the network thread.
  virtual void send(std::string_view slot_key, std::string encoded, ReplyCallback done) = 0;
  /// Whether every server's command connection is up; `detail` says which is not.
  virtual bool up(std::string* detail = nullptr) const = 0;
  /// The server that owns `slot_key` now (for a cluster's sharded subscriptions).
  virtual RedisEndpoint endpoint_for(std::string_view slot_key) const = 0;
  /// Every server the router knows (a cluster's masters).
  virtual std::vector<RedisEndpoint> endpoints() const = 0;
};

/// One Redis server, one pipelined connection.
class StandaloneRouter final : public Router {
 public:
  StandaloneRouter(boost::asio::io_context& io, const RedisEndpoint& endpoint, const RedisSettings& settings,
                   std::string name, const Route& route = {});
  void start() override { connection_->start(); }
  void stop() override { connection_->stop(); }
  void send(std::string_view, std::string encoded, ReplyCallback done) override {
    connection_->send(std::move(encoded), std::move(done));
  }
  bool up(std::string* detail = nullptr) const override;
  RedisEndpoint endpoint_for(std::string_view) const override { return server_; }
  std::vector<RedisEndpoint> endpoints() const override { return {server_}; }

 private:
  RedisEndpoint server_;
  std::shared_ptr<Connection> connection_;
};

/// "host:port", for names and logs.
std::string describe(const RedisEndpoint& endpoint);

}  // namespace chatorbit::engine::redis
