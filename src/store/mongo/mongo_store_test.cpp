// The MongoDB store against a real MongoDB-wire server (FerretDB on SQLite, started by
// the test_servers fixture): the store conformance suite unchanged, then what
// mongo_store.hpp promises beyond it.
#include "store/mongo/mongo_store.hpp"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>

#include "store/mongo/bson_util.hpp"
#include "store/mongo/mongo_migrate.hpp"
#include "store/mongo/test_mongo.hpp"
#include "store/store_conformance.hpp"

namespace chatorbit::store {
namespace {

/// A store on a database of its own, dropped when the store closes.
class ScratchMongoStore final : public MongoStore {
 public:
  explicit ScratchMongoStore(std::shared_ptr<MongoPool> pool) : MongoStore(std::move(pool), true) {}
  ~ScratchMongoStore() override {
    try {
      drop_database();
    } catch (const StoreError&) {  // the server went away: nothing left to drop
    }
  }
};

std::shared_ptr<MongoPool> scratch_pool(std::string_view prefix) {
  return std::make_shared<MongoPool>(test_mongo::url() + test_mongo::unique_database(prefix), MongoSettings{});
}

INSTANTIATE_TEST_SUITE_P(Mongo, StoreConformance,
                         ::testing::Values(store::StoreFactory{
                             "FerretDB",
                             [] { return std::make_unique<ScratchMongoStore>(scratch_pool("conformance")); }}),
                         store_factory_name);

using namespace mongo_detail;

constexpr std::int64_t kT0 = 1'700'000'000'000;  // Unix ms

/// Writes documents straight into a database, as the original Go service (or an
/// operator) would, behind the store's back.
class RawDatabase {
 public:
  explicit RawDatabase(const std::string& url) : client_(mongoc_client_new(url.c_str())) {
    const mongoc_uri_t* uri = mongoc_client_get_uri(client_);
    name_ = mongoc_uri_get_database(uri);
  }
  ~RawDatabase() { mongoc_client_destroy(client_); }
  RawDatabase(const RawDatabase&) = delete;
  RawDatabase& operator=(const RawDatabase&) = delete;

  /// The lookup index an earlier ChatOrbit built on messages: (room, user, cid), not unique.
  void create_plain_cid_index() {
    Doc cmd, key;
    put_str(cmd.get(), "createIndexes", "messages");
    bson_t list, spec, keys;
    bson_append_array_begin(cmd.get(), "indexes", -1, &list);
    bson_append_document_begin(&list, "0", -1, &spec);
    bson_append_document_begin(&spec, "key", -1, &keys);
    for (const char* k : {"room_id", "user_id", "cid"}) bson_append_int32(&keys, k, -1, 1);
    bson_append_document_end(&spec, &keys);
    put_str(&spec, "name", "room_id_1_user_id_1_cid_1");
    bson_append_document_end(&list, &spec);
    bson_append_array_end(cmd.get(), &list);
    mongoc_database_t* db = mongoc_client_get_database(client_, name_.c_str());
    bson_error_t error;
    const bool ok = mongoc_database_write_command_with_opts(db, cmd.get(), nullptr, nullptr, &error);
    mongoc_database_destroy(db);
    ASSERT_TRUE(ok) << error.message;
  }

  void insert(const char* collection, const Doc& doc) {
    mongoc_collection_t* c = mongoc_client_get_collection(client_, name_.c_str(), collection);
    bson_error_t error;
    const bool ok = mongoc_collection_insert_one(c, doc.get(), nullptr, nullptr, &error);
    mongoc_collection_destroy(c);
    ASSERT_TRUE(ok) << error.message;
  }

