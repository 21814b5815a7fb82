#pragma once
// The store seam: what must last (users, rooms, messages, moderation log, bans,
// revoked tokens). Implementations: sqlite/ (embedded default) and, later, mongo/.
//
// Threading contract: a Store's methods block (SQLite and libmongoc are both
// synchronous APIs) and are called only from a StoreWorker lane's thread, never from an
// event loop. One Store instance is one connection, used by one thread at a time: an
// implementation need not be thread-safe. There may be several instances over one
// database at once (one per lane, each from the store's opener, and other processes):
// each sees what the others have committed, and the backend coordinates their writes
// (SQLite's file locks, MongoDB's server). Errors from the database are thrown as
// StoreError (append_messages: PartialAppend, a StoreError that says what was stored);
// "not found" and "already exists" are values, not errors.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace chatorbit::store {

/// A database failure (I/O, corruption, connection lost). Callers answer 503/500.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The database could not be reached, or stopped answering: the call may or may not have
/// taken effect (a read did nothing), and may succeed if made again shortly. Callers
/// answer 503 / `unavailable`.
class StoreUnavailable : public StoreError {
 public:
  using StoreError::StoreError;
};

struct Message;

/// How append_messages() failed: what of its batch is stored. Ordered semantics, so that
/// MongoDB's ordered insert_many can report it exactly: messages [0, stored()) of the
/// batch are stored; the rest, [stored(), size), are either all not stored (the database
/// refused message stored(), or the batch never started) or of unknown outcome (the
/// connection was lost before the database answered for them: any of them may be stored).
class PartialAppend : public StoreError {
 public:
  enum class Rest {
    not_stored,  ///< none of the rest is stored: safe to report "not sent"
    unknown,     ///< any of the rest may be stored; only a read can tell
  };
  /// `unreachable`: the database could not be reached or stopped answering (a retry
  /// later may succeed), rather than refusing the batch.
  PartialAppend(std::size_t stored, Rest rest, const std::string& what, bool unreachable = false)
      : StoreError(what), stored_(stored), rest_(rest), unreachable_(unreachable) {}
  /// Message stored() was refused because its (room_id, user_id, cid) is stored already,
  /// as `original` (see Store::refuses_duplicate_cids); Rest::not_stored.
  PartialAppend(std::size_t stored, const std::string& what, Message original);
  /// How many messages, from the start of the batch, are stored.
  std::size_t stored() const { return stored_; }
  Rest rest() const { return rest_; }
  bool unreachable() const { return unreachable_; }
  /// Set when message stored() is a resend of this stored message.
  const std::shared_ptr<const Message>& duplicate_of() const { return duplicate_of_; }

 private:
  std::size_t stored_;
  Rest rest_;
  bool unreachable_;
  std::shared_ptr<const Message> duplicate_of_;
};

struct User {
  std::string id;  ///< 24-hex ObjectId
  std::string username;
  std::string email;          ///< as registered; uniqueness is case-insensitive
  std::string password_hash;  ///< argon2id ($argon2id$...) or bcrypt ($2a$/$2b$...)
  std::string role;           ///< "user", "moderator" or "admin"
  std::int64_t created_at_ms = 0;
  std::int64_t update_time_ms = 0;
  std::optional<std::int64_t> login_time_ms;
  std::string login_ip;
};

struct Room {
  std::string room_id;
  std::int64_t created_at_ms = 0;
  int slow_mode_seconds = 0;
};

struct Message {
  std::string id;  ///< 24-hex ObjectId
  std::string room_id;
  std::string user_id;
  std::string username;
  std::string content;
  std::int64_t timestamp_ns = 0;  ///< Unix nanoseconds
  std::uint64_t seq = 0;          ///< per-room sequence, 1, 2, 3, ...
  std::string cid;                ///< client-chosen id for idempotent resends, may be empty
  bool deleted = false;
};

/// What identifies a resend: the same client id from the same user in the same room.
struct CidKey {
  std::string_view room_id;
  std::string_view user_id;
  std::string_view cid;
};

/// One moderation action, for the audit log. room_id is empty for global actions.
struct ModerationAction {
  std::string id;
  std::string room_id;
  std::string actor_id;
  std::string action;  ///< "ban", "timeout", "unban", "delete", "clear", "slow_mode", "purge", "role"
  std::string target_user_id;
  std::string target_message_id;
  std::string reason;
  std::int64_t duration_seconds = 0;
  std::int64_t at_ms = 0;
};

/// A durable ban record; room_id is empty for a global ban. expires_at_ms 0 = permanent.
struct Ban {
  std::string room_id;
  std::string user_id;
  std::string actor_id;
  std::string reason;
  std::int64_t created_at_ms = 0;
  std::int64_t expires_at_ms = 0;
};

/// Every token of `user_id` with an issue time (iat) before `not_before_s` is revoked.
/// Kept until `expires_at_s`, after which such tokens have expired anyway. Unix seconds.
struct TokenFloor {
  std::string user_id;
  std::int64_t not_before_s = 0;
  std::int64_t expires_at_s = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  /// True if append_messages itself refuses a message whose non-empty (room_id, user_id,
  /// cid) is already stored, with a PartialAppend whose duplicate_of() is the stored one:
  /// then callers need not call find_by_cids before every append (a resend is found on
  /// the write that would have stored it twice, and looked up only then). False: a
  /// backend that can only refuse the whole batch (SQLite's one transaction).
  virtual bool refuses_duplicate_cids() const { return false; }

