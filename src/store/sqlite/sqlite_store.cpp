#include "store/sqlite/sqlite_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <utility>

namespace chatorbit::store {
namespace {

// How often WalCheckpointer moves the log into the database file.
constexpr std::chrono::milliseconds kCheckpointInterval{200};

// How long a call waits for another connection's write transaction before it fails with
// SQLITE_BUSY. WAL lets readers run beside the one writer, but writers take turns: the
// store worker's lanes each hold a connection to the file, so a login's UPDATE on the
// general lane may have to wait for a message batch on the messages lane (milliseconds),
// and a second process on the file waits likewise. Long enough to ride out any batch or
// a checkpoint's fsync on a slow disk; short enough that a wedged holder surfaces as a
// StoreError (a 503) instead of hanging the lane.
constexpr std::chrono::milliseconds kBusyTimeout{5000};

// Schema migrations, oldest first: step i brings the database to version i + 1. Only
// ever append a step; never edit one that has shipped, since a database records which
// versions it has applied, not what they contained.
//
// Column names follow the MongoDB collections where those had the field. Times are
// Unix milliseconds except messages.timestamp (nanoseconds) and revoked_tokens.expires_at
// (seconds), matching the Store interface. There are no foreign keys: messages and bans
// may name rooms that were never ensure_room()ed, as on MongoDB.
constexpr std::string_view kMigration1 = R"sql(
CREATE TABLE users (
  id            TEXT PRIMARY KEY,
  username      TEXT NOT NULL,
  email         TEXT NOT NULL,
  email_lower   TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  role          TEXT NOT NULL DEFAULT 'user',
  created_at    INTEGER NOT NULL,
  update_time   INTEGER NOT NULL,
  login_time    INTEGER,
  login_ip      TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE UNIQUE INDEX users_email_lower ON users (email_lower);

CREATE TABLE rooms (
  room_id           TEXT PRIMARY KEY,
  created_at        INTEGER NOT NULL,
  slow_mode_seconds INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

CREATE TABLE messages (
  id        TEXT PRIMARY KEY,
  room_id   TEXT NOT NULL,
  user_id   TEXT NOT NULL,
  username  TEXT NOT NULL,
  content   TEXT NOT NULL,
  timestamp INTEGER NOT NULL,
  seq       INTEGER NOT NULL,
  cid       TEXT NOT NULL DEFAULT '',
  deleted   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX messages_room_seq ON messages (room_id, seq);
-- History pages (and purges) walk this newest-first without visiting deleted messages.
CREATE INDEX messages_history ON messages (room_id, seq) WHERE deleted = 0;
CREATE UNIQUE INDEX messages_room_user_cid ON messages (room_id, user_id, cid) WHERE cid <> '';

CREATE TABLE moderation_log (
  id                TEXT PRIMARY KEY,
  room_id           TEXT NOT NULL,
  actor_id          TEXT NOT NULL,
  action            TEXT NOT NULL,
  target_user_id    TEXT NOT NULL DEFAULT '',
  target_message_id TEXT NOT NULL DEFAULT '',
  reason            TEXT NOT NULL DEFAULT '',
  duration_seconds  INTEGER NOT NULL DEFAULT 0,
  at                INTEGER NOT NULL
) STRICT;
CREATE INDEX moderation_log_room_at ON moderation_log (room_id, at);

CREATE TABLE bans (
  room_id    TEXT NOT NULL,
  user_id    TEXT NOT NULL,
  actor_id   TEXT NOT NULL,
  reason     TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (room_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE revoked_tokens (
  jti        TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
)sql";

// Password changes revoke a user's older tokens (store.hpp, TokenFloor).
constexpr std::string_view kMigration2 = R"sql(
CREATE TABLE token_floors (
  user_id    TEXT PRIMARY KEY,
  not_before INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
)sql";

constexpr std::array<std::string_view, 2> kMigrations = {kMigration1, kMigration2};

[[noreturn]] void fail(sqlite3* db, std::string_view context) {
  throw StoreError("sqlite: " + std::string(context) + ": " + sqlite3_errmsg(db));
}

/// Runs fixed SQL, possibly several statements. Never for values: those are bound.
void exec(sqlite3* db, const std::string& sql, std::string_view context) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = err != nullptr ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    throw StoreError("sqlite: " + std::string(context) + ": " + message);
  }
}

/// Rolls back the open transaction, if SQLite has not already done so itself (it does on
/// some errors, e.g. SQLITE_FULL). Never throws: it runs while an error is propagating.
void rollback_quietly(sqlite3* db) noexcept {
  if (sqlite3_get_autocommit(db) == 0) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
}

/// One prepared statement, finalized on destruction.
class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql) : db_(db) {
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    // PERSISTENT: these live as long as the connection, so SQLite allocates them accordingly.
    if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &raw, &tail) !=
        SQLITE_OK) {
      fail(db, "prepare " + std::string(sql));
    }
    stmt_.reset(raw);
    const auto rest = sql.substr(tail != nullptr ? static_cast<std::size_t>(tail - sql.data()) : sql.size());
    if (rest.find_first_not_of(" \t\n;") != std::string_view::npos) {
      throw StoreError("sqlite: more than one statement in: " + std::string(sql));
    }
  }
  sqlite3* db() const { return db_; }
  sqlite3_stmt* get() const { return stmt_.get(); }

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
  };
  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
};

