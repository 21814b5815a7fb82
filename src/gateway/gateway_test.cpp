#include <gtest/gtest.h>

#include <set>

#include "gateway/gateway.hpp"
#include "gateway/routes.hpp"
#include "gateway/upstreams.hpp"

namespace chatorbit::gateway {
namespace {

TEST(Endpoint, ParsesTheFormsTheSettingsTake) {
  auto e = parse_endpoint("http://auth:8089", "X");
  EXPECT_EQ(e.host, "auth");
  EXPECT_EQ(e.port, "8089");
  e = parse_endpoint("chat1:8088/", "X");
  EXPECT_EQ(e.name(), "chat1:8088");
  e = parse_endpoint("[::1]:9000", "X");
  EXPECT_EQ(e.host, "::1");
  EXPECT_EQ(e.port, "9000");
}

TEST(Endpoint, RefusesWhatItCannotReach) {
  for (const char* bad : {"https://auth:8089", "auth", "auth:", "auth:0", "auth:70000", "auth:80x", ":8080",
                          "http://auth:8089/api", "user@auth:8089", "::1:8080", "[::1]8080", "a b:1"}) {
    EXPECT_THROW(parse_endpoint(bad, "CHATORBIT_AUTH_URL"), ConfigError) << bad;
  }
  try {
    parse_endpoint("auth", "CHATORBIT_AUTH_URL");
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("CHATORBIT_AUTH_URL"), std::string::npos) << e.what();
  }
}

std::vector<Endpoint> three() { return {{"a", "1"}, {"b", "2"}, {"c", "3"}}; }

TEST(ChatNodes, RequestsGoRoundTheHealthyNodes) {
  ChatNodes nodes(three());
  std::multiset<std::string> picked;
  for (int i = 0; i < 6; ++i) picked.insert(nodes.next()->endpoint().host);
  EXPECT_EQ(picked, (std::multiset<std::string>{"a", "a", "b", "b", "c", "c"}));

  nodes.all()[1]->mark(false);
  picked.clear();
  for (int i = 0; i < 6; ++i) picked.insert(nodes.next()->endpoint().host);
  EXPECT_EQ(picked, (std::multiset<std::string>{"a", "a", "a", "c", "c", "c"}));
  EXPECT_EQ(nodes.healthy_count(), 2u);
}

TEST(ChatNodes, ARetrySkipsTheNodesTried) {
  ChatNodes nodes(three());
  std::vector<const Upstream*> tried;
  for (int i = 0; i < 3; ++i) {
    const Upstream* u = nodes.next(tried);
    ASSERT_NE(u, nullptr);
    EXPECT_EQ(std::count(tried.begin(), tried.end(), u), 0);
    tried.push_back(u);
  }
  EXPECT_EQ(nodes.next(tried), nullptr);
  EXPECT_EQ(nodes.least_loaded(tried), nullptr);
}

TEST(ChatNodes, WebSocketsGoToTheFewestTunnels) {
  ChatNodes nodes(three());
  auto& all = nodes.all();
  all[0]->tunnel_opened();
  all[0]->tunnel_opened();
  all[1]->tunnel_opened();
  EXPECT_EQ(nodes.least_loaded(), all[2].get());
  all[2]->mark(false);
  EXPECT_EQ(nodes.least_loaded(), all[1].get());
  all[1]->tunnel_closed();
  all[2]->mark(true);
  // b and c have none: both get their turn.
  std::set<const Upstream*> picked;
  for (int i = 0; i < 6; ++i) picked.insert(nodes.least_loaded());
  EXPECT_EQ(picked, (std::set<const Upstream*>{all[1].get(), all[2].get()}));
}

TEST(ChatNodes, NoneHealthyMeansNone) {
  ChatNodes nodes(three());
  for (const auto& u : nodes.all()) u->mark(false);
  EXPECT_EQ(nodes.next(), nullptr);
  EXPECT_EQ(nodes.least_loaded(), nullptr);
  ChatNodes empty({});
  EXPECT_EQ(empty.next(), nullptr);
}

TEST(Upstream, MarkSaysWhetherTheStateChanged) {
  Upstream u("chat", {"a", "1"});
  EXPECT_TRUE(u.healthy());
  EXPECT_FALSE(u.mark(true));
  EXPECT_TRUE(u.mark(false));
  EXPECT_FALSE(u.mark(false));
  EXPECT_TRUE(u.mark(true));
}

TEST(GatewayOptions, NamesTheMissingService) {
  Config c;
  c.roles = "gateway";
  try {
    (void)GatewayOptions::from(c);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("CHATORBIT_AUTH_URL"), std::string::npos);
  }
  c.auth_url = "http://auth:8089";
  c.user_url = "user:8090";
  EXPECT_THROW((void)GatewayOptions::from(c), ConfigError);
  c.chat_urls = {"chat1:8088", "chat2:8088"};
  const auto o = GatewayOptions::from(c);
  EXPECT_EQ(o.chat.size(), 2u);
  EXPECT_EQ(o.user.name(), "user:8090");
  c.chat_urls.push_back("chat3");
  EXPECT_THROW((void)GatewayOptions::from(c), ConfigError);
}

TEST(GatewayRoutes, GoToTheServiceThatServesThem) {
  for (const auto& r : forwarded_routes()) {
    const std::string_view p = r.pattern;
    const auto expected = p == "/register" || p == "/login" || p == "/change-password" || p == "/logout" ? Service::auth
                          : p.starts_with("/user/") || p.starts_with("/users/")                          ? Service::user
                                                                                : Service::chat;
    EXPECT_EQ(r.service, expected) << p;
  }
}

}  // namespace
}  // namespace chatorbit::gateway