  // --- users ---------------------------------------------------------------------
  /// Inserts `user` (id, email, ... all set by the caller). False if the email is
  /// already registered (compared case-insensitively).
  virtual bool create_user(const User& user) = 0;
  virtual std::optional<User> find_user_by_email(std::string_view email) = 0;
  virtual std::optional<User> find_user_by_id(std::string_view id) = 0;
  /// Replaces the password hash; false if the user does not exist.
  virtual bool update_password_hash(std::string_view user_id, std::string_view hash, std::int64_t now_ms) = 0;
  /// Records a successful login; false if the user does not exist.
  virtual bool record_login(std::string_view user_id, std::int64_t now_ms, std::string_view ip) = 0;
  /// Sets the role; false if the user does not exist.
  virtual bool set_role(std::string_view user_id, std::string_view role, std::int64_t now_ms) = 0;

  // --- revoked tokens (logout) -----------------------------------------------------
  /// Remembers that token `jti` is revoked until `expires_at_s` (Unix seconds).
  virtual void revoke_token(std::string_view jti, std::int64_t expires_at_s) = 0;
  /// Revocations still in force at `now_s`; expired ones may be deleted as a side effect.
  virtual std::vector<std::pair<std::string, std::int64_t>> active_revocations(std::int64_t now_s) = 0;
  /// Revokes every token of the user issued before `floor.not_before_s` (a password
  /// change); replaces an earlier floor of the same user.
  virtual void put_token_floor(const TokenFloor& floor) = 0;
  /// Floors still in force at `now_s` (expires_at_s > now_s); expired ones may be deleted.
  virtual std::vector<TokenFloor> active_token_floors(std::int64_t now_s) = 0;

  // --- rooms -----------------------------------------------------------------------
  /// Creates the room if missing. True if it was created by this call.
  virtual bool ensure_room(std::string_view room_id, std::int64_t now_ms) = 0;
  virtual std::optional<Room> find_room(std::string_view room_id) = 0;
  /// All rooms, ordered by room_id.
  virtual std::vector<Room> list_rooms() = 0;
  /// False if the room does not exist.
  virtual bool set_slow_mode(std::string_view room_id, int seconds) = 0;

  // --- messages --------------------------------------------------------------------
  /// Appends a batch in order (one transaction / one ordered insert_many). Returns once
  /// every message is stored. A message whose id or (room_id, seq) is already stored, or
  /// earlier in the batch, is refused. On any failure it throws PartialAppend, which
  /// says what the failed batch left stored: the first stored() messages, and the rest
  /// either not stored or of unknown outcome (see PartialAppend). A refused message is
  /// not stored (Rest::not_stored); only a lost connection leaves an outcome unknown.
  /// An all-or-nothing backend (SQLite: one transaction) always reports stored() == 0,
  /// Rest::not_stored. A caller that gets any other exception (a contract breach) must
  /// read it as stored() == 0, Rest::unknown.
  virtual void append_messages(std::span<const Message> batch) = 0;
  /// Newest first, not deleted, at most `limit`; only seq < before_seq when given.
  virtual std::vector<Message> history(std::string_view room_id, int limit,
                                       std::optional<std::uint64_t> before_seq) = 0;
  /// The highest seq stored for the room (0 if none): sequences resume after a restart.
  virtual std::uint64_t max_seq(std::string_view room_id) = 0;
  /// For each key, the message previously stored with that (room, user, cid), for
  /// idempotent resends; result[i] answers keys[i]. An empty cid never matches. Asked
  /// once per batch of the message pipeline, so a backend answers all keys in one
  /// read transaction or query.
  virtual std::vector<std::optional<Message>> find_by_cids(std::span<const CidKey> keys) = 0;
  /// Marks a message deleted; false if no such message in that room (or already deleted).
  virtual bool delete_message(std::string_view room_id, std::string_view message_id) = 0;
  /// Marks the user's newest `limit` messages in the room deleted; returns their ids.
  virtual std::vector<std::string> purge_user_messages(std::string_view room_id, std::string_view user_id,
                                                       int limit) = 0;
  /// Marks every message of the room deleted; returns how many.
  virtual std::int64_t clear_room(std::string_view room_id) = 0;

  // --- moderation ------------------------------------------------------------------
  virtual void record_moderation(const ModerationAction& action) = 0;
  /// Newest first, at most `limit`. room_id empty = global actions.
  virtual std::vector<ModerationAction> moderation_log(std::string_view room_id, int limit) = 0;

  /// Inserts or replaces the ban for (room_id, user_id).
  virtual void put_ban(const Ban& ban) = 0;
  /// False if there was no such ban.
  virtual bool remove_ban(std::string_view room_id, std::string_view user_id) = 0;
  /// Bans in force at `now_ms` (permanent or not yet expired) for the room ("" = global).
  virtual std::vector<Ban> active_bans(std::string_view room_id, std::int64_t now_ms) = 0;
  /// Every ban in force at `now_ms`, all rooms and global: engines load them at start-up.
  virtual std::vector<Ban> all_active_bans(std::int64_t now_ms) = 0;
};

inline PartialAppend::PartialAppend(std::size_t stored, const std::string& what, Message original)
    : StoreError(what),
      stored_(stored),
      rest_(Rest::not_stored),
      unreachable_(false),
      duplicate_of_(std::make_shared<const Message>(std::move(original))) {}

}  // namespace chatorbit::store
