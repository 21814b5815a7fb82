#include "app/app.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <filesystem>
#include <set>

namespace chatorbit {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  TempDir() : path(fs::temp_directory_path() / ("chatorbit-app-test-" + OsRandom::instance().hex(6))) {
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  /// A node's configuration over this directory: one loop, a free port.
  Config config() const {
    Config c;
    c.data_dir = path.string();
    c.port = 0;
    c.threads = 1;
    return c;
  }
  fs::path path;
};

std::set<std::string> route_names(const http::Router& router) {
  std::set<std::string> out;
  for (const auto& r : router.routes()) out.insert(std::string(http::bhttp::to_string(r.method)) + " " + r.pattern);
  return out;
}

// The OpenAPI document must stay true: every route the router serves is documented,
// with the same method, and nothing is documented that is not served.
TEST(App, OpenApiDocumentsExactlyTheRoutesServed) {
  TempDir dir;
  Config config = dir.config();
  App app(config);

  const auto doc = boost::json::parse(ops::openapi_document()).as_object();
  std::set<std::string> documented;
  for (const auto& [path, ops] : doc.at("paths").as_object()) {
    for (const auto& [method, op] : ops.as_object()) {
      std::string m(method);
      for (auto& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      documented.insert(m + " " + std::string(path));
    }
  }
  const auto served = route_names(app.router());
  for (const auto& s : served) EXPECT_TRUE(documented.count(s)) << s << " is served but not documented";
  for (const auto& d : documented) EXPECT_TRUE(served.count(d)) << d << " is documented but not served";
}

TEST(App, NonEmbeddedRoleNeedsJwtSecret) {
  TempDir dir;
  Config config = dir.config();
  config.roles = "auth";
  EXPECT_THROW(App{config}, ConfigError);
}

TEST(App, GeneratedSecretIsReused) {
  TempDir dir;
  Config config = dir.config();
  { App first(config); }
  ASSERT_TRUE(fs::exists(dir.path / "jwt_secret"));
  const auto perms = fs::status(dir.path / "jwt_secret").permissions();
  EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
  { App second(config); }
}

TEST(App, AMongoDbThatCannotBeReachedAtStartIsReported) {
  // MONGO_URL reaches the store factory: with no server there (port 1 refuses at once),
  // start-up fails with the store's reason, and no SQLite file appears beside it.
  TempDir dir;
  Config config = dir.config();
  config.mongo_url = "mongodb://127.0.0.1:1/chat";
  config.mongo.timeout = std::chrono::milliseconds{200};
  try {
    App app(config);
    ADD_FAILURE() << "started without its database";
  } catch (const store::StoreUnavailable& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:1"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.path / "chatorbit.db"));
}

TEST(App, ARedisThatCannotBeReachedAtStartIsReported) {
  // Start-up puts the store's revocations into the engine: with no Redis there (port 1
  // refuses at once), the node does not start half-working, it says why.
  TempDir dir;
  Config config = dir.config();
  config.redis_addr = "127.0.0.1:1";
  try {
    App app(config);
    ADD_FAILURE() << "started without its Redis";
  } catch (const engine::EngineUnavailable& e) {
    EXPECT_NE(std::string(e.what()).find("redis"), std::string::npos) << e.what();
  }
}

// What the gateway forwards is what the services serve: a route added to a service and
// not to the gateway's table (or the other way round) fails here.
TEST(GatewayRoutes, AreExactlyTheServicesRoutes) {
  TempDir dir;
  Config all = dir.config();
  const App services(all);

  Config gw = all;
  gw.roles = "gateway";
  gw.jwt_secret = std::string(32, 's');
  gw.auth_url = "127.0.0.1:1";
  gw.user_url = "127.0.0.1:2";
  gw.chat_urls = {"127.0.0.1:3"};
  const App gateway(gw);

  EXPECT_EQ(route_names(gateway.router()), route_names(services.router()));
}

TEST(GatewayRole, RunsAlone) {
  TempDir dir;
  Config c = dir.config();
  c.roles = "gateway,chat";
  c.jwt_secret = std::string(32, 's');
  c.auth_url = "127.0.0.1:1";
  c.user_url = "127.0.0.1:2";
  c.chat_urls = {"127.0.0.1:3"};
  EXPECT_THROW(App{c}, ConfigError);
}

}  // namespace
}  // namespace chatorbit
