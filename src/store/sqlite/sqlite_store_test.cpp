// SqliteStore: the conformance suite on an in-memory and a file database, plus what is
// SQLite's own (files, migrations, transactions, choices store.hpp leaves open).

#include "store/sqlite/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <limits>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "store/store_conformance.hpp"

namespace chatorbit::store {
namespace {

using Seqs = std::vector<std::uint64_t>;
using Strings = std::vector<std::string>;

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

/// A directory for this test process's database files, removed at exit.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "chatorbit-sqlite-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  /// A path for a database file that does not exist yet.
  std::string new_file() { return (path_ / ("store-" + std::to_string(++count_) + ".db")).string(); }

 private:
  std::filesystem::path path_;
  int count_ = 0;
};

ScratchDir& scratch() {
  static ScratchDir dir;
  return dir;
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformance,
                         ::testing::Values(StoreFactory{"Memory", [] { return SqliteStore::open(":memory:"); }},
                                           StoreFactory{"TempFile",
                                                        [] { return SqliteStore::open(scratch().new_file()); }}),
                         store_factory_name);

/// A second, raw connection, to look at a database file behind the store's back.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("open " + path);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  sqlite3* get() const { return db_; }
  void exec(const std::string& sql) {
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    }
  }
  /// Every row of a query, each row's columns joined by '|'.
  std::vector<std::string> rows(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    }
    std::vector<std::string> out;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        if (i > 0) row += '|';
        const auto* text = sqlite3_column_text(stmt, i);
        if (text != nullptr) row += reinterpret_cast<const char*>(text);
      }
      out.push_back(row);
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

/// The StoreError message open() throws for `path`, or "" if it opened.
std::string open_error(const std::string& path) {
  try {
    SqliteStore::open(path);
  } catch (const StoreError& e) {
    return e.what();
  }
  return "";
}

Message make_message(const std::string& room, std::uint64_t seq, const std::string& cid = "") {
  Message m;
  m.id = "0000000000000000000000" + std::to_string(10 + seq);
  m.room_id = room;
  m.user_id = "u1";
  m.username = "alice";
  m.content = "message " + std::to_string(seq);
  m.timestamp_ns = 1'700'000'000'000'000'000 + static_cast<std::int64_t>(seq);
  m.seq = seq;
  m.cid = cid;
  return m;
}

std::vector<std::uint64_t> history_seqs(Store& store, const std::string& room) {
  std::vector<std::uint64_t> out;
  for (const auto& m : store.history(room, 100, std::nullopt)) out.push_back(m.seq);
  return out;
}

/// Appends ~2.5 MB of messages through `writer` and waits (bounded) for the database file
/// to grow by 2 MB: only a checkpoint moves them there from the log.
void expect_checkpointed(SqliteStore& writer, const std::string& path) {
  const auto size_before = std::filesystem::file_size(path);
  // Several hundred WAL pages, far below the writer's own fallback threshold, so only the
  // background checkpointer can move them into the file.
  std::vector<Message> batch;
  for (std::uint64_t seq = 1; seq <= 2000; ++seq) {
    batch.push_back(make_message("general", seq));
    batch.back().content.append(1200, 'x');
  }
  writer.append_messages(batch);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::filesystem::file_size(path) < size_before + 2'000'000 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(std::filesystem::file_size(path), size_before + 2'000'000);
}

// --- files and migrations -----------------------------------------------------------------

TEST(SqliteStore, ReopeningKeepsDataAndAppliesNoMigrationAgain) {
  const std::string path = scratch().new_file();
  User alice;
  alice.id = "65a1b2c3d4e5f60718293a4b";
  alice.email = "alice@example.com";
  {
    auto store = SqliteStore::open(path);
    ASSERT_TRUE(store->create_user(alice));
    ASSERT_TRUE(store->ensure_room("general", 1));
    store->append_messages(std::vector<Message>{make_message("general", 1), make_message("general", 2)});
  }
  const auto migrations_before = RawDb(path).rows("SELECT version, applied_at FROM schema_migrations ORDER BY version");
  ASSERT_EQ(migrations_before.size(), static_cast<std::size_t>(SqliteStore::latest_schema_version()));

  auto store = SqliteStore::open(path);
  EXPECT_TRUE(store->find_user_by_email("alice@example.com").has_value());
  EXPECT_FALSE(store->ensure_room("general", 2));
  EXPECT_EQ(store->max_seq("general"), 2u);
  EXPECT_EQ(RawDb(path).rows("SELECT version, applied_at FROM schema_migrations ORDER BY version"), migrations_before);
}

