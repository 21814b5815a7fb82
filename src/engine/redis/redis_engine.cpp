// RedisEngine: the network thread, the bridge from callbacks to awaitables, and the
// broker (redis_pubsub.cpp does the subscriptions). The state operations are in
// redis_state.cpp.

#include "engine/redis/redis_engine.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <random>

#include "core/log.hpp"
#include "engine/redis/redis_cluster.hpp"
#include "engine/redis/redis_pubsub.hpp"
#include "engine/redis/redis_router.hpp"
#include "engine/redis/redis_scripts.hpp"

namespace chatorbit::engine::redis {

namespace asio = boost::asio;

namespace {

std::unique_ptr<Router> make_router(asio::io_context& io, const RedisTopology& topology, const RedisSettings& settings,
                                    const std::string& role, const Route& route) {
  if (topology.cluster) return std::make_unique<ClusterRouter>(io, topology.nodes, settings, role, route);
  return std::make_unique<StandaloneRouter>(io, topology.nodes.at(0), settings, role, route);
}

// A copyable callback that completes `handler` on its own executor (the awaiting
// coroutine's), from whichever thread calls it.
template <class T, class Handler>
std::function<void(std::exception_ptr, T)> resume_on_caller(Handler handler) {
  auto h = std::make_shared<Handler>(std::move(handler));
  auto ex = asio::get_associated_executor(*h);
  return [h, ex](std::exception_ptr e, T value) {
    asio::post(ex, [h, e, v = std::move(value)]() mutable { std::move (*h)(e, std::move(v)); });
  };
}

// One batch of replies on its way back to an awaiting coroutine.
struct Batch {
  std::function<void(std::exception_ptr, std::vector<Reply>)> finish;  ///< posts to the caller's executor
  std::vector<Reply> replies;
  std::size_t left = 0;
  std::exception_ptr error;  ///< the first failure: the batch fails as a whole
  std::mutex mu;             // replies for one batch come from several connections' callbacks

  void complete_one(std::size_t index, std::exception_ptr e, Reply&& r) {
    std::unique_lock lock(mu);
    if (e && !error) error = e;
    if (!e) replies[index] = std::move(r);
    if (--left > 0) return;
    lock.unlock();
    finish(error, std::move(replies));
  }
};

}  // namespace

RedisEngine::RedisEngine(RedisTopology topology, RedisSettings settings, const Clock& clock)
    : settings_(std::move(settings)), clock_(clock), scripts_(std::make_unique<Scripts>()) {
  if (topology.nodes.empty()) throw ConfigError("redis: no server address given");
  router_ = make_router(io_, topology, settings_, "commands", {});
  publisher_ = make_router(io_, topology, settings_, "publisher", topology.broker_route);
  // Subscriptions go where the channel lives: the one (broker) server, or the master
  // that the command router's slot map names.
  const Router& locator = topology.cluster ? *router_ : *publisher_;
  pubsub_ = std::make_unique<PubSub>(io_, *publisher_, locator, settings_, topology.cluster, settings_.key_prefix,
                                     topology.broker_route);
  std::random_device rd;
  node_tag_ = std::to_string(rd()) + std::to_string(rd());
  router_->start();
  publisher_->start();
  pubsub_->start();
  thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(io_);
    io_.run();
  });
  if (topology.cluster) {
    // Nothing can be routed before the slot map is in: give it the connect timeout,
    // then go on (commands fail as unavailable until it loads).
    const auto deadline = std::chrono::steady_clock::now() + settings_.connect_timeout;
    const auto loaded = [this] {
      return static_cast<ClusterRouter&>(*router_).map_loaded() &&
             static_cast<ClusterRouter&>(*publisher_).map_loaded();
    };
    while (!loaded() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds{2});
    }
    if (!loaded()) log::warn("redis_cluster_map_missing", {{"wait_ms", settings_.connect_timeout.count()}});
  }
}