/// One execution of a Stmt: binds parameters in order (?1, ?2, ...), steps, reads columns.
/// The destructor resets the statement and clears its bindings, so a statement is never
/// left mid-step holding a read transaction open, whatever path leaves the scope.
class Query {
 public:
  explicit Query(Stmt& stmt) : db_(stmt.db()), stmt_(stmt.get()) {}
  ~Query() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& bind(std::string_view v) {
    // SQLITE_TRANSIENT makes SQLite copy the bytes, so a temporary may be bound. An empty
    // view may have a null data(), which SQLite would store as NULL, hence "".
    check(sqlite3_bind_text64(stmt_, ++index_, v.empty() ? "" : v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
    return *this;
  }
  Query& bind(std::int64_t v) {
    check(sqlite3_bind_int64(stmt_, ++index_, v));
    return *this;
  }
  Query& bind(std::optional<std::int64_t> v) {
    check(v ? sqlite3_bind_int64(stmt_, ++index_, *v) : sqlite3_bind_null(stmt_, ++index_));
    return *this;
  }
  Query& bind_seq(std::uint64_t seq) {
    if (seq > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw StoreError("sqlite: seq " + std::to_string(seq) + " does not fit in a 64-bit signed integer");
    }
    return bind(static_cast<std::int64_t>(seq));
  }

  /// True if a row is ready to read; false when done. Throws StoreError on any error.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_, sqlite3_sql(stmt_));
  }
  /// Runs a statement that returns no rows; the number of rows it changed.
  std::int64_t run() {
    while (step()) {
    }
    return sqlite3_changes64(db_);
  }

  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    // Length from column_bytes, not strlen: content may hold NUL bytes.
    const int n = sqlite3_column_bytes(stmt_, col);
    return p == nullptr ? std::string() : std::string(p, static_cast<std::size_t>(n));
  }
  std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail(db_, "bind parameter " + std::to_string(index_) + " of " + sqlite3_sql(stmt_));
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int index_ = 0;
};

/// A BEGIN IMMEDIATE transaction: rolled back on destruction unless committed. IMMEDIATE
/// takes the write lock up front, so a busy database is waited on at BEGIN instead of
/// failing mid-batch when a read would have to upgrade to a write.
class Transaction {
 public:
  Transaction(Stmt& begin, Stmt& commit) : db_(begin.db()), commit_(commit) { Query(begin).run(); }
  ~Transaction() {
    if (!committed_) rollback_quietly(db_);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void commit() {
    Query(commit_).run();
    committed_ = true;
  }

 private:
  sqlite3* db_;
  Stmt& commit_;
  bool committed_ = false;
};

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

/// Reads the first column of the first row of a fixed, parameterless query.
std::string query_text(sqlite3* db, std::string_view sql) {
  Stmt stmt(db, sql);
  Query q(stmt);
  return q.step() ? q.text(0) : std::string();
}

/// The WalCheckpointer for database `file`, shared by every SqliteStore this process has
/// open on it (one per store worker lane): one thread is enough per file, and a second
/// would only take turns with the first (a PASSIVE checkpoint returns SQLITE_BUSY while
/// another runs). It lives while any of those stores does. Thread-safe.
std::shared_ptr<WalCheckpointer> shared_checkpointer(const std::string& file) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<WalCheckpointer>> by_file;
  std::lock_guard lock(mu);
  std::erase_if(by_file, [](const auto& entry) { return entry.second.expired(); });
  auto& slot = by_file[file];
  if (auto running = slot.lock()) return running;
  auto started = std::make_shared<WalCheckpointer>(file, kCheckpointInterval);
  slot = started;
  return started;
}

