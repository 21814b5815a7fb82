// The Redis engine against real redis-server processes (started for the test run by
// tools/test_servers.py, test_redis.hpp): the engine conformance suite on one server
// and on a three-master cluster, the multi-node suite on one server, and what only a
// networked engine has (a lost or stalled server, NOSCRIPT, the slot map).

#include "engine/redis/redis_engine.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "core/run_blocking.hpp"
#include "engine/engine_conformance.hpp"
#include "engine/forwarding_engine.hpp"
#include "engine/multi_node_conformance.hpp"
#include "engine/redis/fault_proxy.hpp"
#include "engine/redis/redis_cluster.hpp"
#include "engine/redis/test_redis.hpp"

namespace chatorbit::engine::redis {
namespace {

using test_redis::FaultProxy;

// A key prefix no other test (process) uses: tests share the servers.
std::string fresh_prefix() {
  static std::atomic<int> counter{0};
  static const unsigned salt = std::random_device{}();
  return "t" + std::to_string(::getpid()) + "." + std::to_string(salt % 100000) + "." + std::to_string(counter++) + ":";
}

RedisSettings test_settings(std::string prefix) {
  RedisSettings s;
  s.key_prefix = std::move(prefix);
  // Short enough that a stalled server is found within a test's patience.
  s.command_timeout = std::chrono::milliseconds{800};
  s.connect_timeout = std::chrono::milliseconds{800};
  s.probe_interval = std::chrono::milliseconds{200};
  s.backoff_min = std::chrono::milliseconds{20};
  s.backoff_max = std::chrono::milliseconds{200};
  return s;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

RedisEndpoint endpoint_of(const std::string& addr) { return parse_redis_endpoint(addr, "test"); }

// Deletes every key matching `pattern` on every server in `addrs` (a cluster's keys live
// on their own masters).
void delete_keys(const std::vector<std::string>& addrs, const std::string& pattern) {
  for (const auto& addr : addrs) {
    for (const auto& k : split(test_redis::redis_cli(addr, {"--scan", "--pattern", pattern}), '\n')) {
      test_redis::redis_cli(addr, {"DEL", k});
    }
  }
}

std::vector<std::string> cluster_addrs() { return split(test_redis::cluster_seeds(), ','); }

// A RedisEngine whose broker connections (publisher and subscribers) reach each server
// through a fault proxy of their own, so a test can cut this node's broker link alone.
class ProxiedEngine final : public ForwardingEngine {
 public:
  ProxiedEngine(std::vector<std::unique_ptr<FaultProxy>> proxies, std::unique_ptr<RedisEngine> engine)
      : ForwardingEngine(*engine), proxies_(std::move(proxies)), engine_(std::move(engine)) {}
  void cut() {
    for (auto& p : proxies_) p->cut();
  }
  void restore() {
    for (auto& p : proxies_) p->restore();
  }

 private:
  std::vector<std::unique_ptr<FaultProxy>> proxies_;  // outlive the engine
  std::unique_ptr<RedisEngine> engine_;
};

// Cuts or restores `e`'s broker link and waits (at most 5 s) until the engine has seen
// it: the suites expect the change to be visible when the hook returns.
void set_proxied_broker_down(Engine& e, bool down) {
  auto& proxied = static_cast<ProxiedEngine&>(e);
  down ? proxied.cut() : proxied.restore();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
  while (e.broker_health().up == down && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
}

// An engine on the standalone test server, or on the test cluster (all of its masters),
// with a proxy in front of each server for the engine's broker connections.
std::unique_ptr<Engine> proxied_engine(const std::string& prefix, const Clock& clock, bool cluster = false) {
  const std::vector<std::string> servers = cluster ? cluster_addrs() : std::vector{test_redis::standalone_addr()};
  std::vector<std::unique_ptr<FaultProxy>> proxies;
  auto via = std::make_shared<std::map<std::string, RedisEndpoint>>();
  RedisTopology topology;
  topology.cluster = cluster;
  for (const auto& addr : servers) {
    proxies.push_back(std::make_unique<FaultProxy>(addr));
    (*via)[addr] = endpoint_of(proxies.back()->addr());
    topology.nodes.push_back(endpoint_of(addr));
  }
  topology.broker_route = [via](const RedisEndpoint& ep) {
    auto it = via->find(ep.host + ":" + std::to_string(ep.port));
    return it == via->end() ? ep : it->second;
  };
  auto engine = std::make_unique<RedisEngine>(std::move(topology), test_settings(prefix), clock);
  return std::make_unique<ProxiedEngine>(std::move(proxies), std::move(engine));
}

// The prefix an engine made by a factory uses, for the forget_* hooks.
std::map<const Engine*, std::string>& prefixes() {
  static std::map<const Engine*, std::string> m;
  return m;
}

std::unique_ptr<Engine> remember(std::unique_ptr<Engine> e, std::string prefix) {
  prefixes()[e.get()] = std::move(prefix);
  return e;
}

// The suite's factory for engines on the standalone server or on the cluster.
EngineFactory redis_factory(bool cluster) {
  EngineFactory f;
  f.name = cluster ? "RedisCluster" : "Redis";
  const auto servers = [cluster] { return cluster ? cluster_addrs() : std::vector{test_redis::standalone_addr()}; };
  f.make = [cluster](ManualClock& clock) {
    auto prefix = fresh_prefix();
    return remember(proxied_engine(prefix, clock, cluster), prefix);
  };
  f.forget_sequences = [servers](Engine& e) { delete_keys(servers(), prefixes()[&e] + "seq:*"); };
  f.forget_token_revocations = [servers](Engine& e) {
    delete_keys(servers(), prefixes()[&e] + "revoked:*");
    delete_keys(servers(), prefixes()[&e] + "token_floors:*");
  };
  f.set_broker_down = set_proxied_broker_down;
  return f;
}

INSTANTIATE_TEST_SUITE_P(Redis, EngineConformance, ::testing::Values(redis_factory(false), redis_factory(true)),
                         engine_factory_name);

class RedisNodeBackend final : public NodeBackend {
 public:
  explicit RedisNodeBackend(bool cluster) : cluster_(cluster) {}
  std::unique_ptr<Engine> make_node() override { return proxied_engine(prefix_, SystemClock::instance(), cluster_); }
  void forget_sequences() override {
    delete_keys(cluster_ ? cluster_addrs() : std::vector{test_redis::standalone_addr()}, prefix_ + "seq:*");
  }
  void set_broker_down(Engine& node, bool down) override { set_proxied_broker_down(node, down); }

 private:
  bool cluster_;
  std::string prefix_ = fresh_prefix();
};

INSTANTIATE_TEST_SUITE_P(
    Redis, MultiNodeConformance,
    ::testing::Values(MultiNodeFactory{"Redis", [] { return std::make_unique<RedisNodeBackend>(false); }},
                      MultiNodeFactory{"RedisCluster", [] { return std::make_unique<RedisNodeBackend>(true); }}),
    multi_node_factory_name);

// --- what only a networked engine has ------------------------------------------------------

TEST(RedisHashSlot, MatchesTheClusterSpecification) {
  // Values from the Redis Cluster specification's examples and CLUSTER KEYSLOT.
  EXPECT_EQ(hash_slot("123456789"), 12739);
  EXPECT_EQ(hash_slot("{user1000}.following"), hash_slot("{user1000}.followers"));
  EXPECT_EQ(hash_slot("foo{}{bar}"), hash_slot("foo{}{bar}")) << "empty tag: the whole key";
  EXPECT_NE(hash_slot("foo{}{bar}"), hash_slot("bar"));
  EXPECT_EQ(hash_slot("foo{{bar}}zap"), hash_slot("{bar"));
  const auto addr = cluster_addrs().at(0);
  for (const std::string k : {"chat_room:lobby", "seq:{r1}", "ban:{u7}:global", "x{y}z", "a{}b"}) {
    EXPECT_EQ(std::to_string(hash_slot(k)) + "\n", test_redis::redis_cli(addr, {"CLUSTER", "KEYSLOT", k})) << k;
  }
}

class RedisEngineTest : public ::testing::Test {
 protected:
  std::string prefix_ = fresh_prefix();
  ManualClock clock_;
};

TEST_F(RedisEngineTest, AScriptFlushedFromTheServerIsLoadedAgain) {
  auto engine = proxied_engine(prefix_, clock_);
  EXPECT_EQ(run_blocking(engine->reserve_sequences({{"r", 1, 0}})).at(0), 1u);
  test_redis::redis_cli(test_redis::standalone_addr(), {"SCRIPT", "FLUSH"});
  EXPECT_EQ(run_blocking(engine->reserve_sequences({{"r", 2, std::nullopt}})).at(0), 2u) << "NOSCRIPT -> EVAL";
  EXPECT_EQ(run_blocking(engine->reserve_sequences({{"r", 1, std::nullopt}})).at(0), 4u);
}

TEST_F(RedisEngineTest, AStalledServerIsFoundByTheProbesAndReportedDown) {
  // Commands and broker both through one proxy: stalling it is a server that stopped
  // answering without closing (SIGSTOP, a half-open link).
  FaultProxy proxy(test_redis::standalone_addr());
  RedisTopology topology;
  topology.nodes.push_back(endpoint_of(proxy.addr()));
  RedisEngine engine(std::move(topology), test_settings(prefix_), clock_);
  engine.set_subscriber([](const std::string&, std::shared_ptr<const std::string>) {});
  engine.subscribe("c");
  run_blocking(engine.subscribed("c"));
  ASSERT_TRUE(engine.broker_health().up) << engine.broker_health().detail;

  proxy.stall();
  const auto stalled_at = std::chrono::steady_clock::now();
  while (engine.broker_health().up && std::chrono::steady_clock::now() - stalled_at < std::chrono::seconds{5}) {
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  EXPECT_FALSE(engine.broker_health().up) << "a stalled server must not look healthy";
  EXPECT_THROW(run_blocking(engine.reserve_sequences({{"r", 1, 0}})), EngineUnavailable);
  // Each connection finds the stall on its own probe's schedule: give the last one
  // (probe 200 ms + silence 800 ms) time to, so that the subscriber has been lost too.
  std::this_thread::sleep_for(std::chrono::milliseconds{1500});

  std::atomic<int> resubscribed{0};
  engine.set_resubscribed([&] { ++resubscribed; });
  proxy.restore();
  const auto restored_at = std::chrono::steady_clock::now();
  while ((!engine.broker_health().up || resubscribed == 0) &&
         std::chrono::steady_clock::now() - restored_at < std::chrono::seconds{5}) {
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  EXPECT_TRUE(engine.broker_health().up) << engine.broker_health().detail;
  EXPECT_EQ(resubscribed.load(), 1);
  // 1, or 2: the reservation above may have reached the stalled link before the
  // command connection was given up, and then ran once the link moved again. Its
  // outcome was unknown, which is what `unavailable` tells a caller.
  const auto next = run_blocking(engine.reserve_sequences({{"r", 1, 0}})).at(0);
  EXPECT_TRUE(next == 1u || next == 2u) << next;
}

TEST_F(RedisEngineTest, CommandsToAServerThatIsGoneFailAtOnce) {
  FaultProxy proxy(test_redis::standalone_addr());
  RedisTopology topology;
  topology.nodes.push_back(endpoint_of(proxy.addr()));
  RedisEngine engine(std::move(topology), test_settings(prefix_), clock_);
  EXPECT_EQ(run_blocking(engine.reserve_sequences({{"r", 1, 0}})).at(0), 1u);
  proxy.cut();
  const auto t0 = std::chrono::steady_clock::now();
  int failures = 0;
  for (int i = 0; i < 5; ++i) {
    try {
      run_blocking(engine.claim_slot("k", "m", 1, std::chrono::seconds{10}));
    } catch (const EngineUnavailable&) {
      ++failures;
    }
  }
  EXPECT_EQ(failures, 5);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds{3});
  proxy.restore();
}

// A cluster of this test's own, since it moves a slot between masters (the shared one
// serves other tests at the same time).
class PrivateCluster {
 public:
  PrivateCluster() {
    std::string pattern = (std::filesystem::temp_directory_path() / "chatorbit-slots-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    const auto started = test_redis::detail::run_process(
        {CHATORBIT_PYTHON, test_redis::detail::test_servers_script(), "start", dir_}, std::chrono::seconds{60});
    if (!started.ok()) throw std::runtime_error("cannot start a cluster: " + started.err);
    std::ifstream in(std::filesystem::path(dir_) / "redis-cluster.addr");
    std::getline(in, seeds_);
  }
  ~PrivateCluster() {
    test_redis::detail::run_process({CHATORBIT_PYTHON, test_redis::detail::test_servers_script(), "stop", dir_},
                                    std::chrono::seconds{60});
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  const std::string& seeds() const { return seeds_; }

 private:
  std::string dir_;
  std::string seeds_;
};

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// CLUSTER SETSLOT ... MIGRATING/IMPORTING, MIGRATE, then SETSLOT ... NODE: the engine
// meets ASK while the key is on its way and MOVED once the slot has moved, and keeps
// one counter throughout.
TEST(RedisCluster, FollowsAskAndMovedWhileASlotMigrates) {
  PrivateCluster cluster;
  const auto masters = split(cluster.seeds(), ',');
  ASSERT_EQ(masters.size(), 3u);
  ManualClock clock;
  RedisTopology topology;
  topology.cluster = true;
  topology.nodes = parse_redis_cluster(cluster.seeds(), "test");
  RedisEngine engine(std::move(topology), test_settings("m:"), clock);
  const std::string room = "migrating-room";
  const std::string key = "m:seq:{" + room + "}";
  EXPECT_EQ(run_blocking(engine.reserve_sequences({{room, 1, 0}})).at(0), 1u);

  const auto slot = std::to_string(hash_slot(key));
  std::string src, dst;
  for (const auto& m : masters) {
    if (test_redis::redis_cli(m, {"CLUSTER", "COUNTKEYSINSLOT", slot}) == "1\n") src = m;
  }
  ASSERT_FALSE(src.empty()) << "no master holds the key";
  dst = masters[0] == src ? masters[1] : masters[0];
  const auto id_of = [](const std::string& m) { return trimmed(test_redis::redis_cli(m, {"CLUSTER", "MYID"})); };
  const std::string src_id = id_of(src), dst_id = id_of(dst);
  test_redis::redis_cli(dst, {"CLUSTER", "SETSLOT", slot, "IMPORTING", src_id});
  test_redis::redis_cli(src, {"CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id});
  const auto colon = dst.rfind(':');
  test_redis::redis_cli(src, {"MIGRATE", dst.substr(0, colon), dst.substr(colon + 1), "", "0", "5000", "KEYS", key});

  // The map still names src; src answers ASK for the key that left.
  EXPECT_EQ(run_blocking(engine.reserve_sequences({{room, 1, std::nullopt}})).at(0), 2u);
  EXPECT_NE(test_redis::redis_cli(dst, {"INFO", "commandstats"}).find("cmdstat_asking:calls="), std::string::npos)
      << "the engine sent ASKING to the importing master";

  for (const auto& m : masters) test_redis::redis_cli(m, {"CLUSTER", "SETSLOT", slot, "NODE", dst_id});
  // The map is stale until the engine reloads it: src answers MOVED.
  EXPECT_EQ(run_blocking(engine.reserve_sequences({{room, 1, std::nullopt}})).at(0), 3u);
  EXPECT_EQ(test_redis::redis_cli(dst, {"GET", key}), "3\n");
  EXPECT_TRUE(engine.broker_health().up) << engine.broker_health().detail;
}

}  // namespace
}  // namespace chatorbit::engine::redis
