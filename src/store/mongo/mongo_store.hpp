#pragma once
// The Store on MongoDB, through the official C driver (libmongoc 1.23), on the original
// Go service's database: collections `users`, `messages` and `rooms` keep its field
// names, and ChatOrbit adds its fields beside them and collections of its own
// (docs/mongodb.md lists every collection, field and index).
//
// Threading (store.hpp): a MongoPool is shared; each MongoStore holds one client popped
// from the pool for its life and is used by one StoreWorker lane's thread at a time.
//
// Server features: nothing here needs what FerretDB 1.x (the test server) lacks. No TTL
// index (expired revocations, floors and bans are filtered by time and swept when read),
// no transaction (a batch is one ordered insert, whose stored prefix the server reports),
// no change stream. Write concern is sent on every write; FerretDB ignores it.
//
// Behaviour where store.hpp leaves room:
//  - Emails are unique after ASCII lower-casing (the `email_lower` field, filled in at
//    start-up for users the original registered).
//  - append_messages is one ordered insert: on a refusal, the messages before it stay
//    stored and PartialAppend says how many. A message whose cid is stored already is
//    refused by the unique (room, user, cid) index and reported with the stored one
//    (duplicate_of()), so the pipeline looks cids up only on such a conflict. A lost
//    connection is retried (twice, the ids fixed before the first try); a duplicate id
//    on a retry whose earlier try's outcome was unknown is checked by reading the
//    message back, and counts as stored when it is the same message.
//  - Messages the original stored (no `seq`, no `username`, `user_id` maybe an ObjectId)
//    read back with seq 0 and the username empty, after every numbered message of their
//    room, newest first; `chatorbit migrate` numbers them.
//  - Ids that are 24 hex characters are stored as ObjectIds, other ids as strings.

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "store/store.hpp"

struct _mongoc_client_t;  // libmongoc's, kept out of this header

namespace chatorbit::store {

/// A libmongoc client pool over one MONGO_URL, with the settings every store call uses.
/// Thread-safe.
class MongoPool {
 public:
  /// Parses `url` (and applies `settings` where the URL sets nothing), opens no
  /// connection yet. Throws StoreError on a URL libmongoc refuses (the password is not
  /// echoed).
  MongoPool(const std::string& url, const MongoSettings& settings);
  ~MongoPool();
  MongoPool(const MongoPool&) = delete;
  MongoPool& operator=(const MongoPool&) = delete;

  /// The database named in the URL, or "chatorbit".
  const std::string& database() const;
  /// The URL without credentials, for logs.
  std::string location() const;

  /// A client for the calling thread (waits while all are out); give it back with push().
  _mongoc_client_t* pop();
  void push(_mongoc_client_t* client);

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

class MongoStore : public Store {
 public:
  /// Takes a client from `pool` (kept alive while the store lives) and, when `prepare`,
  /// makes the database ready: fills in `email_lower` for users without it, then creates
  /// the indexes (idempotent). Throws StoreError if the server cannot be reached within
  /// the timeout, or an index cannot be built (e.g. two users whose emails differ only in
  /// case).
  MongoStore(std::shared_ptr<MongoPool> pool, bool prepare);
  ~MongoStore() override;
  MongoStore(const MongoStore&) = delete;
  MongoStore& operator=(const MongoStore&) = delete;

  /// Drops the whole database (tests only).
  void drop_database();

  bool create_user(const User& user) override;
  std::optional<User> find_user_by_email(std::string_view email) override;
  std::optional<User> find_user_by_id(std::string_view id) override;
  bool update_password_hash(std::string_view user_id, std::string_view hash, std::int64_t now_ms) override;
  bool record_login(std::string_view user_id, std::int64_t now_ms, std::string_view ip) override;
  bool set_role(std::string_view user_id, std::string_view role, std::int64_t now_ms) override;

  void revoke_token(std::string_view jti, std::int64_t expires_at_s) override;
  std::vector<std::pair<std::string, std::int64_t>> active_revocations(std::int64_t now_s) override;
  void put_token_floor(const TokenFloor& floor) override;
  std::vector<TokenFloor> active_token_floors(std::int64_t now_s) override;

  bool ensure_room(std::string_view room_id, std::int64_t now_ms) override;
  std::optional<Room> find_room(std::string_view room_id) override;
  std::vector<Room> list_rooms() override;
  bool set_slow_mode(std::string_view room_id, int seconds) override;

  /// True if the unique (room_id, user_id, cid) index is in force: it refuses a resend
  /// on insert. (False where stored messages already shared a cid when it was built: it
  /// is then a plain index, and start-up said so.)
  bool refuses_duplicate_cids() const override;
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

  struct Impl;

 private:
  std::shared_ptr<MongoPool> pool_;
  std::unique_ptr<Impl> impl_;  // after pool_: gives its client back before the pool goes
};

}  // namespace chatorbit::store
