#pragma once
// MemoryNodes: several chat nodes over one MemoryEngine, in one process. Each node gets
// its own Engine (node()) as a networked engine would give each process its own
// connection: its own subscriber, its own set of subscribed channels and its own broker
// link that a test can take down (MemoryNode::set_broker_down). Everything else (presence,
// bans, admission, sequences) is the shared engine's, as it would be the shared backend's.
// For the multi-node conformance suite (engine/multi_node_conformance.hpp); not used by
// the server.
//
// Delivery keeps MemoryEngine's semantics: a publication is delivered inline, to every
// node subscribed to its channel, before publish() returns; publications from one thread
// arrive in the order published. One subscriber on the shared engine (the dispatcher)
// fans each delivery out; each channel is subscribed on the shared engine while at least
// one node wants it.
//
// Threading: every method may be called from any thread. Node engines hold the shared
// state, so a node may outlive the MemoryNodes that made it.

#include <memory>
#include <string>

#include "core/clock.hpp"
#include "engine/engine.hpp"
#include "engine/memory/memory_engine.hpp"

namespace chatorbit::engine {

/// One node's Engine. Broker calls are the node's own; all other calls are forwarded to
/// the shared MemoryEngine unchanged.
class MemoryNode final : public Engine {
 public:
  struct Shared;
  struct Link;
  explicit MemoryNode(std::shared_ptr<Shared> shared);
  ~MemoryNode() override;
  MemoryNode(const MemoryNode&) = delete;
  MemoryNode& operator=(const MemoryNode&) = delete;

  // --- broker: this node's own ---------------------------------------------------------
  void set_subscriber(Subscriber subscriber) override;
  void subscribe(const std::string& channel) override;
  /// Completes at once, or throws EngineUnavailable while this node's broker is down.
  boost::asio::awaitable<void> subscribed(const std::string& channel) override;
  void unsubscribe(const std::string& channel) override;
  /// While this node's broker is down: delivers nothing and tells `done` why.
  void publish(const std::string& channel, std::shared_ptr<const std::string> payload, PublishDone done = {}) override;
  BrokerHealth broker_health() const override;
  void set_resubscribed(std::function<void()> f) override;
  /// Takes this node's broker link down (true) or back up (false), for tests: while down,
  /// publish() fails, subscribed() throws, deliveries to this node are dropped (its
  /// channels stay wanted). Coming back up runs the resubscribed callback. Other nodes
  /// are unaffected.
  void set_broker_down(bool down);

  // --- forwarded to the shared engine ----------------------------------------------------
  boost::asio::awaitable<void> presence_refresh(std::vector<PresenceEntry> entries, std::chrono::seconds ttl) override;
  boost::asio::awaitable<void> presence_remove(std::vector<PresenceEntry> entries) override;
  boost::asio::awaitable<std::vector<PresenceCounts>> presence_counts(std::vector<std::string> rooms) override;
  boost::asio::awaitable<void> ban(std::string scope, std::string user_id, std::string reason,
                                   std::optional<std::chrono::seconds> ttl) override;
  boost::asio::awaitable<bool> unban(std::string scope, std::string user_id) override;
  boost::asio::awaitable<std::optional<BanState>> ban_state(std::string room_id, std::string user_id) override;
  boost::asio::awaitable<Admission> admit(AdmitRequest request) override;
  boost::asio::awaitable<Admission> rate_hit(std::string key, RateSpec rate) override;
  boost::asio::awaitable<std::vector<std::uint64_t>> reserve_sequences(std::vector<SequenceRequest> requests) override;
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

 private:
  std::shared_ptr<Shared> shared_;
  std::shared_ptr<Link> link_;  ///< what the dispatcher delivers to
};

class MemoryNodes {
 public:
  /// `clock` must outlive every node.
  explicit MemoryNodes(const Clock& clock);
  ~MemoryNodes();
  MemoryNodes(const MemoryNodes&) = delete;
  MemoryNodes& operator=(const MemoryNodes&) = delete;

  /// A new node over the shared engine.
  std::unique_ptr<MemoryNode> node();
  /// The shared engine forgets its sequence counters, as a backend restart would.
  void forget_sequences();
  /// The shared engine, for tests that look at the backend directly.
  MemoryEngine& backend();

 private:
  std::shared_ptr<MemoryNode::Shared> shared_;
};

}  // namespace chatorbit::engine
