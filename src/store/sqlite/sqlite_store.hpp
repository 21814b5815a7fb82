#pragma once
// The embedded Store: one SQLite database file (or ":memory:"), the default backend.

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "store/sqlite/wal_checkpointer.hpp"
#include "store/store.hpp"

struct sqlite3;

namespace chatorbit::store {

/// Store on SQLite, through the C API.
///
/// Threading: NOT thread-safe. One thread (a StoreWorker lane's) owns an instance and
/// makes the calls, as store.hpp requires; the connection is opened without SQLite's own
/// mutexes. Handing the instance to another thread between calls (open() on the main
/// thread, then the lane) is fine; two calls that overlap in time are not.
///
/// Several instances on one file: each is its own connection; open() on a file another
/// instance (or process) has open is fine (migrations re-check under the write lock).
/// WAL lets their reads run beside one writer; writers take turns, coordinated by
/// SQLite's file locks: a call waits up to kBusyTimeout (5 s, sqlite_store.cpp) for
/// another connection's write transaction, then throws StoreError. The instances on one
/// file in this process share one WalCheckpointer.
///
/// Connection settings: journal_mode=WAL (file databases only), synchronous=NORMAL
/// (a power loss may lose the last commits, never corrupt the file), foreign_keys=ON,
/// busy timeout 5 s. ":memory:" is private to its instance: a second open() is a second,
/// empty database.
///
/// Schema: an ordered list of migrations; open() applies those not yet recorded in
/// schema_migrations, each in its own transaction, so re-opening is a no-op and a newer
/// build migrates an older file forward. A file whose schema is newer than this build's
/// is refused rather than guessed at.
///
/// Behaviour where store.hpp leaves room:
///  - Emails are compared after ASCII lower-casing only; non-ASCII letters compare as-is.
///  - create_user throws StoreError on a duplicate id (a caller bug, unlike a taken email).
///  - append_messages runs in one BEGIN IMMEDIATE transaction, all or nothing: any failure
///    (a duplicate id or (room_id, seq), a duplicate non-empty (room_id, user_id, cid), a
///    seq above INT64_MAX, an I/O error) rolls the whole batch back and throws
///    PartialAppend with stored() == 0 and Rest::not_stored. An empty batch does nothing.
///  - find_by_cids does return a since-deleted message (deleted = true), so a resend of
///    it is not stored again; it reads in one transaction (one lock, not one per key).
///  - purge_user_messages and clear_room only count messages not already deleted;
///    purge returns ids newest first.
///  - active_revocations deletes the expired rows; ties in moderation_log's time are
///    broken by insertion order; active_bans is ordered by user_id, all_active_bans by
///    (room_id, user_id), active_revocations by jti.
///  - A ban or revocation is in force while now < its expiry; a limit <= 0 returns nothing.
///  - Moderation actions and users carry caller-chosen ids; a duplicate id throws.
class SqliteStore final : public Store {
 public:
  /// Opens the database at `path`, creating the file if missing (":memory:" for a private
  /// in-memory database), applies the connection settings and pending migrations. Throws
  /// StoreError naming `path` if the file cannot be opened or created (missing directory,
  /// no permission), is read-only, is not a SQLite database, or has a newer schema.
  static std::unique_ptr<SqliteStore> open(const std::string& path);

  /// The schema version this build migrates to: the number of migrations it knows.
  static int latest_schema_version() noexcept;

  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  bool create_user(const User& user) override;
  std::optional<User> find_user_by_email(std::string_view email) override;
  std::optional<User> find_user_by_id(std::string_view id) override;
  bool update_password_hash(std::string_view user_id, std::string_view hash, std::int64_t now_ms) override;
  bool record_login(std::string_view user_id, std::int64_t now_ms, std::string_view ip) override;
  bool set_role(std::string_view user_id, std::string_view role, std::int64_t now_ms) override;

  void revoke_token(std::string_view jti, std::int64_t expires_at_s) override;
  void put_token_floor(const TokenFloor& floor) override;
  std::vector<TokenFloor> active_token_floors(std::int64_t now_s) override;
  std::vector<std::pair<std::string, std::int64_t>> active_revocations(std::int64_t now_s) override;

  bool ensure_room(std::string_view room_id, std::int64_t now_ms) override;
  std::optional<Room> find_room(std::string_view room_id) override;
  std::vector<Room> list_rooms() override;
  bool set_slow_mode(std::string_view room_id, int seconds) override;

  void append_messages(std::span<const Message> batch) override;
  std::vector<Message> history(std::string_view room_id, int limit, std::optional<std::uint64_t> before_seq) override;
  std::uint64_t max_seq(std::string_view room_id) override;
  std::vector<std::optional<Message>> find_by_cids(std::span<const CidKey> keys) override;
  bool delete_message(std::string_view room_id, std::string_view message_id) override;
  std::vector<std::string> purge_user_messages(std::string_view room_id, std::string_view user_id, int limit) override;
  std::int64_t clear_room(std::string_view room_id) override;

  void record_moderation(const ModerationAction& action) override;
  std::vector<ModerationAction> moderation_log(std::string_view room_id, int limit) override;

  void put_ban(const Ban& ban) override;
  bool remove_ban(std::string_view room_id, std::string_view user_id) override;
  std::vector<Ban> active_bans(std::string_view room_id, std::int64_t now_ms) override;
  std::vector<Ban> all_active_bans(std::int64_t now_ms) override;

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const noexcept;
  };
  using DbHandle = std::unique_ptr<sqlite3, DbCloser>;
  struct Statements;  // every statement, prepared once in the constructor

  explicit SqliteStore(DbHandle db);

  DbHandle db_;
  // Declared after db_, so the statements are finalized before the connection closes.
  std::unique_ptr<Statements> stmts_;
  // File databases only; shared with the other instances on the same file. Released
  // before this connection closes, so the last connection's close (which checkpoints and
  // removes the log) is not held back by the checkpointer's.
  std::shared_ptr<WalCheckpointer> checkpointer_;
};

namespace sqlite_detail {

/// Brings `db` to schema version steps.size(): creates schema_migrations if missing, then
/// runs each step i (version i + 1) not yet recorded there, in its own BEGIN IMMEDIATE
/// transaction together with its schema_migrations row. Steps are fixed SQL (no
/// parameters, no transaction control). Throws StoreError, leaving the failed step rolled
/// back and earlier ones applied, or if the database records a version above
/// steps.size(). SqliteStore::open uses it; exposed so tests can migrate with their own
/// step lists.
void apply_migrations(sqlite3* db, std::span<const std::string_view> steps);

}  // namespace sqlite_detail

}  // namespace chatorbit::store