/// Connection-level settings; they do not persist in the file (except journal_mode).
void configure(sqlite3* db) {
  // First, so that the statements after it (and the migrations) wait on a locked
  // database instead of failing.
  if (sqlite3_busy_timeout(db, static_cast<int>(kBusyTimeout.count())) != SQLITE_OK) fail(db, "set busy timeout");
  exec(db, "PRAGMA foreign_keys = ON", "enable foreign keys");
  exec(db, "PRAGMA synchronous = NORMAL", "set synchronous");
  // An in-memory database has no file name and cannot use WAL (it would report "memory").
  const char* file = sqlite3_db_filename(db, "main");
  if (file != nullptr && file[0] != '\0') {
    const std::string mode = query_text(db, "PRAGMA journal_mode = WAL");
    if (mode != "wal") throw StoreError("sqlite: cannot enable WAL journal mode (got '" + mode + "')");
    // Checkpoints belong to WalCheckpointer; this is only its fallback.
    const std::string fallback = "PRAGMA wal_autocheckpoint = " + std::to_string(WalCheckpointer::kWriterFallbackPages);
    exec(db, fallback, "set wal_autocheckpoint");
  }
}

constexpr std::string_view kUserColumns =
    "SELECT id, username, email, password_hash, role, created_at, update_time, login_time, login_ip FROM users ";
constexpr std::string_view kMessageColumns =
    "SELECT id, room_id, user_id, username, content, timestamp, seq, cid, deleted FROM messages ";
constexpr std::string_view kModerationColumns =
    "SELECT id, room_id, actor_id, action, target_user_id, target_message_id, reason, duration_seconds, at "
    "FROM moderation_log ";
constexpr std::string_view kBanColumns = "SELECT room_id, user_id, actor_id, reason, created_at, expires_at FROM bans ";

std::string cat(std::string_view a, std::string_view b) { return std::string(a) + std::string(b); }

// Each reader matches the column order of the SELECT list it is used with, above.
User read_user(const Query& q) {
  return User{.id = q.text(0),
              .username = q.text(1),
              .email = q.text(2),
              .password_hash = q.text(3),
              .role = q.text(4),
              .created_at_ms = q.int64(5),
              .update_time_ms = q.int64(6),
              .login_time_ms = q.is_null(7) ? std::nullopt : std::optional(q.int64(7)),
              .login_ip = q.text(8)};
}

Message read_message(const Query& q) {
  return Message{.id = q.text(0),
                 .room_id = q.text(1),
                 .user_id = q.text(2),
                 .username = q.text(3),
                 .content = q.text(4),
                 .timestamp_ns = q.int64(5),
                 .seq = static_cast<std::uint64_t>(q.int64(6)),
                 .cid = q.text(7),
                 .deleted = q.int64(8) != 0};
}

Room read_room(const Query& q) {
  return Room{.room_id = q.text(0), .created_at_ms = q.int64(1), .slow_mode_seconds = static_cast<int>(q.int64(2))};
}

ModerationAction read_moderation(const Query& q) {
  return ModerationAction{.id = q.text(0),
                          .room_id = q.text(1),
                          .actor_id = q.text(2),
                          .action = q.text(3),
                          .target_user_id = q.text(4),
                          .target_message_id = q.text(5),
                          .reason = q.text(6),
                          .duration_seconds = q.int64(7),
                          .at_ms = q.int64(8)};
}

Ban read_ban(const Query& q) {
  return Ban{.room_id = q.text(0),
             .user_id = q.text(1),
             .actor_id = q.text(2),
             .reason = q.text(3),
             .created_at_ms = q.int64(4),
             .expires_at_ms = q.int64(5)};
}

}  // namespace

