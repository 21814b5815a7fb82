#pragma once
// ClusterRouter: commands to a Redis Cluster. It loads the slot map (CLUSTER SLOTS) from
// a seed or any known master, keeps one pipelined connection per master, and sends each
// command to the master owning its key's hash slot (CRC16 of the key, or of its {hash
// tag}: the engine tags every key a script touches so that all of them share a slot).
//
// Redirections: MOVED means the map is stale: the command is resent to the named master
// at once and the map is reloaded; ASK (a slot being migrated) sends ASKING and the
// command to the named master, once. At most kMaxRedirects per command; CLUSTERDOWN and
// TRYAGAIN are returned to the caller as the error replies they are. The map is also
// reloaded when a master's connection is lost, and every `map_refresh` while it serves.
//
// Thread-safety: as Router.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "engine/redis/redis_router.hpp"

namespace chatorbit::engine::redis {

/// The cluster hash slot (0..16383) of `key`: CRC16-XMODEM of the key, or of the part
/// between the first '{' and the next '}' when that part is not empty.
std::uint16_t hash_slot(std::string_view key);

class ClusterRouter final : public Router {
 public:
  static constexpr int kMaxRedirects = 5;

  ClusterRouter(boost::asio::io_context& io, std::vector<RedisEndpoint> seeds, const RedisSettings& settings,
                std::string role, Route route = {});
  ~ClusterRouter() override;

  void start() override;
  void stop() override;
  void send(std::string_view slot_key, std::string encoded, ReplyCallback done) override;
  bool up(std::string* detail = nullptr) const override;
  RedisEndpoint endpoint_for(std::string_view slot_key) const override;
  std::vector<RedisEndpoint> endpoints() const override;
  /// Whether a slot map has been loaded (the engine waits for it at start).
  bool map_loaded() const;

 private:
  struct Node {
    RedisEndpoint endpoint;
    std::shared_ptr<Connection> connection;
  };

  void send_to(const std::string& node, std::shared_ptr<const std::string> encoded, ReplyCallback done, int hops,
               bool asking);
  void on_reply(std::shared_ptr<const std::string> encoded, ReplyCallback done, int hops, std::exception_ptr e,
                Reply r);
  /// The node named "host:port", created (and connected) if new. Locked.
  Node& node_locked(const RedisEndpoint& endpoint);
  void refresh_map();
  void apply_map(const Reply& slots, const RedisEndpoint& asked);
  void schedule_refresh(std::chrono::milliseconds after);

  boost::asio::io_context& io_;
  const std::vector<RedisEndpoint> seeds_;
  const RedisSettings settings_;
  const std::string role_;
  const Route route_;

  mutable std::mutex mu_;
  std::map<std::string, Node> nodes_;    ///< by "host:port"
  std::vector<std::string> slot_owner_;  ///< 16384 entries, "" = unknown
  bool map_loaded_ = false;
  bool map_complete_ = false;      ///< every slot has an owner
  std::set<std::string> masters_;  ///< the owners in the map
  bool refreshing_ = false;
  bool stopped_ = false;
  std::size_t next_seed_ = 0;
  std::string map_error_;
  boost::asio::steady_timer refresh_timer_;
};

}  // namespace chatorbit::engine::redis
