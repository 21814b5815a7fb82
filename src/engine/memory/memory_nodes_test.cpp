// MemoryNodes: the multi-node conformance suite over one MemoryEngine, plus the wrapper's
// own promises (fan-out to the nodes that want a channel, per-node broker failure).

#include "engine/memory/memory_nodes.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "core/run_blocking.hpp"
#include "engine/multi_node_conformance.hpp"

namespace chatorbit::engine {
namespace {

class MemoryNodeBackend final : public NodeBackend {
 public:
  std::unique_ptr<Engine> make_node() override { return nodes_.node(); }
  void forget_sequences() override { nodes_.forget_sequences(); }
  void set_broker_down(Engine& node, bool down) override { static_cast<MemoryNode&>(node).set_broker_down(down); }

 private:
  MemoryNodes nodes_{SystemClock::instance()};
};

INSTANTIATE_TEST_SUITE_P(Memory, MultiNodeConformance,
                         ::testing::Values(MultiNodeFactory{"Memory",
                                                            [] { return std::make_unique<MemoryNodeBackend>(); }}),
                         multi_node_factory_name);

std::shared_ptr<const std::string> text(std::string s) { return std::make_shared<const std::string>(std::move(s)); }

struct Recorder {
  std::vector<std::string> got;
  Subscriber subscriber() {
    return
        [this](const std::string& channel, std::shared_ptr<const std::string> p) { got.push_back(channel + ":" + *p); };
  }
};

class MemoryNodesTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  MemoryNodes nodes_{clock_};
};

TEST_F(MemoryNodesTest, PublicationReachesEveryNodeSubscribedToTheChannel) {
  auto a = nodes_.node();
  auto b = nodes_.node();
  auto c = nodes_.node();
  Recorder ra, rb, rc;
  a->set_subscriber(ra.subscriber());
  b->set_subscriber(rb.subscriber());
  c->set_subscriber(rc.subscriber());
  a->subscribe("x");
  b->subscribe("x");
  b->subscribe("x");  // idempotent: still one delivery
  c->subscribe("y");
  a->publish("x", text("1"));
  c->publish("x", text("2"));
  EXPECT_EQ(ra.got, (std::vector<std::string>{"x:1", "x:2"}));
  EXPECT_EQ(rb.got, (std::vector<std::string>{"x:1", "x:2"}));
  EXPECT_TRUE(rc.got.empty());
}

TEST_F(MemoryNodesTest, UnsubscribingOneNodeKeepsTheChannelForTheOthers) {
  auto a = nodes_.node();
  auto b = nodes_.node();
  Recorder ra, rb;
  a->set_subscriber(ra.subscriber());
  b->set_subscriber(rb.subscriber());
  a->subscribe("x");
  b->subscribe("x");
  a->unsubscribe("x");
  b->publish("x", text("1"));
  EXPECT_TRUE(ra.got.empty());
  EXPECT_EQ(rb.got, (std::vector<std::string>{"x:1"}));
  b->unsubscribe("x");
  EXPECT_EQ(nodes_.backend().tracked_keys(), 0u);
  {
    auto gone = nodes_.node();
    gone->subscribe("z");
  }
  EXPECT_EQ(nodes_.backend().tracked_keys(), 0u) << "a destroyed node's channels are released";
}

TEST_F(MemoryNodesTest, ABrokerDownAffectsThatNodeOnly) {
  auto a = nodes_.node();
  auto b = nodes_.node();
  Recorder ra, rb;
  a->set_subscriber(ra.subscriber());
  b->set_subscriber(rb.subscriber());
  int resubscribed = 0;
  a->set_resubscribed([&] { ++resubscribed; });
  a->subscribe("x");
  b->subscribe("x");
  a->set_broker_down(true);
  std::string error = "not called";
  a->publish("x", text("lost"), [&](std::string_view e) { error = std::string(e); });
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(a->broker_health().up);
  EXPECT_THROW(run_blocking(a->subscribed("x")), EngineUnavailable);
  b->publish("x", text("1"));  // b is fine; a misses it
  EXPECT_TRUE(b->broker_health().up);
  run_blocking(b->subscribed("x"));
  a->set_broker_down(false);
  EXPECT_EQ(resubscribed, 1);
  b->publish("x", text("2"));
  EXPECT_EQ(ra.got, (std::vector<std::string>{"x:2"}));
  EXPECT_EQ(rb.got, (std::vector<std::string>{"x:1", "x:2"}));
}

TEST_F(MemoryNodesTest, StateIsSharedAndSequencesCanBeForgotten) {
  auto a = nodes_.node();
  auto b = nodes_.node();
  run_blocking(a->ban("r", "u", "spam", std::nullopt));
  EXPECT_TRUE(run_blocking(b->ban_state("r", "u")).has_value());
  std::vector<SequenceRequest> first{{"r", 3, 0}};
  EXPECT_EQ(run_blocking(a->reserve_sequences(std::move(first))).at(0), 1u);
  std::vector<SequenceRequest> second{{"r", 1, std::nullopt}};
  EXPECT_EQ(run_blocking(b->reserve_sequences(std::move(second))).at(0), 4u);
  nodes_.forget_sequences();
  std::vector<SequenceRequest> third{{"r", 1, std::nullopt}};
  EXPECT_EQ(run_blocking(a->reserve_sequences(std::move(third))).at(0), 0u);
}

}  // namespace
}  // namespace chatorbit::engine
