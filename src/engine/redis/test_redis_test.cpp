#include "engine/redis/test_redis.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace chatorbit::engine::test_redis {
namespace {

TEST(TestRedis, RedisCliReachesBothServers) {
  EXPECT_EQ(redis_cli(standalone_addr(), {"PING"}), "PONG\n");
  const std::string seeds = cluster_seeds();
  EXPECT_EQ(std::count(seeds.begin(), seeds.end(), ','), 2) << seeds;
  const std::string first = seeds.substr(0, seeds.find(','));
  EXPECT_NE(redis_cli(first, {"CLUSTER", "INFO"}).find("cluster_state:ok"), std::string::npos);
  EXPECT_THROW(redis_cli(standalone_addr(), {"NO-SUCH-COMMAND"}), std::runtime_error);
}

TEST(TestRedis, RedisCliThrowsWhenTheServerIsUnreachable) {
  EXPECT_THROW(redis_cli("127.0.0.1:1", {"PING"}), std::runtime_error);
  EXPECT_THROW(redis_cli("no-port", {"PING"}), std::runtime_error);
}

TEST(TestRedis, EveryCallGivesTheSameServers) {
  EXPECT_EQ(&standalone_addr(), &standalone_addr());
  EXPECT_EQ(standalone_addr().rfind("127.0.0.1:", 0), 0u);
}

}  // namespace
}  // namespace chatorbit::engine::test_redis