TEST(SqliteStore, FileDatabaseUsesWal) {
  const std::string path = scratch().new_file();
  auto store = SqliteStore::open(path);
  EXPECT_EQ(RawDb(path).rows("PRAGMA journal_mode"), (Strings{"wal"}));
}

TEST(SqliteStore, CommittedPagesReachTheDatabaseFileWithoutTheWriterCheckpointing) {
  const std::string path = scratch().new_file();
  auto store = SqliteStore::open(path);
  expect_checkpointed(*store, path);
  EXPECT_EQ(history_seqs(*store, "general").size(), 100u);  // history_seqs reads one page of 100
}

// --- several connections on one file (one per store worker lane) ---------------------------

TEST(SqliteStore, TwoInstancesOnOneFileSeeEachOthersCommits) {
  const std::string path = scratch().new_file();
  auto messages = SqliteStore::open(path);
  // A second open of a file that is open: settings and migrations again, harmlessly.
  auto general = SqliteStore::open(path);
  EXPECT_EQ(RawDb(path).rows("SELECT version FROM schema_migrations").size(),
            static_cast<std::size_t>(SqliteStore::latest_schema_version()));

  User alice;
  alice.id = "65a1b2c3d4e5f60718293a4b";
  alice.email = "alice@example.com";
  messages->append_messages(std::vector<Message>{make_message("general", 1)});
  ASSERT_TRUE(general->create_user(alice));
  EXPECT_EQ(general->max_seq("general"), 1u);
  EXPECT_TRUE(messages->find_user_by_id(alice.id).has_value());

  general->append_messages(std::vector<Message>{make_message("general", 2)});
  messages->append_messages(std::vector<Message>{make_message("general", 3, "c3")});
  ASSERT_TRUE(general->delete_message("general", make_message("general", 2).id));
  EXPECT_EQ(history_seqs(*messages, "general"), (Seqs{3u, 1u}));
  EXPECT_EQ(history_seqs(*general, "general"), (Seqs{3u, 1u}));
  const std::vector<CidKey> keys{{"general", "u1", "c3"}};
  EXPECT_TRUE(general->find_by_cids(keys).at(0).has_value());
  // Both write the same row: the later commit wins, whichever connection made it.
  ASSERT_TRUE(messages->record_login(alice.id, 10, "10.0.0.1"));
  ASSERT_TRUE(general->record_login(alice.id, 20, "10.0.0.2"));
  EXPECT_EQ(messages->find_user_by_id(alice.id)->login_ip, "10.0.0.2");
}

/// Runs `write` while another connection holds the write lock of `path`, and releases the
/// lock a moment later. The moment is not a timing assertion: it only gives `write` the
/// chance to meet the lock. Without a busy timeout, `write` fails at once with SQLITE_BUSY.
void write_while_another_connection_writes(const std::string& path, const std::function<void()>& write) {
  std::promise<void> locked;
  std::thread holder([&path, &locked] {
    RawDb db(path);
    sqlite3_busy_timeout(db.get(), 5000);  // the store's checkpointer may be reading
    db.exec("BEGIN IMMEDIATE");
    db.exec("INSERT INTO rooms (room_id, created_at) VALUES ('held-' || hex(randomblob(8)), 1)");
    locked.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    db.exec("COMMIT");
  });
  locked.get_future().wait();
  try {
    write();
  } catch (...) {
    holder.join();
    throw;
  }
  holder.join();
}

