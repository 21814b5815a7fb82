#include "store/store_factory.hpp"

#include "store/mongo/mongo_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace chatorbit::store {
namespace {

class SqliteFactory final : public StoreFactory {
 public:
  explicit SqliteFactory(std::string path) : path_(std::move(path)) {}

  std::unique_ptr<Store> open() override { return SqliteStore::open(path_); }
  std::string_view kind() const override { return "sqlite"; }
  std::string location() const override { return path_; }

 private:
  std::string path_;
};

class MongoFactory final : public StoreFactory {
 public:
  MongoFactory(const std::string& url, const MongoSettings& settings)
      : pool_(std::make_shared<MongoPool>(url, settings)) {}

  /// The first connection makes the database ready (indexes, the original's users); if
  /// that fails, the next open() tries again.
  std::unique_ptr<Store> open() override {
    auto store = std::make_unique<MongoStore>(pool_, !prepared_);
    prepared_ = true;
    return store;
  }
  std::string_view kind() const override { return "mongodb"; }
  std::string location() const override { return pool_->location(); }

 private:
  std::shared_ptr<MongoPool> pool_;
  bool prepared_ = false;  // open() is called from one thread at a time
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

void validate_mongo_url(std::string_view url, const std::string& setting) {
  url = trim(url);
  for (std::string_view scheme : {std::string_view("mongodb://"), std::string_view("mongodb+srv://")}) {
    if (url.substr(0, scheme.size()) == scheme) {
      if (url.size() == scheme.size()) {
        throw ConfigError(setting + ": malformed MongoDB URL: no host after '" + std::string(scheme) + "'");
      }
      return;
    }
  }
  // The value is not echoed: a URL carries its password.
  throw ConfigError(setting + ": malformed MongoDB URL: expected mongodb://host[:port]/... or mongodb+srv://host/...");
}

std::unique_ptr<StoreFactory> make_store_factory(const Config& config) {
  if (!trim(config.mongo_url).empty()) {
    validate_mongo_url(config.mongo_url, "MONGO_URL");
    try {
      return std::make_unique<MongoFactory>(std::string(trim(config.mongo_url)), config.mongo);
    } catch (const StoreError& e) {
      throw ConfigError(e.what());
    }
  }
  return std::make_unique<SqliteFactory>(config.data_dir + "/chatorbit.db");
}

}  // namespace chatorbit::store
