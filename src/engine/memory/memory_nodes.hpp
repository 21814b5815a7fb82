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
#include "engine/forwarding_engine.hpp"
#include "engine/memory/memory_engine.hpp"

namespace chatorbit::engine {

/// One node's Engine. Broker calls are the node's own; all other calls are forwarded to
/// the shared MemoryEngine unchanged (ForwardingEngine).
class MemoryNode final : public ForwardingEngine {
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
