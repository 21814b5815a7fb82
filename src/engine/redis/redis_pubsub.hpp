#pragma once
// The Redis engine's broker half: publishing through a Router, and the subscriber
// connections (one per Redis server that holds a wanted channel; a standalone Redis has
// one). Classic PUBLISH/SUBSCRIBE on one server, sharded SPUBLISH/SSUBSCRIBE on a cluster
// (a sharded channel lives on the master owning its hash slot).
//
// Each channel's state follows what the server confirmed: SUBSCRIBE and UNSUBSCRIBE are
// counted until their confirmations come back, so subscribed() completes only when the
// server has the channel and no change of mind is still on its way. A subscriber
// connection that comes back subscribes every wanted channel again; until all of them
// are confirmed the broker counts as down, then the resubscribed callback runs.
//
// Leaving a channel cuts it where publish order says: unsubscribe() publishes a leave
// marker on the channel (on the publisher connection, so after everything this node
// published before the call) and keeps delivering until the marker comes back, then
// sends UNSUBSCRIBE. So what was published before unsubscribe() is delivered and what
// is published after it is not, though SUBSCRIBE and PUBLISH travel on different
// connections. Subscribing again before the marker is back publishes a join marker: what
// arrives between the two markers was published while the channel was not wanted and is
// dropped, and the subscription is in force once the join marker is back. Markers are
// never delivered, on any node.
//
// Thread-safety: every method may be called from any thread; deliveries and callbacks
// run on the network thread, outside the lock.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "engine/redis/redis_router.hpp"

namespace chatorbit::engine::redis {

class PubSub {
 public:
  /// Publishes through `publisher`; subscribes on `locator.endpoint_for(channel)`, reached
  /// through `route` (routers owned by the caller, outliving this). `prefix` is stripped
  /// from delivered channel names.
  PubSub(boost::asio::io_context& io, Router& publisher, const Router& locator, RedisSettings settings, bool sharded,
         std::string prefix, Route route = {});
  ~PubSub();

  void start();
  void stop();
  void set_subscriber(Subscriber subscriber);
  void set_resubscribed(std::function<void()> f);
  /// `channel` is the full name (prefix included).
  void subscribe(const std::string& channel);
  void unsubscribe(const std::string& channel);
  /// Calls `done` (network thread) once `channel` is in force, or with EngineUnavailable
  /// while its connection is down.
  void when_subscribed(const std::string& channel, std::function<void(std::exception_ptr)> done);
  void publish(const std::string& channel, std::shared_ptr<const std::string> payload, PublishDone done);
  BrokerHealth health() const;

 private:
  /// A leave or join marker published on a channel, not yet seen come back.
  struct Cut {
    std::string marker;
    bool deliver_after;  ///< join marker: what follows it is delivered
  };
  struct Channel {
    bool wanted = false;
    int pending = 0;         ///< (UN)SUBSCRIBE sent, confirmation not yet read
    bool on_server = false;  ///< as the last confirmation said
    std::string shard;       ///< key of the subscriber connection it lives on
    std::deque<Cut> cuts;    ///< in publish order
    bool delivering = true;  ///< while cuts are out: as the last one that came back says
    std::vector<std::function<void(std::exception_ptr)>> waiters;

    /// Whether a publication arriving now is delivered.
    bool delivers() const { return on_server && (cuts.empty() ? wanted && pending == 0 : delivering); }
    /// Whether what is published from now on is delivered.
    bool in_force() const { return wanted && on_server && pending == 0 && cuts.empty(); }
  };
  struct Shard {
    std::shared_ptr<Connection> connection;
    bool up = false;
    bool resyncing = false;  ///< back up, wanted channels not all confirmed yet
    bool was_lost = false;   ///< the resubscribed callback is owed when resync ends
  };

  Shard& shard_for_locked(const std::string& channel, std::string* shard_key);
  void on_state(const std::string& shard_key, bool up, const std::string& detail);
  void on_push(const std::string& shard_key, Reply&& push);
  void send_locked(Shard& shard, const char* verb, const std::string& channel);
  /// Starts a cut on `ch` (subscribed on its server, no confirmation pending); returns
  /// the marker for the caller to publish once the lock is released.
  std::string cut_locked(Channel& ch, bool deliver_after);
  /// A marker came back on `channel`; returns the waiters it put in force.
  std::vector<std::function<void(std::exception_ptr)>> on_marker_locked(const std::string& shard_key,
                                                                        const std::string& channel, Channel& ch,
                                                                        const std::string& marker);
  /// Ends a shard's resync if every wanted channel on it is confirmed; true if it did.
  bool finish_resync_locked(const std::string& shard_key, Shard& shard);
  void arm_relocation();
  /// Cluster: moves each wanted channel whose slot has another master now.
  void relocate();

  boost::asio::io_context& io_;
  Router& publisher_;
  const Router& locator_;
  const RedisSettings settings_;
  const bool sharded_;
  const std::string prefix_;
  const Route route_;  ///< where subscriber connections really go

  mutable std::mutex mu_;
  SubscriberSlot subscriber_;  // not guarded by mu_: called without it
  CallbackSlot<> resubscribed_;
  std::map<std::string, Channel> channels_;
  std::map<std::string, Shard> shards_;
  bool started_ = false;
  const std::string marker_tag_;  ///< random: tells this broker's markers from other nodes'
  std::uint64_t markers_ = 0;
  boost::asio::steady_timer relocate_timer_;  ///< cluster: follows slots that moved
};

}  // namespace chatorbit::engine::redis
