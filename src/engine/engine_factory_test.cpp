// The engine factory: which engine a configuration selects, and what a bad or not yet
// supported Redis setting says.

#include "engine/engine_factory.hpp"

#include <gtest/gtest.h>

#include <string>

#include "engine/memory/memory_engine.hpp"
#include "engine/redis/redis_engine.hpp"

namespace chatorbit::engine {
namespace {

// The ConfigError message make_engine() throws for `config` (empty if none).
std::string error_of(const Config& config) {
  try {
    make_engine(config, SystemClock::instance());
  } catch (const ConfigError& e) {
    return e.what();
  }
  return {};
}

Config with_redis(std::string addr, std::string cluster = {}) {
  Config c;
  c.redis_addr = std::move(addr);
  c.redis_cluster = std::move(cluster);
  return c;
}

TEST(EngineFactory, NoRedisSettingSelectsTheMemoryEngine) {
  Config c;
  EXPECT_EQ(select_engine(c), EngineKind::memory);
  auto engine = make_engine(c, SystemClock::instance());
  ASSERT_NE(engine, nullptr);
  EXPECT_NE(dynamic_cast<MemoryEngine*>(engine.get()), nullptr);
  EXPECT_EQ(select_engine(with_redis("  ")), EngineKind::memory) << "blank is unset";
}

TEST(EngineFactory, RedisAddrSelectsTheRedisEngine) {
  EXPECT_EQ(select_engine(with_redis("127.0.0.1:6379")), EngineKind::redis);
  // Nothing need listen there: the engine connects in the background.
  auto engine = make_engine(with_redis("127.0.0.1:1"), SystemClock::instance());
  EXPECT_NE(dynamic_cast<redis::RedisEngine*>(engine.get()), nullptr);
}

TEST(EngineFactory, RedisClusterSelectsTheRedisEngineOnACluster) {
  const auto c = with_redis("", "10.0.0.1:7000, 10.0.0.2:7000");
  EXPECT_EQ(select_engine(c), EngineKind::redis_cluster);
}

TEST(EngineFactory, BothRedisSettingsAreRefused) {
  const auto msg = error_of(with_redis("a:1", "b:2"));
  EXPECT_NE(msg.find("both set"), std::string::npos) << msg;
}

TEST(EngineFactory, MalformedAddressIsReportedAsMalformedNotAsMissing) {
  for (const char* bad : {"localhost", "localhost:", "localhost:http", "localhost:0", "localhost:70000", ":6379",
                          "::1:6379", "[::1", "[zz]:1", "[::1]6379", "redis://", "redis://:pw@", "redis://h:1/x",
                          "rediss://h:1", "http://h:1", "redis://pw@h:1", "h o:1"}) {
    const auto msg = error_of(with_redis(bad));
    EXPECT_NE(msg.find("REDIS_ADDR: malformed"), std::string::npos) << bad << " -> " << msg;
    EXPECT_EQ(msg.find("not in this build"), std::string::npos) << bad << " -> " << msg;
  }
  const auto msg = error_of(with_redis("", "a:1,,b:2"));
  EXPECT_NE(msg.find("CHATORBIT_REDIS_CLUSTER: malformed"), std::string::npos) << msg;
  EXPECT_NE(error_of(with_redis("", "redis://a:1/3")).find("only database 0"), std::string::npos);
}

TEST(EngineFactory, ErrorsNeverEchoThePassword) {
  const auto msg = error_of(with_redis("redis://:hunter2@host:notaport"));
  EXPECT_NE(msg.find("malformed"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("hunter2"), std::string::npos) << msg;
}

TEST(EngineFactory, ParsesEveryAddressForm) {
  EXPECT_EQ(parse_redis_endpoint("redis.internal:6380", "X"), (RedisEndpoint{"redis.internal", 6380, "", "", 0}));
  EXPECT_EQ(parse_redis_endpoint(" [::1]:6379 ", "X"), (RedisEndpoint{"::1", 6379, "", "", 0}));
  EXPECT_EQ(parse_redis_endpoint("redis://h", "X"), (RedisEndpoint{"h", 6379, "", "", 0}));
  EXPECT_EQ(parse_redis_endpoint("REDIS://h:1/", "X"), (RedisEndpoint{"h", 1, "", "", 0}));
  EXPECT_EQ(parse_redis_endpoint("redis://:p@ss/w@h:7000/3", "X"), (RedisEndpoint{"h", 7000, "", "p@ss/w", 3}));
  EXPECT_EQ(parse_redis_endpoint("redis://app:pw@[fe80::1]:6379", "X"),
            (RedisEndpoint{"fe80::1", 6379, "app", "pw", 0}));
  const auto nodes = parse_redis_cluster("a:7000,b:7001 , c:7002", "X");
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[2], (RedisEndpoint{"c", 7002, "", "", 0}));
}

}  // namespace
}  // namespace chatorbit::engine
