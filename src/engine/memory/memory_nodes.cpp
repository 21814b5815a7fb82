#include "engine/memory/memory_nodes.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/log.hpp"

namespace chatorbit::engine {

// One node's end of the broker: what the dispatcher delivers to.
struct MemoryNode::Link {
  SubscriberSlot subscriber;
  CallbackSlot<> resubscribed;
  std::atomic<bool> down{false};
  std::unordered_set<std::string> channels;  // guarded by Shared::mu
};

// The backend every node shares: the engine, and which nodes want which channel.
struct MemoryNode::Shared {
  explicit Shared(const Clock& clock) : engine(clock) {
    // The one subscriber on the shared engine. It runs under the engine's delivery lock
    // for the channel, so each node sees a channel's publications in delivery order.
    engine.set_subscriber(
        [this](const std::string& channel, std::shared_ptr<const std::string> payload) { dispatch(channel, payload); });
  }

  void dispatch(const std::string& channel, const std::shared_ptr<const std::string>& payload) {
    std::vector<std::shared_ptr<Link>> to;
    {
      std::lock_guard lock(mu);
      const auto it = channels.find(channel);
      if (it == channels.end()) return;
      to = it->second;
    }
    for (const auto& link : to) {
      if (link->down.load()) continue;  // lost while that node's broker is down
      link->subscriber(channel, payload);
    }
  }

  MemoryEngine engine;
  std::mutex mu;  // channels, and every Link::channels
  std::unordered_map<std::string, std::vector<std::shared_ptr<Link>>> channels;
};

MemoryNode::MemoryNode(std::shared_ptr<Shared> shared)
    : ForwardingEngine(shared->engine), shared_(std::move(shared)), link_(std::make_shared<Link>()) {}

MemoryNode::~MemoryNode() {
  // First, and without the shared lock (a delivery in flight may need it): no call of
  // this node's callbacks runs once these return.
  link_->subscriber.set({});
  link_->resubscribed.set({});
  std::lock_guard lock(shared_->mu);
  for (const auto& channel : link_->channels) {
    auto& links = shared_->channels[channel];
    std::erase(links, link_);
    if (links.empty()) {
      shared_->channels.erase(channel);
      shared_->engine.unsubscribe(channel);
    }
  }
  link_->channels.clear();
}

// --- broker: this node's own -----------------------------------------------------------

void MemoryNode::set_subscriber(Subscriber subscriber) { link_->subscriber.set(std::move(subscriber)); }

void MemoryNode::subscribe(const std::string& channel) {
  std::lock_guard lock(shared_->mu);
  if (!link_->channels.insert(channel).second) return;
  auto& links = shared_->channels[channel];
  if (links.empty()) shared_->engine.subscribe(channel);
  links.push_back(link_);
}

boost::asio::awaitable<void> MemoryNode::subscribed(const std::string&) {
  if (link_->down.load()) throw EngineUnavailable("memory node: broker marked down");
  co_return;
}

void MemoryNode::unsubscribe(const std::string& channel) {
  std::lock_guard lock(shared_->mu);
  if (link_->channels.erase(channel) == 0) return;
  auto& links = shared_->channels[channel];
  std::erase(links, link_);
  if (links.empty()) {
    shared_->channels.erase(channel);
    shared_->engine.unsubscribe(channel);
  }
}

void MemoryNode::publish(const std::string& channel, std::shared_ptr<const std::string> payload, PublishDone done) {
  if (link_->down.load()) {
    if (done) {
      done("memory node: broker marked down");
    } else {
      log::warn("publish_failed", {{"channel", channel}, {"error", "broker marked down"}});
    }
    return;
  }
  shared_->engine.publish(channel, std::move(payload), std::move(done));
}

BrokerHealth MemoryNode::broker_health() const {
  if (link_->down.load()) return {false, "broker marked down"};
  return shared_->engine.broker_health();
}

void MemoryNode::set_resubscribed(std::function<void()> f) { link_->resubscribed.set(std::move(f)); }

void MemoryNode::set_broker_down(bool down) {
  const bool was = link_->down.exchange(down);
  if (!was || down) return;
  link_->resubscribed();  // back up: every channel stayed wanted, so all are in force again now
}

// --- MemoryNodes ------------------------------------------------------------------------------

MemoryNodes::MemoryNodes(const Clock& clock) : shared_(std::make_shared<MemoryNode::Shared>(clock)) {}

MemoryNodes::~MemoryNodes() = default;

std::unique_ptr<MemoryNode> MemoryNodes::node() { return std::make_unique<MemoryNode>(shared_); }

void MemoryNodes::forget_sequences() { shared_->engine.forget_sequences(); }

MemoryEngine& MemoryNodes::backend() { return shared_->engine; }

}  // namespace chatorbit::engine