namespace sqlite_detail {

void apply_migrations(sqlite3* db, std::span<const std::string_view> steps) {
  exec(db, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
       "create schema_migrations");
  const auto latest = static_cast<std::int64_t>(steps.size());
  const std::int64_t current = std::stoll(query_text(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
  if (current > latest) {
    throw StoreError("sqlite: database schema version " + std::to_string(current) +
                     " is newer than this build's version " + std::to_string(latest) + "; refusing to use it");
  }
  Stmt is_applied(db, "SELECT 1 FROM schema_migrations WHERE version = ?");
  Stmt record(db,
              "INSERT INTO schema_migrations (version, applied_at) VALUES (?, CAST(strftime('%s', 'now') AS INTEGER))");
  for (std::int64_t version = current + 1; version <= latest; ++version) {
    exec(db, "BEGIN IMMEDIATE", "begin migration");
    try {
      // Checked again under the write lock: another process may have just applied it.
      const bool done = [&] {
        Query q(is_applied);
        return q.bind(version).step();
      }();
      if (!done) {
        exec(db, std::string(steps[static_cast<std::size_t>(version - 1)]),
             "migration to schema version " + std::to_string(version));
        Query(record).bind(version).run();
      }
      exec(db, "COMMIT", "commit migration");
    } catch (...) {
      rollback_quietly(db);
      throw;
    }
  }
}

}  // namespace sqlite_detail

struct SqliteStore::Statements {
  explicit Statements(sqlite3* db)
      : begin(db, "BEGIN IMMEDIATE"),
        commit(db, "COMMIT"),
        insert_user(db,
                    "INSERT INTO users (id, username, email, email_lower, password_hash, role, created_at, "
                    "update_time, login_time, login_ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (email_lower) DO NOTHING"),
        user_by_id(db, cat(kUserColumns, "WHERE id = ?")),
        user_by_email(db, cat(kUserColumns, "WHERE email_lower = ?")),
        update_password(db, "UPDATE users SET password_hash = ?, update_time = ? WHERE id = ?"),
        record_login(db, "UPDATE users SET login_time = ?, login_ip = ? WHERE id = ?"),
        set_role(db, "UPDATE users SET role = ?, update_time = ? WHERE id = ?"),
        revoke_token(db,
                     "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) "
                     "ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at"),
        delete_expired_revocations(db, "DELETE FROM revoked_tokens WHERE expires_at <= ?"),
        active_revocations(db, "SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > ? ORDER BY jti"),
        put_token_floor(db,
                        "INSERT INTO token_floors (user_id, not_before, expires_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (user_id) DO UPDATE SET not_before = excluded.not_before, "
                        "expires_at = excluded.expires_at"),
        delete_expired_floors(db, "DELETE FROM token_floors WHERE expires_at <= ?"),
        active_token_floors(db,
                            "SELECT user_id, not_before, expires_at FROM token_floors WHERE expires_at > ? "
                            "ORDER BY user_id"),
        ensure_room(db,
                    "INSERT INTO rooms (room_id, created_at, slow_mode_seconds) VALUES (?, ?, 0) "
                    "ON CONFLICT (room_id) DO NOTHING"),
        find_room(db, "SELECT room_id, created_at, slow_mode_seconds FROM rooms WHERE room_id = ?"),
        list_rooms(db, "SELECT room_id, created_at, slow_mode_seconds FROM rooms ORDER BY room_id"),
        set_slow_mode(db, "UPDATE rooms SET slow_mode_seconds = ? WHERE room_id = ?"),
        insert_message(db,
                       "INSERT INTO messages (id, room_id, user_id, username, content, timestamp, seq, cid, deleted) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        // "deleted = 0" spelled out so the planner can use the partial index messages_history.
        history_latest(db, cat(kMessageColumns, "WHERE room_id = ? AND deleted = 0 ORDER BY seq DESC LIMIT ?")),
        history_before(db,
                       cat(kMessageColumns, "WHERE room_id = ? AND deleted = 0 AND seq < ? ORDER BY seq DESC LIMIT ?")),
        max_seq(db, "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE room_id = ?"),
        // "cid <> ''" spelled out so the planner can use the partial index messages_room_user_cid.
        find_by_cid(db, cat(kMessageColumns, "WHERE room_id = ? AND user_id = ? AND cid = ? AND cid <> ''")),
        delete_message(db, "UPDATE messages SET deleted = 1 WHERE room_id = ? AND id = ? AND deleted = 0"),
        purge_user(db,
                   "UPDATE messages SET deleted = 1 WHERE id IN (SELECT id FROM messages WHERE room_id = ? AND "
                   "user_id = ? AND deleted = 0 ORDER BY seq DESC LIMIT ?) RETURNING id, seq"),
        clear_room(db, "UPDATE messages SET deleted = 1 WHERE room_id = ? AND deleted = 0"),
        insert_moderation(db,
                          "INSERT INTO moderation_log (id, room_id, actor_id, action, target_user_id, "
                          "target_message_id, reason, duration_seconds, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        // rowid breaks ties between actions recorded in the same millisecond.
        moderation_log(db, cat(kModerationColumns, "WHERE room_id = ? ORDER BY at DESC, rowid DESC LIMIT ?")),
        put_ban(db,
                "INSERT INTO bans (room_id, user_id, actor_id, reason, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (room_id, user_id) DO UPDATE SET "
                "actor_id = excluded.actor_id, reason = excluded.reason, created_at = excluded.created_at, "
                "expires_at = excluded.expires_at"),
        remove_ban(db, "DELETE FROM bans WHERE room_id = ? AND user_id = ?"),
        active_bans(db, cat(kBanColumns, "WHERE room_id = ? AND (expires_at = 0 OR expires_at > ?) ORDER BY user_id")),
        all_active_bans(db, cat(kBanColumns, "WHERE expires_at = 0 OR expires_at > ? ORDER BY room_id, user_id")) {}

  Stmt begin, commit;
  Stmt insert_user, user_by_id, user_by_email, update_password, record_login, set_role;
  Stmt revoke_token, delete_expired_revocations, active_revocations;
  Stmt put_token_floor, delete_expired_floors, active_token_floors;
  Stmt ensure_room, find_room, list_rooms, set_slow_mode;
  Stmt insert_message, history_latest, history_before, max_seq, find_by_cid, delete_message, purge_user, clear_room;
  Stmt insert_moderation, moderation_log;
  Stmt put_ban, remove_ban, active_bans, all_active_bans;
};

void SqliteStore::DbCloser::operator()(sqlite3* db) const noexcept {
  // close_v2 rather than close: it cannot fail with SQLITE_BUSY and leak the connection.
  sqlite3_close_v2(db);
}

std::unique_ptr<SqliteStore> SqliteStore::open(const std::string& path) {
  sqlite3* raw = nullptr;
  // NOMUTEX: one thread owns the store (see the header), so SQLite's own locking is waste.
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  DbHandle db(raw);  // even a failed open returns a handle that must be closed
  const std::string where = "cannot open SQLite database '" + path + "': ";
  if (rc != SQLITE_OK) {
    std::string reason = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    if (rc == SQLITE_CANTOPEN) reason += " (does its directory exist, and may this process write there?)";
    throw StoreError(where + reason);
  }
  // SQLite silently falls back to read-only when the file is not writable; the first
  // write would then fail far from here.
  if (sqlite3_db_readonly(db.get(), "main") == 1) throw StoreError(where + "the file is read-only");
  try {
    configure(db.get());
    sqlite_detail::apply_migrations(db.get(), kMigrations);
    std::unique_ptr<SqliteStore> store(new SqliteStore(std::move(db)));
    const char* file = sqlite3_db_filename(store->db_.get(), "main");
    if (file != nullptr && file[0] != '\0') {
      store->checkpointer_ = shared_checkpointer(file);
    }
    return store;
  } catch (const StoreError& e) {
    throw StoreError(where + e.what());
  }
}

int SqliteStore::latest_schema_version() noexcept { return static_cast<int>(kMigrations.size()); }

SqliteStore::SqliteStore(DbHandle db) : db_(std::move(db)), stmts_(std::make_unique<Statements>(db_.get())) {}

SqliteStore::~SqliteStore() = default;

// --- users ---------------------------------------------------------------------------

bool SqliteStore::create_user(const User& user) {
  Query q(stmts_->insert_user);
  q.bind(user.id).bind(user.username).bind(user.email).bind(ascii_lower(user.email)).bind(user.password_hash);
  q.bind(user.role).bind(user.created_at_ms).bind(user.update_time_ms).bind(user.login_time_ms).bind(user.login_ip);
  // The upsert turns an email clash into "no row inserted"; any other constraint throws.
  return q.run() == 1;
}

std::optional<User> SqliteStore::find_user_by_email(std::string_view email) {
  Query q(stmts_->user_by_email);
  q.bind(ascii_lower(email));
  if (!q.step()) return std::nullopt;
  return read_user(q);
}

std::optional<User> SqliteStore::find_user_by_id(std::string_view id) {
  Query q(stmts_->user_by_id);
  q.bind(id);
  if (!q.step()) return std::nullopt;
  return read_user(q);
}

bool SqliteStore::update_password_hash(std::string_view user_id, std::string_view hash, std::int64_t now_ms) {
  return Query(stmts_->update_password).bind(hash).bind(now_ms).bind(user_id).run() == 1;
}

bool SqliteStore::record_login(std::string_view user_id, std::int64_t now_ms, std::string_view ip) {
  return Query(stmts_->record_login).bind(now_ms).bind(ip).bind(user_id).run() == 1;
}

bool SqliteStore::set_role(std::string_view user_id, std::string_view role, std::int64_t now_ms) {
  return Query(stmts_->set_role).bind(role).bind(now_ms).bind(user_id).run() == 1;
}

// --- revoked tokens ----------------------------------------------------------------------

void SqliteStore::revoke_token(std::string_view jti, std::int64_t expires_at_s) {
  Query(stmts_->revoke_token).bind(jti).bind(expires_at_s).run();
}

std::vector<std::pair<std::string, std::int64_t>> SqliteStore::active_revocations(std::int64_t now_s) {
  Query(stmts_->delete_expired_revocations).bind(now_s).run();
  std::vector<std::pair<std::string, std::int64_t>> out;
  Query q(stmts_->active_revocations);
  q.bind(now_s);
  while (q.step()) out.emplace_back(q.text(0), q.int64(1));
  return out;
}

void SqliteStore::put_token_floor(const TokenFloor& floor) {
  Query(stmts_->put_token_floor).bind(floor.user_id).bind(floor.not_before_s).bind(floor.expires_at_s).run();
}

std::vector<TokenFloor> SqliteStore::active_token_floors(std::int64_t now_s) {
  Query(stmts_->delete_expired_floors).bind(now_s).run();
  std::vector<TokenFloor> out;
  Query q(stmts_->active_token_floors);
  q.bind(now_s);
  while (q.step()) out.push_back({q.text(0), q.int64(1), q.int64(2)});
  return out;
}

// --- rooms ---------------------------------------------------------------------------

bool SqliteStore::ensure_room(std::string_view room_id, std::int64_t now_ms) {
  return Query(stmts_->ensure_room).bind(room_id).bind(now_ms).run() == 1;
}

std::optional<Room> SqliteStore::find_room(std::string_view room_id) {
  Query q(stmts_->find_room);
  q.bind(room_id);
  if (!q.step()) return std::nullopt;
  return read_room(q);
}

std::vector<Room> SqliteStore::list_rooms() {
  std::vector<Room> out;
  Query q(stmts_->list_rooms);
  while (q.step()) out.push_back(read_room(q));
  return out;
}

bool SqliteStore::set_slow_mode(std::string_view room_id, int seconds) {
  return Query(stmts_->set_slow_mode).bind(std::int64_t{seconds}).bind(room_id).run() == 1;
}

// --- messages --------------------------------------------------------------------------

void SqliteStore::append_messages(std::span<const Message> batch) {
  if (batch.empty()) return;
  try {
    // One transaction for the batch: atomic, and one fsync instead of one per message.
    Transaction tx(stmts_->begin, stmts_->commit);
    for (const Message& m : batch) {
      Query q(stmts_->insert_message);
      q.bind(m.id).bind(m.room_id).bind(m.user_id).bind(m.username).bind(m.content).bind(m.timestamp_ns);
      q.bind_seq(m.seq).bind(m.cid).bind(std::int64_t{m.deleted ? 1 : 0});
      q.run();
    }
    tx.commit();
  } catch (const StoreError& e) {
    // The transaction is rolled back by now (tx's destructor, or SQLite itself when COMMIT
    // fails): nothing of the batch is stored, whichever message failed.
    throw PartialAppend(0, PartialAppend::Rest::not_stored, e.what());
  }
}

std::vector<Message> SqliteStore::history(std::string_view room_id, int limit,
                                          std::optional<std::uint64_t> before_seq) {
  std::vector<Message> out;
  // SQLite reads a negative LIMIT as "no limit"; the contract says "at most limit".
  if (limit <= 0) return out;
  constexpr auto kMaxSeq = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  // No stored seq exceeds INT64_MAX (append refuses them), so a larger bound means "all".
  const bool paged = before_seq.has_value() && *before_seq <= kMaxSeq;
  Query q(paged ? stmts_->history_before : stmts_->history_latest);
  q.bind(room_id);
  if (paged) q.bind_seq(*before_seq);
  q.bind(std::int64_t{limit});
  while (q.step()) out.push_back(read_message(q));
  return out;
}

std::uint64_t SqliteStore::max_seq(std::string_view room_id) {
  Query q(stmts_->max_seq);
  q.bind(room_id);
  return q.step() ? static_cast<std::uint64_t>(q.int64(0)) : 0;
}

std::vector<std::optional<Message>> SqliteStore::find_by_cids(std::span<const CidKey> keys) {
  std::vector<std::optional<Message>> found(keys.size());
  // An empty cid means "the client gave none": such messages are never duplicates.
  if (std::none_of(keys.begin(), keys.end(), [](const CidKey& k) { return !k.cid.empty(); })) return found;
  // One transaction for the whole batch: outside one, every SELECT takes and drops the
  // file locks on its own (two fcntl calls per message in the ingress profile).
  Transaction tx(stmts_->begin, stmts_->commit);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].cid.empty()) continue;
    Query q(stmts_->find_by_cid);
    q.bind(keys[i].room_id).bind(keys[i].user_id).bind(keys[i].cid);
    if (q.step()) found[i] = read_message(q);
  }
  tx.commit();
  return found;
}

bool SqliteStore::delete_message(std::string_view room_id, std::string_view message_id) {
  return Query(stmts_->delete_message).bind(room_id).bind(message_id).run() == 1;
}

std::vector<std::string> SqliteStore::purge_user_messages(std::string_view room_id, std::string_view user_id,
                                                          int limit) {
  if (limit <= 0) return {};
  // One UPDATE ... RETURNING: atomic without an explicit transaction. RETURNING's row
  // order is unspecified, hence the sort.
  std::vector<std::pair<std::int64_t, std::string>> purged;
  {
    Query q(stmts_->purge_user);
    q.bind(room_id).bind(user_id).bind(std::int64_t{limit});
    while (q.step()) purged.emplace_back(q.int64(1), q.text(0));
  }
  std::sort(purged.begin(), purged.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> ids;
  ids.reserve(purged.size());
  for (auto& [seq, id] : purged) ids.push_back(std::move(id));
  return ids;
}

std::int64_t SqliteStore::clear_room(std::string_view room_id) { return Query(stmts_->clear_room).bind(room_id).run(); }

// --- moderation ------------------------------------------------------------------------

void SqliteStore::record_moderation(const ModerationAction& a) {
  Query q(stmts_->insert_moderation);
  q.bind(a.id).bind(a.room_id).bind(a.actor_id).bind(a.action).bind(a.target_user_id).bind(a.target_message_id);
  q.bind(a.reason).bind(a.duration_seconds).bind(a.at_ms);
  q.run();
}

std::vector<ModerationAction> SqliteStore::moderation_log(std::string_view room_id, int limit) {
  std::vector<ModerationAction> out;
  if (limit <= 0) return out;
  Query q(stmts_->moderation_log);
  q.bind(room_id).bind(std::int64_t{limit});
  while (q.step()) out.push_back(read_moderation(q));
  return out;
}

void SqliteStore::put_ban(const Ban& ban) {
  Query q(stmts_->put_ban);
  q.bind(ban.room_id).bind(ban.user_id).bind(ban.actor_id).bind(ban.reason).bind(ban.created_at_ms);
  q.bind(ban.expires_at_ms);
  q.run();
}

bool SqliteStore::remove_ban(std::string_view room_id, std::string_view user_id) {
  return Query(stmts_->remove_ban).bind(room_id).bind(user_id).run() == 1;
}

std::vector<Ban> SqliteStore::active_bans(std::string_view room_id, std::int64_t now_ms) {
  std::vector<Ban> out;
  Query q(stmts_->active_bans);
  q.bind(room_id).bind(now_ms);
  while (q.step()) out.push_back(read_ban(q));
  return out;
}

std::vector<Ban> SqliteStore::all_active_bans(std::int64_t now_ms) {
  std::vector<Ban> out;
  Query q(stmts_->all_active_bans);
  q.bind(now_ms);
  while (q.step()) out.push_back(read_ban(q));
  return out;
}

}  // namespace chatorbit::store