TEST(SqliteStore, WriterWaitsForAnotherConnectionsTransactionInsteadOfFailing) {
  const std::string path = scratch().new_file();
  auto store = SqliteStore::open(path);
  // A batch (BEGIN IMMEDIATE) and a single statement (autocommit) both wait.
  write_while_another_connection_writes(
      path, [&] { store->append_messages(std::vector<Message>{make_message("general", 1)}); });
  write_while_another_connection_writes(path, [&] { EXPECT_TRUE(store->ensure_room("general", 1)); });
  EXPECT_EQ(store->max_seq("general"), 1u);
  // The holder's rooms committed too, before the waiting writes could take the lock.
  EXPECT_EQ(store->list_rooms().size(), 3u);
}

TEST(SqliteStore, CheckpointsGoOnAfterTheFirstInstanceOnTheFileCloses) {
  const std::string path = scratch().new_file();
  auto first = SqliteStore::open(path);  // the one that started the file's checkpointer
  auto second = SqliteStore::open(path);
  first.reset();
  expect_checkpointed(*second, path);
}

TEST(SqliteStore, OpenInMissingDirectoryThrows) {
  const std::string path = (scratch().path() / "no-such-dir" / "chat.db").string();
  const std::string error = open_error(path);
  EXPECT_TRUE(contains(error, path));
  EXPECT_TRUE(contains(error, "unable to open database file"));
}

TEST(SqliteStore, OpenBelowARegularFileThrows) {
  // Not a permissions test: those pass when the tests run as root.
  const auto file = scratch().path() / "plain-file";
  std::ofstream(file) << "x";
  EXPECT_TRUE(contains(open_error((file / "chat.db").string()), "cannot open SQLite database"));
}

TEST(SqliteStore, OpenOfANonDatabaseFileThrows) {
  const std::string path = scratch().new_file();
  std::ofstream(path) << std::string(4096, 'x');
  EXPECT_TRUE(contains(open_error(path), "file is not a database"));
}

TEST(SqliteStore, NewerSchemaIsRefused) {
  const std::string path = scratch().new_file();
  SqliteStore::open(path);
  RawDb(path).exec("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)");
  EXPECT_TRUE(contains(open_error(path), "schema version 999 is newer"));
}

TEST(SqliteStore, MigrationAddedLaterIsAppliedOnce) {
  const std::string path = scratch().new_file();
  RawDb db(path);
  // Step 1 fails if it is ever run twice.
  const std::vector<std::string_view> v1 = {"CREATE TABLE t (a INTEGER NOT NULL)"};
  sqlite_detail::apply_migrations(db.get(), v1);
  sqlite_detail::apply_migrations(db.get(), v1);
  db.exec("INSERT INTO t (a) VALUES (7)");

  const std::vector<std::string_view> v2 = {v1[0], "ALTER TABLE t ADD COLUMN b TEXT NOT NULL DEFAULT 'x'"};
  sqlite_detail::apply_migrations(db.get(), v2);
  sqlite_detail::apply_migrations(db.get(), v2);
  EXPECT_EQ(db.rows("SELECT a, b FROM t"), (Strings{"7|x"}));
  EXPECT_EQ(db.rows("SELECT version FROM schema_migrations ORDER BY version"), (Strings{"1", "2"}));
}

TEST(SqliteStore, FailedMigrationIsRolledBackAndNotRecorded) {
  const std::string path = scratch().new_file();
  RawDb db(path);
  const std::string_view step1 = "CREATE TABLE t (a INTEGER)";
  // Creates u, then fails: u must not survive.
  const std::vector<std::string_view> broken = {step1, "CREATE TABLE u (b INTEGER); CREATE TABLE t (c INTEGER)"};
  EXPECT_THROW(sqlite_detail::apply_migrations(db.get(), broken), StoreError);
  EXPECT_EQ(db.rows("SELECT version FROM schema_migrations"), (Strings{"1"}));
  EXPECT_TRUE(db.rows("SELECT name FROM sqlite_schema WHERE name = 'u'").empty());

  const std::vector<std::string_view> fixed = {step1, "CREATE TABLE u (b INTEGER)"};
  sqlite_detail::apply_migrations(db.get(), fixed);
  EXPECT_EQ(db.rows("SELECT version FROM schema_migrations ORDER BY version"), (Strings{"1", "2"}));
}

// --- batches and constraints ----------------------------------------------------------------