 private:
  mongoc_client_t* client_;
  std::string name_;
};

std::string oid_hex(std::uint32_t n) {
  char buf[25];
  std::snprintf(buf, sizeof buf, "65a0%020x", n);
  return buf;
}

/// A message document as the original wrote it: no seq, no username, no deleted flag,
/// the time a BSON date.
void original_message(Doc& d, const std::string& id, const std::string& room, std::int64_t at_ms,
                      const std::string& content) {
  put_id(d.get(), "_id", id);
  put_str(d.get(), "room_id", room);
  put_str(d.get(), "user_id", oid_hex(1));
  put_str(d.get(), "content", content);
  put_date(d.get(), "timestamp", at_ms);
}

TEST(MongoStore, ReadsUsersAndMessagesAsTheOriginalWroteThem) {
  const std::string url = test_mongo::url() + test_mongo::unique_database("original");
  auto pool = std::make_shared<MongoPool>(url, MongoSettings{});
  {
    RawDatabase raw(url);
    Doc user;
    put_id(user.get(), "_id", oid_hex(1));
    put_str(user.get(), "username", "olduser");
    put_str(user.get(), "email", "Old.User@Example.com");
    put_str(user.get(), "password_hash", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy");
    put_date(user.get(), "created_at", kT0);
    put_date(user.get(), "login_time", kT0 + 5);
    put_str(user.get(), "login_ip", "192.0.2.1");
    put_date(user.get(), "update_time", kT0 + 1);
    raw.insert("users", user);
    for (std::uint32_t i = 1; i <= 3; ++i) {
      Doc m;
      original_message(m, oid_hex(100 + i), "lobby", kT0 + 1000 * i, "old " + std::to_string(i));
      raw.insert("messages", m);
    }
  }
  ScratchMongoStore store(pool);  // prepares: fills in email_lower, builds the indexes

  const auto user = store.find_user_by_email("old.user@example.COM");
  ASSERT_TRUE(user.has_value()) << "found in any case, as the store's own users are";
  EXPECT_EQ(user->id, oid_hex(1));
  EXPECT_EQ(user->role, "user");
  EXPECT_EQ(user->email, "Old.User@Example.com");
  EXPECT_EQ(user->created_at_ms, kT0);
  EXPECT_EQ(user->login_time_ms, kT0 + 5);
  EXPECT_TRUE(user->password_hash.starts_with("$2a$10$"));
  EXPECT_FALSE(store.create_user(
      User{oid_hex(2), "other", "OLD.USER@example.com", "$argon2id$x", "user", kT0, kT0, std::nullopt, ""}))
      << "the original's user holds its email against any case";

  // Numbered messages beside the original's: theirs come after, newest first.
  Message m;
  m.id = oid_hex(200);
  m.room_id = "lobby";
  m.user_id = oid_hex(1);
  m.username = "olduser";
  m.content = "new";
  m.timestamp_ns = (kT0 + 9000) * 1'000'000;
  m.seq = 1;
  store.append_messages(std::vector<Message>{m});
  const auto page = store.history("lobby", 10, std::nullopt);
  ASSERT_EQ(page.size(), 4u);
  EXPECT_EQ(page[0].content, "new");
  EXPECT_EQ(page[1].content, "old 3");
  EXPECT_EQ(page[1].seq, 0u);
  EXPECT_EQ(page[1].timestamp_ns, (kT0 + 3000) * 1'000'000);
  EXPECT_EQ(page[1].username, "");
  EXPECT_EQ(page[3].content, "old 1");
  EXPECT_EQ(store.max_seq("lobby"), 1u);

  // The unique (room, seq) index holds beside many messages without a seq.
  Message clash = m;
  clash.id = oid_hex(201);
  EXPECT_THROW(store.append_messages(std::vector<Message>{clash}), PartialAppend);
}

/// A message of ours, as the store writes it, with a cid.
Message cid_message(std::uint32_t n, std::uint64_t seq, const std::string& cid) {
  Message m;
  m.id = oid_hex(n);
  m.room_id = "lobby";
  m.user_id = oid_hex(1);
  m.username = "poster";
  m.content = "m" + std::to_string(n);
  m.timestamp_ns = (kT0 + n) * 1'000'000;
  m.seq = seq;
  m.cid = cid;
  return m;
}

// A database an earlier ChatOrbit prepared has the cid index as a plain one: start-up
// makes it unique, and resends are then refused by the insert.
TEST(MongoStore, APlainCidIndexFromAnEarlierVersionIsMadeUnique) {
  const std::string url = test_mongo::url() + test_mongo::unique_database("cid_upgrade");
  auto pool = std::make_shared<MongoPool>(url, MongoSettings{});
  {
    RawDatabase raw(url);
    raw.create_plain_cid_index();
  }
  ScratchMongoStore store(pool);
  EXPECT_TRUE(store.refuses_duplicate_cids());
  store.append_messages(std::vector<Message>{cid_message(10, 1, "c-1")});
  try {
    store.append_messages(std::vector<Message>{cid_message(11, 2, "c-1")});
    ADD_FAILURE() << "a second message with the same cid was stored";
  } catch (const PartialAppend& e) {
    ASSERT_TRUE(e.duplicate_of()) << e.what();
    EXPECT_EQ(e.duplicate_of()->id, oid_hex(10));
  }
  EXPECT_EQ(store.history("lobby", 10, std::nullopt).size(), 1u);
}

// Messages that already share a cid keep the index from being unique: they stay, start-up
// says so, and the store does not claim to refuse resends (the pipeline looks them up).
TEST(MongoStore, StoredMessagesSharingACidKeepTheirIndexPlainAndTheStoreSaysSo) {
  const std::string url = test_mongo::url() + test_mongo::unique_database("cid_shared");
  auto pool = std::make_shared<MongoPool>(url, MongoSettings{});
  {
    RawDatabase raw(url);
    raw.create_plain_cid_index();
    for (std::uint32_t n : {20u, 21u}) {
      Doc d;
      original_message(d, oid_hex(n), "lobby", kT0 + n, "shared " + std::to_string(n));
      put_str(d.get(), "cid", "same");
      raw.insert("messages", d);
    }
  }
  ScratchMongoStore store(pool);
  EXPECT_FALSE(store.refuses_duplicate_cids());
  EXPECT_EQ(store.history("lobby", 10, std::nullopt).size(), 2u);
  const std::string user = oid_hex(1);  // CidKey holds views
  const CidKey key{"lobby", user, "same"};
  EXPECT_TRUE(store.find_by_cids(std::span(&key, 1)).at(0).has_value()) << "still found by cid";
}

TEST(MongoMigrate, NumbersTheOriginalsMessagesPerRoomInTimeOrderOnce) {
  const std::string url = test_mongo::url() + test_mongo::unique_database("migrate");
  auto pool = std::make_shared<MongoPool>(url, MongoSettings{});
  {
    RawDatabase raw(url);
    Doc user;
    put_id(user.get(), "_id", oid_hex(1));
    put_str(user.get(), "username", "olduser");
    put_str(user.get(), "email", "old@example.com");
    raw.insert("users", user);
    // Inserted out of time order; two share a time (then the id decides).
    const std::vector<std::tuple<std::uint32_t, const char*, std::int64_t>> originals{
        {103, "lobby", kT0 + 3000}, {101, "lobby", kT0 + 1000}, {104, "music", kT0 + 500},
        {102, "lobby", kT0 + 1000}, {105, "music", kT0 + 100},  {106, "served", kT0}};
    for (const auto& [n, room, at] : originals) {
      Doc m;
      original_message(m, oid_hex(n), room, at, "m" + std::to_string(n));
      raw.insert("messages", m);
    }
  }
  ScratchMongoStore store(pool);
  // A room ChatOrbit has served already, beside an old message: left alone.
  Message fresh;
  fresh.id = oid_hex(300);
  fresh.room_id = "served";
  fresh.user_id = oid_hex(1);
  fresh.content = "new";
  fresh.seq = 1;
  store.append_messages(std::vector<Message>{fresh});

  Config config;
  config.mongo_url = url;
  std::ostringstream progress;
  const auto report = migrate_original_messages(config, progress, 1);
  EXPECT_EQ(report.numbered, 5);
  EXPECT_EQ(report.rooms, 3);
  EXPECT_EQ(report.rooms_skipped, 1);
  EXPECT_NE(progress.str().find("room served: skipped"), std::string::npos) << progress.str();

  const auto lobby = store.history("lobby", 10, std::nullopt);
  ASSERT_EQ(lobby.size(), 3u);
  EXPECT_EQ(lobby[0].content, "m103");
  EXPECT_EQ(lobby[0].seq, 3u);
  EXPECT_EQ(lobby[1].content, "m102");
  EXPECT_EQ(lobby[2].content, "m101");
  EXPECT_EQ(lobby[2].seq, 1u);
  EXPECT_EQ(lobby[2].username, "olduser");
  const auto music = store.history("music", 10, std::nullopt);
  ASSERT_EQ(music.size(), 2u);
  EXPECT_EQ(music[0].content, "m104");
  EXPECT_EQ(music[1].content, "m105");
  EXPECT_EQ(music[1].seq, 1u);
  EXPECT_EQ(store.history("lobby", 10, 3).size(), 2u) << "pages by seq, as every room";
  EXPECT_EQ(store.max_seq("served"), 1u);

  std::ostringstream again;
  EXPECT_EQ(migrate_original_messages(config, again).numbered, 0) << "a second run has nothing to do";
}

int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);  // nothing listens there now
  return ntohs(addr.sin_port);
}

TEST(MongoStore, AServerThatIsNotThereIsUnavailableWithinTheTimeout) {
  MongoSettings settings;
  settings.timeout = std::chrono::milliseconds{300};
  auto pool = std::make_shared<MongoPool>("mongodb://127.0.0.1:" + std::to_string(closed_port()) + "/x", settings);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_THROW(MongoStore(pool, true), StoreUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds{5});
}

TEST(MongoStore, AMalformedUrlIsRefusedWithoutEchoingIt) {
  try {
    MongoPool pool("mongodb://user:hunter2@host:notaport/", MongoSettings{});
    FAIL() << "accepted";
  } catch (const StoreError& e) {
    EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace chatorbit::store
