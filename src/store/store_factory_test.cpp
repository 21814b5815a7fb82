// The store factory: which store a configuration selects, and what a bad or not yet
// supported MONGO_URL says.

#include "store/store_factory.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/random.hpp"

namespace chatorbit::store {
namespace {

namespace fs = std::filesystem;

std::string error_of(const Config& config) {
  try {
    make_store_factory(config);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return {};
}

TEST(StoreFactory, DefaultIsSqliteUnderTheDataDirAndOpensMoreThanOnce) {
  const auto dir = fs::temp_directory_path() / ("chatorbit-store-factory-" + OsRandom::instance().hex(6));
  fs::create_directories(dir);
  {
    Config c;
    c.data_dir = dir.string();
    auto factory = make_store_factory(c);
    EXPECT_EQ(factory->kind(), "sqlite");
    EXPECT_EQ(factory->location(), (dir / "chatorbit.db").string());
    auto first = factory->open();
    ASSERT_TRUE(first->ensure_room("lobby", 1));
    // A second connection (a later worker lane) sees what the first wrote.
    auto second = factory->open();
    EXPECT_TRUE(second->find_room("lobby").has_value());
    EXPECT_TRUE(fs::exists(dir / "chatorbit.db"));
  }
  fs::remove_all(dir);
}

TEST(StoreFactory, OpenFailureIsAStoreError) {
  Config c;
  c.data_dir = "/nonexistent/chatorbit-store-factory";
  auto factory = make_store_factory(c);  // opens nothing yet
  EXPECT_THROW(factory->open(), StoreError);
}

TEST(StoreFactory, MongoUrlSelectsMongoAndOpensNothingYet) {
  for (const char* url : {"mongodb://x", "mongodb://user:pw@h1,h2/chat?replicaSet=rs0"}) {
    Config c;
    c.mongo_url = url;
    const auto factory = make_store_factory(c);
    EXPECT_EQ(factory->kind(), "mongodb");
    EXPECT_EQ(factory->location().find("pw"), std::string::npos) << "no password in logs: " << factory->location();
  }
  Config c;
  c.mongo_url = "mongodb://user:pw@h1,h2/chat?replicaSet=rs0";
  EXPECT_EQ(make_store_factory(c)->location(), "mongodb://h1:27017,h2:27017/chat");
}

TEST(StoreFactory, MalformedMongoUrlIsReportedAsMalformed) {
  for (const char* url : {"localhost:27017", "mongodb://", "mongo://h", "http://h", "mongodb+srv://"}) {
    Config c;
    c.mongo_url = url;
    const auto msg = error_of(c);
    EXPECT_NE(msg.find("MONGO_URL: malformed"), std::string::npos) << url << " -> " << msg;
  }
  Config secret;
  secret.mongo_url = "mongo://admin:hunter2@h";
  EXPECT_EQ(error_of(secret).find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace chatorbit::store