TEST(SqliteStore, FailedBatchLeavesNothingBehind) {
  auto store = SqliteStore::open(":memory:");
  store->append_messages(std::vector<Message>{make_message("general", 1), make_message("general", 2)});

  auto duplicate_seq = make_message("general", 2);
  duplicate_seq.id = "ffffffffffffffffffffffff";
  const std::vector<Message> bad{make_message("general", 3), make_message("general", 4), duplicate_seq};
  try {
    store->append_messages(bad);
    ADD_FAILURE() << "a duplicate seq must fail the batch";
  } catch (const PartialAppend& e) {
    EXPECT_EQ(e.stored(), 0u) << "all or nothing: the transaction keeps no prefix";
    EXPECT_EQ(e.rest(), PartialAppend::Rest::not_stored);
  }
  EXPECT_EQ(history_seqs(*store, "general"), (Seqs{2u, 1u}));

  // The failed transaction was closed: the next batch commits normally.
  store->append_messages(std::vector<Message>{make_message("general", 3)});
  EXPECT_EQ(history_seqs(*store, "general"), (Seqs{3u, 2u, 1u}));
}

TEST(SqliteStore, DuplicateNonEmptyCidIsRejected) {
  auto store = SqliteStore::open(":memory:");
  store->append_messages(std::vector<Message>{make_message("general", 1, "c1")});
  EXPECT_THROW(store->append_messages(std::vector<Message>{make_message("general", 2, "c1")}), StoreError);
  // The same cid in another room is another message.
  store->append_messages(std::vector<Message>{make_message("random", 2, "c1")});
}

TEST(SqliteStore, SeqAboveInt64MaxIsRejected) {
  auto store = SqliteStore::open(":memory:");
  const auto too_big = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1;
  EXPECT_THROW(store->append_messages(std::vector<Message>{make_message("general", too_big)}), StoreError);
  EXPECT_EQ(store->max_seq("general"), 0u);
  // A before_seq beyond any storable seq just means "from the newest".
  store->append_messages(std::vector<Message>{make_message("general", 1)});
  EXPECT_EQ(store->history("general", 10, too_big).size(), 1u);
}

TEST(SqliteStore, DuplicateUserIdThrows) {
  auto store = SqliteStore::open(":memory:");
  User u;
  u.id = "65a1b2c3d4e5f60718293a4b";
  u.email = "a@example.com";
  ASSERT_TRUE(store->create_user(u));
  u.email = "b@example.com";
  EXPECT_THROW(store->create_user(u), StoreError);
}

// --- choices store.hpp leaves to the backend -------------------------------------------------

TEST(SqliteStore, ContentWithNulBytesRoundTrips) {
  auto store = SqliteStore::open(":memory:");
  auto m = make_message("general", 1);
  m.content = std::string("before\0after", 12);
  store->append_messages(std::vector<Message>{m});
  EXPECT_EQ(store->history("general", 1, std::nullopt).at(0).content, m.content);
}

TEST(SqliteStore, FindByCidReturnsDeletedMessageButNeverMatchesEmptyCid) {
  auto store = SqliteStore::open(":memory:");
  store->append_messages(std::vector<Message>{make_message("general", 1, "c1"), make_message("general", 2)});
  ASSERT_TRUE(store->delete_message("general", make_message("general", 1).id));
  const std::vector<CidKey> keys{{"general", "u1", "c1"}, {"general", "u1", ""}};
  const auto found = store->find_by_cids(keys);
  ASSERT_EQ(found.size(), 2u);
  ASSERT_TRUE(found[0].has_value());
  EXPECT_TRUE(found[0]->deleted);
  EXPECT_FALSE(found[1].has_value());
}

TEST(SqliteStore, PurgeReturnsIdsNewestFirst) {
  auto store = SqliteStore::open(":memory:");
  std::vector<Message> batch;
  for (std::uint64_t seq = 1; seq <= 5; ++seq) batch.push_back(make_message("general", seq));
  store->append_messages(batch);
  EXPECT_EQ(store->purge_user_messages("general", "u1", 3), (Strings{batch[4].id, batch[3].id, batch[2].id}));
  EXPECT_TRUE(store->purge_user_messages("general", "u1", 0).empty());
}

}  // namespace
}  // namespace chatorbit::store
