#pragma once
// The multi-node Engine conformance suite: what chat nodes that share one engine backend
// must see, whatever the engine. Each case starts two or three real nodes (App: event
// loops, hub, pipeline, store worker, chat service, HTTP server on 127.0.0.1, port 0),
// each with its own engine made by one NodeBackend, all on one SQLite file and one JWT
// secret, and talks to them as clients do (HTTP and WebSocket, multi_node_conformance_test.cpp).
// The memory engine runs the nodes in one process (memory/memory_nodes.hpp); the Redis
// engine will run the same cases over real connections.
//
// An engine's test file instantiates it:
//
//   INSTANTIATE_TEST_SUITE_P(Memory, MultiNodeConformance,
//                            ::testing::Values(MultiNodeFactory{"Memory", [] {
//                              return std::make_unique<MyNodeBackend>();
//                            }}),
//                            multi_node_factory_name);
//
// What each case promises (a new implementation must do all of it):
//
//   ConcurrentPostsFromTwoNodesReachAThirdNodesViewersOnceInSeqOrder
//     Posters on nodes A and B post at once, pipelined (v2, with cid). Every viewer, on a
//     third node C and on A, receives every message exactly once, in strictly increasing
//     `seq` with no gap: what each viewer sees is the sorted set of acked seqs. Nodes
//     publish in their own commit order, so the engine and hub together must put the
//     room's messages from all nodes back into `seq` order.
//
//   ANodeJoiningABusyRoomMissesNothingBetweenReplayAndLive
//     While A and B keep posting, a client resumes on C (last_seq = k, a seq it saw) in a
//     room C did not follow until then. Replay then live, it receives every seq above k
//     exactly once, in order, up to the last one posted: the history read and the live
//     subscription meet without a gap or an overlap even when the live messages come
//     from other nodes.
//
//   ABanIssuedOnOneNodeIsAppliedOnAnother
//     An admin bans user X from a room through node A's REST API. X's open WebSocket in
//     that room on node B gets an error frame `banned` and is closed with 4003; X's new
//     handshake to B for that room is refused (403 `banned`), and X's connection on B in
//     another room cannot move into it (error `banned`, stays where it was). Bans live
//     in the shared backend and the moderation event reaches every node.
//
//   ARevokedTokenIsRefusedOnAnotherNode
//     A token logged out on node A: its open WebSocket on node B gets `unauthorized` and
//     is closed with 4001, and a new handshake to B with it is refused (401). The
//     revocation announced on the broker reaches every node's revocation list.
//
//   ABackendThatForgetsItsCountersContinuesAboveTheStoredMaximum
//     After posts on A, the backend forgets its sequence counters (a restart without
//     persistence). Posts on B and A then all succeed and get seqs above every seq
//     stored before, none twice.
//
//   APerAddressCapHoldsAcrossNodes
//     CHATORBIT_MAX_CONNECTIONS_PER_IP counts one address's WebSocket sessions on every
//     node together: with a cap of 3, two sessions on A and one on B leave no room for a
//     fourth on either (429); once one closes, a new one is let in on the other node.
//     The count lives in the shared backend (Engine::claim_slot).
//
//   APublishToABrokerThatIsDownFailsVisibly
//     With node A's broker link down (NodeBackend::set_broker_down), a post on A is
//     stored and its sender gets an `unavailable` error (with its cid); A's /readyz
//     answers 503; viewers on B do not receive it live, though it is in the room's
//     history. Node B is unaffected: its /readyz answers 200 and its posts reach its
//     viewers. When A's broker is back, A's /readyz answers 200 again.
//
//   ANodeWhoseSubscriptionDroppedFillsTheGapFromTheStore
//     Node B's broker link is down while A posts, then back. B's viewer receives every
//     acked message once, in seq order, those posted during the outage included: B
//     fills the gap from the store when its subscription is back (chat/gap_fill.hpp).
//
//   FailedLoginsAlternatingNodesMeetOneLimit
//     With CHATORBIT_LOGIN_MAX_FAILURES=3, wrong passwords for one account alternating
//     between A and B are refused with 429 on both after the third: the failed-login
//     throttles count in the shared backend (Engine::record_failure).
//
// Waits are bounded (seconds, generous); nothing asserts on how long something took.

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "engine/engine.hpp"

namespace chatorbit {
class App;
}

namespace chatorbit::engine {

/// One shared backend for the nodes of one test.
class NodeBackend {
 public:
  virtual ~NodeBackend() = default;
  /// A new node's engine. Nodes made by one backend share the broker, presence, bans,
  /// admission and sequences, and nothing with any other backend (for Redis: a fresh key
  /// prefix and channel namespace). Time comes from SystemClock (App's clock). Each node
  /// is owned by one App, destroyed before the backend.
  virtual std::unique_ptr<Engine> make_node() = 0;
  /// The backend loses every sequence counter, as a restart without persistence does.
  virtual void forget_sequences() = 0;
  /// `node` (made by make_node()) loses (true) or regains (false) its broker, as that
  /// node's network link or connection would; the other nodes keep theirs.
  virtual void set_broker_down(Engine& node, bool down) = 0;
};

/// Makes a fresh NodeBackend per test.
struct MultiNodeFactory {
  std::string name;  ///< appears in test names: letters, digits and '_' only
  std::function<std::unique_ptr<NodeBackend>()> make;
};

inline void PrintTo(const MultiNodeFactory& factory, std::ostream* os) { *os << factory.name; }

inline std::string multi_node_factory_name(const ::testing::TestParamInfo<MultiNodeFactory>& info) {
  return info.param.name;
}

/// The fixture: a backend and a temp dir per test; start() brings up nodes on them.
/// TearDown shuts every node down before destroying any (a node's hub must not be gone
/// while another node still publishes to it), then the backend.
class MultiNodeConformance : public ::testing::TestWithParam<MultiNodeFactory> {
 protected:
  MultiNodeConformance();
  ~MultiNodeConformance() override;  // where App is complete
  void SetUp() override;
  void TearDown() override;

  /// Starts `n` more nodes; returns the index of the first.
  std::size_t start(std::size_t n, const std::function<void(Config&)>& adjust = {});
  /// The HTTP port of node `i`.
  int port(std::size_t i) const { return nodes_.at(i).port; }
  void set_broker_down(std::size_t i, bool down) { backend_->set_broker_down(*nodes_.at(i).engine, down); }
  void forget_sequences() { backend_->forget_sequences(); }

  /// The email that config.admins makes an admin on every node.
  static constexpr const char* kAdminEmail = "admin@multinode.test";

 private:
  struct Node {
    std::unique_ptr<App> app;
    Engine* engine = nullptr;  ///< owned by app
    int port = 0;
  };
  std::filesystem::path dir_;
  std::unique_ptr<NodeBackend> backend_;
  std::vector<Node> nodes_;
};

}  // namespace chatorbit::engine
