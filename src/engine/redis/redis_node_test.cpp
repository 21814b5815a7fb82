// One chat node (a real App) on a Redis that goes away entirely and comes back: what the
// issue asks of a node while Redis is gone. Its commands and its broker connections all
// go through one fault proxy, which the test cuts and restores.

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "app/app.hpp"
#include "engine/multi_node_client.hpp"
#include "engine/redis/fault_proxy.hpp"
#include "engine/redis/redis_engine.hpp"
#include "engine/redis/test_redis.hpp"

namespace chatorbit::engine::redis {
namespace {

using namespace node_client;

class RedisNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("chatorbit-redis-node-" + unique(""));
    std::filesystem::create_directories(dir_);
    Config config;
    config.data_dir = dir_.string();
    config.bind = "127.0.0.1";
    config.port = 0;
    config.threads = 2;
    config.log_level = "error";
    config.cors_origins = {"http://127.0.0.1"};
    config.jwt_secret = "redis-node-test-secret-0123456789abcdef0123";
    config.admins = {"admin@redis-node.test"};
    RedisSettings settings;
    settings.key_prefix = "node" + unique("") + ":";
    settings.command_timeout = milliseconds{800};
    settings.probe_interval = milliseconds{200};
    settings.backoff_min = milliseconds{20};
    settings.backoff_max = milliseconds{200};
    RedisTopology topology;
    topology.nodes.push_back(parse_redis_endpoint(proxy_.addr(), "test"));
    app_ = std::make_unique<App>(std::move(config),
                                 std::make_unique<RedisEngine>(std::move(topology), settings, SystemClock::instance()));
    port_ = app_->start();
  }
  void TearDown() override {
    app_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  unsigned readyz() { return request(port_, bhttp::verb::get, "/readyz").status; }
  bool wait_readyz(unsigned status) {
    const auto deadline = steady::now() + seconds{5};
    while (readyz() != status) {
      if (steady::now() > deadline) return false;
      std::this_thread::sleep_for(milliseconds{20});
    }
    return true;
  }

  test_redis::FaultProxy proxy_{test_redis::standalone_addr()};
  std::filesystem::path dir_;
  std::unique_ptr<App> app_;
  int port_ = 0;
};

TEST_F(RedisNodeTest, WhileRedisIsGoneViewersStayAndEveryoneElseIsToldUnavailable) {
  const std::string room = unique("gone-");
  const Account admin = new_account(port_, "admin@redis-node.test");
  const Account alice = new_account(port_);
  WsClient poster(port_, Join{room, alice.token, {}});
  WsClient viewer(port_, Join{room, {}, {}});
  ASSERT_TRUE(poster.recv_type("welcome"));
  ASSERT_TRUE(viewer.recv_type("welcome"));
  ASSERT_TRUE(wait_readyz(200));

  proxy_.cut();
  ASSERT_TRUE(wait_readyz(503)) << "/readyz must say the node is not ready";

  poster.send(message("while gone", "gone-1"));
  const auto refused = poster.recv_type("error");
  ASSERT_TRUE(refused);
  EXPECT_EQ(field(*refused, "code"), "unavailable");
  EXPECT_EQ(field(*refused, "cid"), "gone-1");

  node_client::Reply handshake;
  WsClient newcomer(port_, Join{room, alice.token, {}}, &handshake);
  EXPECT_EQ(handshake.status, 503u) << "a ban cannot be checked: a signed-in user waits";
  WsClient new_viewer(port_, Join{room, {}, {}}, &handshake);
  EXPECT_EQ(handshake.status, 101u) << "a viewer needs no ban check";
  EXPECT_TRUE(new_viewer.recv_type("welcome"));

  const json::value ban = json::object{{"user_id", alice.id}, {"reason", "spam"}};
  const auto banned = post(port_, "/chat/rooms/" + room + "/bans", ban, admin.token);
  EXPECT_EQ(banned.status, 503u) << json::serialize(banned.body);
  EXPECT_EQ(str(banned.body, "error"), "unavailable") << json::serialize(banned.body);
  EXPECT_EQ(request(port_, bhttp::verb::get, "/chat/history/" + room).status, 200u) << "the store still answers";
  EXPECT_FALSE(viewer.closed()) << "connected viewers stay connected";

  proxy_.restore();
  ASSERT_TRUE(wait_readyz(200)) << "back without a restart";
  poster.send(message("while gone", "gone-1"));
  const auto ack = poster.recv_type("ack");
  ASSERT_TRUE(ack) << "the resend is taken once Redis is back";
  const auto live = viewer.recv_type("message");
  ASSERT_TRUE(live);
  EXPECT_EQ(field(*live, "content"), "while gone");
}

}  // namespace
}  // namespace chatorbit::engine::redis
