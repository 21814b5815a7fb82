#pragma once
// The Redis engine: what chat nodes share, kept in Redis (docs/redis.md lists every key
// and channel). One Redis server (REDIS_ADDR) or a Redis Cluster
// (CHATORBIT_REDIS_CLUSTER, redis_cluster.hpp).
//
// Connections, all on one network thread that the engine owns:
//   commands    scripts and plain commands from every event loop, pipelined on one
//               connection per Redis server (redis_connection.hpp);
//   publisher   PUBLISH (SPUBLISH on a cluster), on its own connection so a message's
//               fan-out never queues behind presence or admission scripts;
//   subscriber  SUBSCRIBE (SSUBSCRIBE) for the rooms this node has members in, and the
//               control channel; one connection per Redis server.
// State that expires is stamped with this node's Clock (scripts get `now` as an
// argument and compare it with the expiry they stored; Redis's own TTLs only collect the
// garbage), so a ManualClock drives TTLs in tests as it does for the memory engine.
//
// Faults: see redis_connection.hpp for how a lost or stalled server is detected. While
// the subscriber connection is down, or back but not yet subscribed to every wanted
// channel, broker_health() reports down; once all are subscribed again the resubscribed
// callback runs (App refills bans and revocations and the hub fills gaps from the store).
// Operations while a command connection is down throw EngineUnavailable at once.
//
// Thread-safety: every method is thread-safe; awaitables complete on the caller's
// executor.

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "engine/engine.hpp"
#include "engine/engine_factory.hpp"
#include "engine/redis/resp.hpp"

namespace chatorbit::engine::redis {

class Router;
class PubSub;
struct Scripts;

/// Where the engine's servers are.
struct RedisTopology {
  bool cluster = false;
  std::vector<RedisEndpoint> nodes;  ///< the server; for a cluster, seed nodes
  /// Where the publisher and subscriber connections to a server really connect, if not
  /// to the server's own address (tests route them through fault proxies to cut one
  /// node's broker link alone). Unset: straight to the server.
  std::function<RedisEndpoint(const RedisEndpoint&)> broker_route;
};

/// One request of a batch: a command, and the key whose hash slot routes it (empty: any
/// server; a cluster sends it to the first).
struct Request {
  std::string slot_key;
  std::vector<std::string> args;
  /// For EVALSHA requests: the script's source, sent with EVAL if the server lacks it.
  const std::string* script = nullptr;
};

class RedisEngine final : public Engine {
 public:
  RedisEngine(RedisTopology topology, RedisSettings settings, const Clock& clock);
  ~RedisEngine() override;
  RedisEngine(const RedisEngine&) = delete;
  RedisEngine& operator=(const RedisEngine&) = delete;

  // --- broker (redis_engine.cpp) ---------------------------------------------------------
  void set_subscriber(Subscriber subscriber) override;
  void subscribe(const std::string& channel) override;
  boost::asio::awaitable<void> subscribed(const std::string& channel) override;
  void unsubscribe(const std::string& channel) override;
  void publish(const std::string& channel, std::shared_ptr<const std::string> payload, PublishDone done = {}) override;
  BrokerHealth broker_health() const override;
  void set_resubscribed(std::function<void()> f) override;

  // --- state (redis_state.cpp) -----------------------------------------------------------
  boost::asio::awaitable<void> presence_refresh(std::vector<PresenceEntry> entries, std::chrono::seconds ttl) override;
  boost::asio::awaitable<void> presence_remove(std::vector<PresenceEntry> entries) override;
  boost::asio::awaitable<std::vector<PresenceCounts>> presence_counts(std::vector<std::string> rooms) override;
  boost::asio::awaitable<void> ban(std::string scope, std::string user_id, std::string reason,
                                   std::optional<std::chrono::seconds> ttl) override;
  boost::asio::awaitable<bool> unban(std::string scope, std::string user_id) override;
  boost::asio::awaitable<std::optional<BanState>> ban_state(std::string room_id, std::string user_id) override;
  boost::asio::awaitable<Admission> admit(AdmitRequest request) override;
  boost::asio::awaitable<Admission> rate_hit(std::string key, RateSpec rate) override;
  boost::asio::awaitable<void> revoke_token(std::string jti, std::chrono::seconds ttl) override;
  boost::asio::awaitable<void> put_token_floor(std::string user_id, std::int64_t not_before_s,
                                               std::chrono::seconds ttl) override;
  boost::asio::awaitable<TokenRevocations> token_revocations() override;
  boost::asio::awaitable<bool> is_token_revoked(std::string jti, std::string user_id, std::int64_t iat) override;
  boost::asio::awaitable<bool> claim_slot(std::string key, std::string member, std::int64_t limit,
                                          std::chrono::seconds ttl) override;
  boost::asio::awaitable<void> release_slot(std::string key, std::string member) override;
  boost::asio::awaitable<void> refresh_slots(std::vector<SlotRef> slots, std::chrono::seconds ttl) override;
  boost::asio::awaitable<std::int64_t> slots_in_use(std::string key) override;
  boost::asio::awaitable<void> record_failure(std::string key, std::chrono::seconds window) override;
  boost::asio::awaitable<std::vector<std::int64_t>> recent_failures(std::string key, std::chrono::seconds window,
                                                                    std::size_t limit) override;
  boost::asio::awaitable<void> clear_failures(std::string key) override;
  boost::asio::awaitable<std::vector<std::uint64_t>> reserve_sequences(std::vector<SequenceRequest> requests) override;

  /// Sends every request (pipelined, one round trip per server) and returns the replies
  /// in request order. Error replies are returned, not thrown (but NOSCRIPT is handled:
  /// see eval()). Throws EngineUnavailable if a server cannot be reached.
  boost::asio::awaitable<std::vector<Reply>> execute(std::vector<Request> requests);
  /// A request that runs `script` (EVALSHA, falling back to EVAL on NOSCRIPT, which
  /// also loads it again after a Redis restart or SCRIPT FLUSH).
  Request eval(const std::string& script_name, std::vector<std::string> keys, std::vector<std::string> args) const;
  /// `name` with the configured key prefix.
  std::string key(std::string_view name) const { return settings_.key_prefix + std::string(name); }

 private:
  std::int64_t now_ms() const;
  /// A fresh member for a sliding-window set: unique across nodes.
  std::string nonce();

  const RedisSettings settings_;
  const Clock& clock_;
  std::unique_ptr<Scripts> scripts_;
  boost::asio::io_context io_;
  std::unique_ptr<Router> router_;     ///< commands
  std::unique_ptr<Router> publisher_;  ///< PUBLISH / SPUBLISH
  std::unique_ptr<PubSub> pubsub_;     ///< subscribers
  std::string node_tag_;               ///< random, for nonces
  std::atomic<std::uint64_t> nonce_counter_{0};
  std::thread thread_;  ///< runs io_; last: started once everything above exists
};

}  // namespace chatorbit::engine::redis