RedisEngine::~RedisEngine() {
  pubsub_->stop();
  publisher_->stop();
  router_->stop();
  // Let the stops run (they fail what still waits), then end the thread.
  asio::post(io_, [this] { io_.stop(); });
  thread_.join();
}

std::int64_t RedisEngine::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now().time_since_epoch()).count();
}

std::string RedisEngine::nonce() { return node_tag_ + ":" + std::to_string(nonce_counter_++); }

Request RedisEngine::eval(const std::string& script_name, std::vector<std::string> keys,
                          std::vector<std::string> args) const {
  const Script& script = scripts_->at(script_name);
  Request r;
  r.slot_key = keys.empty() ? std::string{} : keys.front();
  r.args.reserve(3 + keys.size() + args.size());
  r.args.push_back("EVALSHA");
  r.args.push_back(script.sha);
  r.args.push_back(std::to_string(keys.size()));
  for (auto& k : keys) r.args.push_back(std::move(k));
  for (auto& a : args) r.args.push_back(std::move(a));
  r.script = &script.source;
  return r;
}

asio::awaitable<std::vector<Reply>> RedisEngine::execute(std::vector<Request> requests) {
  if (requests.empty()) co_return std::vector<Reply>{};
  auto initiate = [this, &requests](auto handler) {
    auto batch = std::make_shared<Batch>();
    batch->finish = resume_on_caller<std::vector<Reply>>(std::move(handler));
    batch->replies.resize(requests.size());
    batch->left = requests.size();
    for (std::size_t i = 0; i < requests.size(); ++i) {
      auto req = std::make_shared<Request>(std::move(requests[i]));
      std::string encoded;
      encode_command(encoded, req->args);
      router_->send(req->slot_key, std::move(encoded), [this, batch, i, req](std::exception_ptr e, Reply r) {
        // A server that lost its script cache (restarted, SCRIPT FLUSH) runs it from the
        // source, which caches it again for the next EVALSHA.
        if (!e && r.is_error() && req->script && r.str.rfind("NOSCRIPT", 0) == 0) {
          std::vector<std::string> args = req->args;
          args[0] = "EVAL";
          args[1] = *req->script;
          std::string again;
          encode_command(again, args);
          router_->send(req->slot_key, std::move(again),
                        [batch, i](std::exception_ptr e2, Reply r2) { batch->complete_one(i, e2, std::move(r2)); });
          return;
        }
        batch->complete_one(i, e, std::move(r));
      });
    }
  };
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, std::vector<Reply>)>(
      std::move(initiate), asio::use_awaitable);
}

// --- broker --------------------------------------------------------------------------

void RedisEngine::set_subscriber(Subscriber subscriber) { pubsub_->set_subscriber(std::move(subscriber)); }

void RedisEngine::subscribe(const std::string& channel) { pubsub_->subscribe(key(channel)); }

void RedisEngine::unsubscribe(const std::string& channel) { pubsub_->unsubscribe(key(channel)); }

asio::awaitable<void> RedisEngine::subscribed(const std::string& channel) {
  auto initiate = [this, name = key(channel)](auto handler) {
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    auto ex = asio::get_associated_executor(*h);
    pubsub_->when_subscribed(
        name, [h, ex](std::exception_ptr e) { asio::post(ex, [h, e]() mutable { std::move (*h)(e); }); });
  };
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr)>(std::move(initiate),
                                                                                          asio::use_awaitable);
}

void RedisEngine::publish(const std::string& channel, std::shared_ptr<const std::string> payload, PublishDone done) {
  pubsub_->publish(key(channel), std::move(payload), std::move(done));
}

BrokerHealth RedisEngine::broker_health() const {
  std::string detail;
  if (!router_->up(&detail)) return {false, "commands: " + detail};
  return pubsub_->health();
}

void RedisEngine::set_resubscribed(std::function<void()> f) { pubsub_->set_resubscribed(std::move(f)); }

}  // namespace chatorbit::engine::redis
