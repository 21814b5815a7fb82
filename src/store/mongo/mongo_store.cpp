#include "store/mongo/mongo_store.hpp"

#include <mongoc/mongoc.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

#include "core/log.hpp"
#include "store/mongo/bson_util.hpp"

namespace chatorbit::store {

using namespace mongo_detail;

namespace {

constexpr const char* kDefaultDatabase = "chatorbit";
// Tries of one append batch whose connection broke mid-write: the first and two more.
constexpr int kAppendTries = 3;
constexpr std::chrono::milliseconds kRetryPause{100};
constexpr std::uint32_t kNotImplemented = 238;  // the server's error codes
constexpr std::uint32_t kIndexOptionsConflict = 85;
constexpr std::uint32_t kIndexKeySpecsConflict = 86;
constexpr std::uint32_t kDuplicateKey = 11000;
constexpr std::uint32_t kNamespaceNotFound = 26;
constexpr std::uint32_t kIndexNotFound = 27;
constexpr std::uint32_t kInternalError = 1;
/// The messages' (room_id, user_id, cid) index: unique where it can be (resends).
constexpr const char* kCidIndex = "room_id_1_user_id_1_cid_1";

/// createIndexes refused: an index of that name exists with other options or keys, or
/// stored documents break the uniqueness asked for (`code`).
struct StoreIndexConflict : StoreError {
  StoreIndexConflict(std::uint32_t c, const std::string& what) : StoreError(what), code(c) {}
  std::uint32_t code;
};

std::once_flag g_mongoc_init;

void init_driver() {
  std::call_once(g_mongoc_init, [] {
    mongoc_init();
    // The driver logs to stderr by default; its warnings go to our log instead.
    mongoc_log_set_handler(
        [](mongoc_log_level_t level, const char* domain, const char* message, void*) {
          // FerretDB 1.x has no endSessions, which the driver sends as it closes.
          const bool known_gap = std::string_view(message).find("endSessions") != std::string_view::npos;
          if (level <= MONGOC_LOG_LEVEL_WARNING && !known_gap) {
            log::warn("mongoc", {{"domain", domain}, {"message", message}});
          }
        },
        nullptr);
  });
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

// --- the pool ------------------------------------------------------------------------------

struct MongoPool::Impl {
  mongoc_uri_t* uri = nullptr;
  mongoc_client_pool_t* pool = nullptr;
  std::string database;
  std::string location;
  std::once_flag prepared;

  ~Impl() {
    if (pool != nullptr) mongoc_client_pool_destroy(pool);
    if (uri != nullptr) mongoc_uri_destroy(uri);
  }
};

MongoPool::MongoPool(const std::string& url, const MongoSettings& settings) : impl_(std::make_unique<Impl>()) {
  init_driver();
  bson_error_t error;
  impl_->uri = mongoc_uri_new_with_error(url.c_str(), &error);
  // libmongoc's message quotes the URL, password and all: say what is wrong without it.
  if (impl_->uri == nullptr) throw StoreError("MONGO_URL: libmongoc refused the URL (check its form and options)");
  mongoc_uri_t* uri = impl_->uri;

  const auto set_default = [uri](const char* option, std::chrono::milliseconds value) {
    if (mongoc_uri_get_option_as_int32(uri, option, -1) < 0) {
      mongoc_uri_set_option_as_int32(uri, option, static_cast<std::int32_t>(value.count()));
    }
  };
  set_default(MONGOC_URI_SERVERSELECTIONTIMEOUTMS, settings.timeout);
  set_default(MONGOC_URI_CONNECTTIMEOUTMS, settings.timeout);
  set_default(MONGOC_URI_SOCKETTIMEOUTMS, settings.socket_timeout);
  if (mongoc_uri_get_appname(uri) == nullptr) mongoc_uri_set_appname(uri, "chatorbit");

  // The URL's own w= / journal= win; otherwise the settings' write concern.
  const mongoc_write_concern_t* from_url = mongoc_uri_get_write_concern(uri);
  if (mongoc_write_concern_get_w(from_url) == MONGOC_WRITE_CONCERN_W_DEFAULT &&
      !mongoc_write_concern_journal_is_set(from_url)) {
    mongoc_write_concern_t* wc = mongoc_write_concern_new();
    if (settings.write_concern == "majority") {
      mongoc_write_concern_set_wmajority(wc, 0);
    } else {
      mongoc_write_concern_set_w(wc, std::stoi(settings.write_concern));
    }
    mongoc_write_concern_set_journal(wc, settings.journal);
    mongoc_uri_set_write_concern(uri, wc);
    mongoc_write_concern_destroy(wc);
  }

  const char* db = mongoc_uri_get_database(uri);
  impl_->database = db != nullptr && *db != '\0' ? db : kDefaultDatabase;
  std::string hosts;
  for (const mongoc_host_list_t* h = mongoc_uri_get_hosts(uri); h != nullptr; h = h->next) {
    hosts += (hosts.empty() ? "" : ",") + std::string(h->host_and_port);
  }
  impl_->location = "mongodb://" + hosts + "/" + impl_->database;

  impl_->pool = mongoc_client_pool_new(uri);
  if (impl_->pool == nullptr) throw StoreError("MONGO_URL: libmongoc could not make a client pool");
  mongoc_client_pool_set_error_api(impl_->pool, MONGOC_ERROR_API_VERSION_2);
}

MongoPool::~MongoPool() = default;

const std::string& MongoPool::database() const { return impl_->database; }
mongoc_client_t* MongoPool::pop() { return mongoc_client_pool_pop(impl_->pool); }
void MongoPool::push(mongoc_client_t* client) { mongoc_client_pool_push(impl_->pool, client); }
std::string MongoPool::location() const { return impl_->location; }

// --- the store -----------------------------------------------------------------------------

struct MongoStore::Impl {
  MongoPool::Impl& pool;
  mongoc_client_t* client = nullptr;
  mongoc_database_t* db = nullptr;
  mongoc_collection_t* users = nullptr;
  mongoc_collection_t* rooms = nullptr;
  mongoc_collection_t* messages = nullptr;
  mongoc_collection_t* moderation = nullptr;
  mongoc_collection_t* bans = nullptr;
  mongoc_collection_t* revoked = nullptr;
  mongoc_collection_t* floors = nullptr;

  explicit Impl(MongoPool::Impl& p) : pool(p) {
    client = mongoc_client_pool_pop(pool.pool);
    db = mongoc_client_get_database(client, pool.database.c_str());
    const auto get = [this](const char* name) {
      return mongoc_client_get_collection(client, pool.database.c_str(), name);
    };
    users = get("users");
    rooms = get("rooms");
    messages = get("messages");
    moderation = get("moderation_log");
    bans = get("bans");
    revoked = get("revoked_tokens");
    floors = get("token_floors");
  }
  ~Impl() {
    for (auto* c : {users, rooms, messages, moderation, bans, revoked, floors}) mongoc_collection_destroy(c);
    mongoc_database_destroy(db);
    mongoc_client_pool_push(pool.pool, client);
  }

  void prepare();
  /// False if the server does not implement an option asked for (and may_be_unsupported).
  bool create_indexes(mongoc_collection_t* coll, const char* name, const Doc& specs, bool may_be_unsupported = false);
  bool stored_as_sent(const Message& m);
  void drop_index(mongoc_collection_t* coll, const char* index_name);
  /// Whether the messages' (room, user, cid) index is in force and unique.
  bool cid_index_is_unique();
  bool refuses_cids = false;
};

namespace {

// --- documents <-> structs -----------------------------------------------------------

void append_user(bson_t* d, const User& u) {
  put_id(d, "_id", u.id);
  put_str(d, "username", u.username);
  put_str(d, "email", u.email);
  put_str(d, "email_lower", ascii_lower(u.email));
  put_str(d, "password_hash", u.password_hash);
  put_str(d, "role", u.role);
  put_date(d, "created_at", u.created_at_ms);
  put_date(d, "update_time", u.update_time_ms);
  if (u.login_time_ms) put_date(d, "login_time", *u.login_time_ms);
  put_str(d, "login_ip", u.login_ip);
}

User read_user(const bson_t* d) {
  Reader r(d);
  User u;
  u.id = r.id("_id");
  u.username = r.str("username");
  u.email = r.str("email");
  u.password_hash = r.str("password_hash");
  u.role = r.str("role");
  if (u.role.empty()) u.role = "user";  // registered by the original
  u.created_at_ms = r.time_ms("created_at").value_or(0);
  u.update_time_ms = r.time_ms("update_time").value_or(u.created_at_ms);
  u.login_time_ms = r.time_ms("login_time");
  u.login_ip = r.str("login_ip");
  return u;
}

void append_message(bson_t* d, const Message& m) {
  put_id(d, "_id", m.id);
  put_str(d, "room_id", m.room_id);
  put_str(d, "user_id", m.user_id);
  put_str(d, "username", m.username);
  put_str(d, "content", m.content);
  // The original's field, a BSON date (ms); the nanoseconds beside it.
  put_date(d, "timestamp", m.timestamp_ns / 1'000'000);
  put_i64(d, "timestamp_ns", m.timestamp_ns);
  put_i64(d, "seq", static_cast<std::int64_t>(m.seq));
  if (!m.cid.empty()) put_str(d, "cid", m.cid);
  put_bool(d, "deleted", m.deleted);
}

Message read_message(const bson_t* d) {
  Reader r(d);
  Message m;
  m.id = r.id("_id");
  m.room_id = r.str("room_id");
  m.user_id = r.id("user_id");
  m.username = r.str("username");
  m.content = r.str("content");
  if (auto ns = r.i64("timestamp_ns")) {
    m.timestamp_ns = *ns;
  } else {
    m.timestamp_ns = r.time_ms("timestamp").value_or(0) * 1'000'000;
  }
  m.seq = static_cast<std::uint64_t>(std::max<std::int64_t>(0, r.i64("seq").value_or(0)));
  m.cid = r.str("cid");
  m.deleted = r.boolean("deleted");
  return m;
}

Room read_room(const bson_t* d) {
  Reader r(d);
  Room room;
  room.room_id = r.str("room_id");
  room.created_at_ms = r.time_ms("created_at").value_or(0);
  room.slow_mode_seconds = static_cast<int>(r.i64("slow_mode_seconds").value_or(0));
  return room;
}

ModerationAction read_action(const bson_t* d) {
  Reader r(d);
  ModerationAction a;
  a.id = r.id("_id");
  a.room_id = r.str("room_id");
  a.actor_id = r.str("actor_id");
  a.action = r.str("action");
  a.target_user_id = r.str("target_user_id");
  a.target_message_id = r.str("target_message_id");
  a.reason = r.str("reason");
  a.duration_seconds = r.i64("duration_seconds").value_or(0);
  a.at_ms = r.time_ms("at").value_or(0);
  return a;
}

Ban read_ban(const bson_t* d) {
  Reader r(d);
  Ban b;
  b.room_id = r.str("room_id");
  b.user_id = r.str("user_id");
  b.actor_id = r.str("actor_id");
  b.reason = r.str("reason");
  b.created_at_ms = r.time_ms("created_at").value_or(0);
  b.expires_at_ms = r.time_ms("expires_at").value_or(0);
  return b;
}

/// {user_id: id}, or for an ObjectId-shaped id {user_id: {$in: [id, ObjectId(id)]}}: the
/// original stored user ids as strings, but a client of its database may not have.
void put_user_match(bson_t* d, std::string_view user_id) {
  if (!is_object_id(user_id)) {
    put_str(d, "user_id", user_id);
    return;
  }
  bson_t in, list;
  bson_append_document_begin(d, "user_id", -1, &in);
  bson_append_array_begin(&in, "$in", -1, &list);
  put_str(&list, "0", user_id);
  put_id(&list, "1", user_id);
  bson_append_array_end(&in, &list);
  bson_append_document_end(d, &in);
}

/// {deleted: {$ne: true}}: the original's messages have no `deleted` field.
void put_not_deleted(bson_t* d) {
  bson_t ne;
  bson_append_document_begin(d, "deleted", -1, &ne);
  put_bool(&ne, "$ne", true);
  bson_append_document_end(d, &ne);
}

/// {field: {$gt: Date(ms)}} or {field: {$lte: ...}}.
void put_time_compare(bson_t* d, const char* field, const char* op, std::int64_t ms) {
  bson_t cmp;
  bson_append_document_begin(d, field, -1, &cmp);
  put_date(&cmp, op, ms);
  bson_append_document_end(d, &cmp);
}

/// The ban filter's "in force at now": no expiry, or one after now.
void put_in_force(bson_t* d, std::int64_t now_ms) {
  bson_t any, first, second;
  bson_append_array_begin(d, "$or", -1, &any);
  bson_append_document_begin(&any, "0", -1, &first);
  put_exists(&first, "expires_at", false);
  bson_append_document_end(&any, &first);
  bson_append_document_begin(&any, "1", -1, &second);
  put_time_compare(&second, "expires_at", "$gt", now_ms);
  bson_append_document_end(&any, &second);
  bson_append_array_end(d, &any);
}

mongoc_cursor_t* find(mongoc_collection_t* coll, const Doc& filter, const Doc& opts) {
  return mongoc_collection_find_with_opts(coll, filter.get(), opts.get(), nullptr);
}

/// Sets {$set: {...}} on documents matching `filter`; returns matchedCount.
std::int64_t update(mongoc_collection_t* coll, const Doc& filter, const Doc& update_doc, bool many,
                    std::string_view what, const char* count_field = "matchedCount") {
  Doc reply;
  bson_error_t error;
  const bool ok =
      many ? mongoc_collection_update_many(coll, filter.get(), update_doc.get(), nullptr, reply.out(), &error)
           : mongoc_collection_update_one(coll, filter.get(), update_doc.get(), nullptr, reply.out(), &error);
  if (!ok) fail(error, what);
  return Reader(reply.get()).i64(count_field).value_or(0);
}

std::int64_t remove(mongoc_collection_t* coll, const Doc& filter, bool many, std::string_view what) {
  Doc reply;
  bson_error_t error;
  const bool ok = many ? mongoc_collection_delete_many(coll, filter.get(), nullptr, reply.out(), &error)
                       : mongoc_collection_delete_one(coll, filter.get(), nullptr, reply.out(), &error);
  if (!ok) fail(error, what);
  return Reader(reply.get()).i64("deletedCount").value_or(0);
}

/// Replaces (or inserts) the one document matching `filter`.
void upsert(mongoc_collection_t* coll, const Doc& filter, const Doc& replacement, std::string_view what) {
  Doc opts;
  put_bool(opts.get(), "upsert", true);
  bson_error_t error;
  if (!mongoc_collection_replace_one(coll, filter.get(), replacement.get(), opts.get(), nullptr, &error)) {
    fail(error, what);
  }
}

/// Inserts `doc`; false on a duplicate key, throws on anything else.
bool insert(mongoc_collection_t* coll, const Doc& doc, std::string_view what) {
  bson_error_t error;
  if (mongoc_collection_insert_one(coll, doc.get(), nullptr, nullptr, &error)) return true;
  if (is_duplicate_key(error)) return false;
  fail(error, what);
}

/// find() options: a sort, and a limit when positive.
struct FindOpts : Doc {
  explicit FindOpts(std::initializer_list<std::pair<const char*, int>> keys, int limit = 0) {
    bson_t sort;
    bson_append_document_begin(get(), "sort", -1, &sort);
    for (const auto& [key, dir] : keys) bson_append_int32(&sort, key, -1, dir);
    bson_append_document_end(get(), &sort);
    if (limit > 0) bson_append_int64(get(), "limit", -1, limit);
  }
};

}  // namespace

// --- start-up ------------------------------------------------------------------------------

bool MongoStore::Impl::create_indexes(mongoc_collection_t* coll, const char* name, const Doc& specs,
                                      bool may_be_unsupported) {
  Doc cmd;
  put_str(cmd.get(), "createIndexes", name);
  bson_append_array(cmd.get(), "indexes", -1, specs.get());
  Doc reply;
  bson_error_t error;
  if (mongoc_collection_write_command_with_opts(coll, cmd.get(), nullptr, reply.out(), &error)) return true;
  if (may_be_unsupported && error.code == kNotImplemented) return false;
  // FerretDB reports stored duplicates as an InternalError carrying SQLite's message.
  const bool duplicates = error.code == kDuplicateKey ||
                          (error.code == kInternalError && std::strstr(error.message, "UNIQUE constraint failed"));
  if (duplicates || error.code == kIndexOptionsConflict || error.code == kIndexKeySpecsConflict) {
    throw StoreIndexConflict(duplicates ? kDuplicateKey : error.code,
                             std::string("mongodb: creating the indexes of ") + name + ": " + error.message);
  }
  fail(error, std::string("creating the indexes of ") + name);
}

void MongoStore::Impl::drop_index(mongoc_collection_t* coll, const char* index_name) {
  bson_error_t error;
  // Gone already is as good: another node starting at the same time dropped it.
  if (!mongoc_collection_drop_index_with_opts(coll, index_name, nullptr, &error) && error.code != kIndexNotFound) {
    fail(error, std::string("dropping the index ") + index_name);
  }
}

bool MongoStore::Impl::cid_index_is_unique() {
  bson_error_t error;
  mongoc_cursor_t* cursor = mongoc_collection_find_indexes_with_opts(messages, nullptr);
  bool unique = false;
  const bson_t* d = nullptr;
  while (mongoc_cursor_next(cursor, &d)) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, d, "name") || !BSON_ITER_HOLDS_UTF8(&it)) continue;
    if (std::string_view(bson_iter_utf8(&it, nullptr)) != kCidIndex) continue;
    unique = bson_iter_init_find(&it, d, "unique") && bson_iter_as_bool(&it);
  }
  const bool failed = mongoc_cursor_error(cursor, &error);
  mongoc_cursor_destroy(cursor);
  // A collection not created yet has no indexes (NamespaceNotFound): nothing refuses.
  if (failed && error.code != kNamespaceNotFound) fail(error, "listing the indexes of messages");
  return unique;
}

void MongoStore::Impl::prepare() {
  // Users the original registered have no email_lower: fill it in before the unique
  // index on it is built.
  {
    Doc filter;
    put_exists(filter.get(), "email_lower", false);
    std::vector<std::pair<std::string, std::string>> missing;  // id, lower-cased email
    Doc opts;
    each(find(users, filter, opts), [&](const bson_t* d) {
      Reader r(d);
      missing.emplace_back(r.id("_id"), ascii_lower(r.str("email")));
    });
    for (const auto& [id, email_lower] : missing) {
      Doc by_id, set;
      put_id(by_id.get(), "_id", id);
      bson_t fields;
      bson_append_document_begin(set.get(), "$set", -1, &fields);
      put_str(&fields, "email_lower", email_lower);
      bson_append_document_end(set.get(), &fields);
      update(users, by_id, set, false, "filling in email_lower");
    }
    if (!missing.empty()) log::info("mongo_users_upgraded", {{"users", std::to_string(missing.size())}});
  }

  const auto index = [](bson_t* list, const char* pos, const char* name,
                        std::initializer_list<std::pair<const char*, int>> keys, bool unique,
                        const char* present = nullptr) {
    bson_t spec, key;
    bson_append_document_begin(list, pos, -1, &spec);
    bson_append_document_begin(&spec, "key", -1, &key);
    for (const auto& [k, dir] : keys) bson_append_int32(&key, k, -1, dir);
    bson_append_document_end(&spec, &key);
    put_str(&spec, "name", name);
    if (unique) put_bool(&spec, "unique", true);
    if (present != nullptr) {
      // Only documents that have the field: the original's messages have no seq.
      bson_t partial;
      bson_append_document_begin(&spec, "partialFilterExpression", -1, &partial);
      put_exists(&partial, present, true);
      bson_append_document_end(&spec, &partial);
    }
    bson_append_document_end(list, &spec);
  };
  {
    Doc specs;
    index(specs.get(), "0", "email_lower_1", {{"email_lower", 1}}, true);
    create_indexes(users, "users", specs);
  }
  {
    Doc specs;
    index(specs.get(), "0", "room_id_1", {{"room_id", 1}}, true);
    create_indexes(rooms, "rooms", specs);
  }
  {
    // Unique (room, seq) over the messages that have a seq: the original's have none. A
    // server without partial indexes (FerretDB 1.x) gets a plain unique index: FerretDB
    // does not count two missing seqs as a duplicate (mongo_store_test.cpp checks it).
    Doc partial, plain;
    index(partial.get(), "0", "room_id_1_seq_1", {{"room_id", 1}, {"seq", 1}}, true, "seq");
    index(plain.get(), "0", "room_id_1_seq_1", {{"room_id", 1}, {"seq", 1}}, true);
    if (!create_indexes(messages, "messages", partial, /*may_be_unsupported=*/true)) {
      log::info("mongo_partial_index_unsupported", {{"index", "messages.room_id_1_seq_1"}});
      create_indexes(messages, "messages", plain);
    }
    // Unique (room, user, cid) over the messages that have a cid: a resend is refused by
    // the insert that would store it twice (refuses_duplicate_cids). The same fallback.
    Doc cid_partial, cid_plain, cid_lookup;
    const std::initializer_list<std::pair<const char*, int>> cid_keys{{"room_id", 1}, {"user_id", 1}, {"cid", 1}};
    index(cid_partial.get(), "0", kCidIndex, cid_keys, true, "cid");
    index(cid_plain.get(), "0", kCidIndex, cid_keys, true);
    index(cid_lookup.get(), "0", kCidIndex, cid_keys, false);
    // What an attempt at the unique index left in force. A plain index of that name (an
    // earlier ChatOrbit's) makes MongoDB refuse the attempt and FerretDB ignore it.
    enum class Made { unique, shared_cids, other_index };
    const auto make_unique = [&] {
      try {
        if (!create_indexes(messages, "messages", cid_partial, /*may_be_unsupported=*/true)) {
          create_indexes(messages, "messages", cid_plain);
        }
      } catch (const StoreIndexConflict& e) {
        return e.code == kDuplicateKey ? Made::shared_cids : Made::other_index;
      }
      return cid_index_is_unique() ? Made::unique : Made::other_index;
    };
    Made made = make_unique();
    if (made == Made::other_index) {
      log::info("mongo_index_upgraded", {{"index", std::string("messages.") + kCidIndex}, {"to", "unique"}});
      drop_index(messages, kCidIndex);
      made = make_unique();
    }
    if (made != Made::unique) {
      // Stored messages share a (room, user, cid) (written by something else): they stay,
      // and every message with a cid is looked up before its batch instead, as on SQLite
      // (refuses_duplicate_cids() is false).
      log::warn(
          "mongo_cid_index_not_unique",
          {{"index", std::string("messages.") + kCidIndex},
           {"why", made == Made::shared_cids ? "stored messages share a cid" : "another index of that name stays"}});
      create_indexes(messages, "messages", cid_lookup);
    }
  }
  {
    Doc specs;
    index(specs.get(), "0", "room_id_1_at_-1", {{"room_id", 1}, {"at", -1}}, false);
    create_indexes(moderation, "moderation_log", specs);
  }
  {
    Doc specs;
    index(specs.get(), "0", "room_id_1_user_id_1", {{"room_id", 1}, {"user_id", 1}}, true);
    create_indexes(bans, "bans", specs);
  }
}

MongoStore::MongoStore(std::shared_ptr<MongoPool> pool, bool prepare)
    : pool_(std::move(pool)), impl_(std::make_unique<Impl>(pool_->impl())) {
  // A ping first, so that a server that is not there fails start-up with that reason.
  Doc ping, reply;
  put_i64(ping.get(), "ping", 1);
  bson_error_t error;
  if (!mongoc_database_command_simple(impl_->db, ping.get(), nullptr, reply.out(), &error)) {
    fail(error, "reaching " + pool_->location());
  }
  if (prepare) impl_->prepare();
  // Every store of the pool asks, not only the one that prepared: the index may be one
  // that could not be made unique.
  impl_->refuses_cids = impl_->cid_index_is_unique();
}

bool MongoStore::refuses_duplicate_cids() const { return impl_->refuses_cids; }

MongoStore::~MongoStore() = default;

void MongoStore::drop_database() {
  bson_error_t error;
  if (!mongoc_database_drop(impl_->db, &error)) fail(error, "dropping the database");
}

// --- users ---------------------------------------------------------------------------------

bool MongoStore::create_user(const User& user) {
  Doc doc;
  append_user(doc.get(), user);
  if (insert(impl_->users, doc, "creating a user")) return true;
  // A duplicate key: the email (an answer) or the id (a caller's bug).
  if (find_user_by_email(user.email)) return false;
  throw StoreError("mongodb: creating a user: id " + user.id + " is taken");
}

std::optional<User> MongoStore::find_user_by_email(std::string_view email) {
  Doc filter;
  put_str(filter.get(), "email_lower", ascii_lower(email));
  std::optional<User> out;
  each(find(impl_->users, filter, FindOpts({}, 1)), [&](const bson_t* d) { out = read_user(d); });
  return out;
}

std::optional<User> MongoStore::find_user_by_id(std::string_view id) {
  Doc filter;
  put_id(filter.get(), "_id", id);
  std::optional<User> out;
  each(find(impl_->users, filter, FindOpts({}, 1)), [&](const bson_t* d) { out = read_user(d); });
  return out;
}

namespace {

/// update_one({_id: id}, {$set: fields}) > 0 matched.
template <class F>
bool set_user_fields(mongoc_collection_t* users, std::string_view id, F&& fields_of, std::string_view what) {
  Doc filter, set;
  put_id(filter.get(), "_id", id);
  bson_t fields;
  bson_append_document_begin(set.get(), "$set", -1, &fields);
  fields_of(&fields);
  bson_append_document_end(set.get(), &fields);
  return update(users, filter, set, false, what) > 0;
}

}  // namespace

bool MongoStore::update_password_hash(std::string_view user_id, std::string_view hash, std::int64_t now_ms) {
  const auto fields = [&](bson_t* f) {
    put_str(f, "password_hash", hash);
    put_date(f, "update_time", now_ms);
  };
  return set_user_fields(impl_->users, user_id, fields, "updating a password");
}

bool MongoStore::record_login(std::string_view user_id, std::int64_t now_ms, std::string_view ip) {
  const auto fields = [&](bson_t* f) {
    put_date(f, "login_time", now_ms);
    put_str(f, "login_ip", ip);
  };
  return set_user_fields(impl_->users, user_id, fields, "recording a login");
}

bool MongoStore::set_role(std::string_view user_id, std::string_view role, std::int64_t now_ms) {
  const auto fields = [&](bson_t* f) {
    put_str(f, "role", role);
    put_date(f, "update_time", now_ms);
  };
  return set_user_fields(impl_->users, user_id, fields, "setting a role");
}

// --- revoked tokens ------------------------------------------------------------------------

void MongoStore::revoke_token(std::string_view jti, std::int64_t expires_at_s) {
  Doc filter, doc;
  put_str(filter.get(), "_id", jti);
  put_str(doc.get(), "_id", jti);
  put_date(doc.get(), "expires_at", expires_at_s * 1000);
  upsert(impl_->revoked, filter, doc, "revoking a token");
}

std::vector<std::pair<std::string, std::int64_t>> MongoStore::active_revocations(std::int64_t now_s) {
  Doc expired;
  put_time_compare(expired.get(), "expires_at", "$lte", now_s * 1000);
  remove(impl_->revoked, expired, true, "sweeping expired revocations");
  std::vector<std::pair<std::string, std::int64_t>> out;
  Doc all;
  each(find(impl_->revoked, all, FindOpts({{"_id", 1}})), [&](const bson_t* d) {
    Reader r(d);
    out.emplace_back(r.str("_id"), r.time_ms("expires_at").value_or(0) / 1000);
  });
  return out;
}

void MongoStore::put_token_floor(const TokenFloor& floor) {
  Doc filter, doc;
  put_str(filter.get(), "_id", floor.user_id);
  put_str(doc.get(), "_id", floor.user_id);
  put_i64(doc.get(), "not_before", floor.not_before_s);
  put_date(doc.get(), "expires_at", floor.expires_at_s * 1000);
  upsert(impl_->floors, filter, doc, "putting a token floor");
}

std::vector<TokenFloor> MongoStore::active_token_floors(std::int64_t now_s) {
  Doc expired;
  put_time_compare(expired.get(), "expires_at", "$lte", now_s * 1000);
  remove(impl_->floors, expired, true, "sweeping expired token floors");
  std::vector<TokenFloor> out;
  Doc all;
  each(find(impl_->floors, all, FindOpts({{"_id", 1}})), [&](const bson_t* d) {
    Reader r(d);
    out.push_back(
        TokenFloor{r.str("_id"), r.i64("not_before").value_or(0), r.time_ms("expires_at").value_or(0) / 1000});
  });
  return out;
}

// --- rooms ---------------------------------------------------------------------------------

bool MongoStore::ensure_room(std::string_view room_id, std::int64_t now_ms) {
  Doc doc;
  bson_oid_t oid;
  bson_oid_init(&oid, nullptr);
  bson_append_oid(doc.get(), "_id", -1, &oid);
  put_str(doc.get(), "room_id", room_id);
  put_date(doc.get(), "created_at", now_ms);
  bson_append_int32(doc.get(), "slow_mode_seconds", -1, 0);
  return insert(impl_->rooms, doc, "creating a room");
}

std::optional<Room> MongoStore::find_room(std::string_view room_id) {
  Doc filter;
  put_str(filter.get(), "room_id", room_id);
  std::optional<Room> out;
  each(find(impl_->rooms, filter, FindOpts({}, 1)), [&](const bson_t* d) { out = read_room(d); });
  return out;
}

std::vector<Room> MongoStore::list_rooms() {
  std::vector<Room> out;
  Doc all;
  each(find(impl_->rooms, all, FindOpts({{"room_id", 1}})), [&](const bson_t* d) { out.push_back(read_room(d)); });
  return out;
}

bool MongoStore::set_slow_mode(std::string_view room_id, int seconds) {
  Doc filter, set;
  put_str(filter.get(), "room_id", room_id);
  bson_t fields;
  bson_append_document_begin(set.get(), "$set", -1, &fields);
  bson_append_int32(&fields, "slow_mode_seconds", -1, seconds);
  bson_append_document_end(set.get(), &fields);
  return update(impl_->rooms, filter, set, false, "setting slow mode") > 0;
}

// --- messages ------------------------------------------------------------------------------

bool MongoStore::Impl::stored_as_sent(const Message& m) {
  Doc filter;
  put_id(filter.get(), "_id", m.id);
  bool same = false;
  Doc opts;
  each(mongoc_collection_find_with_opts(messages, filter.get(), opts.get(), nullptr), [&](const bson_t* d) {
    const Message stored = read_message(d);
    same = stored.room_id == m.room_id && stored.seq == m.seq && stored.user_id == m.user_id &&
           stored.content == m.content;
  });
  return same;
}

void MongoStore::append_messages(std::span<const Message> batch) {
  std::size_t done = 0;    // batch[0, done) is stored
  bool uncertain = false;  // an earlier try broke off: batch[done, ...) may be stored
  for (int attempt = 1; done < batch.size(); ++attempt) {
    Doc opts;
    put_bool(opts.get(), "ordered", true);
    Bulk bulk(mongoc_collection_create_bulk_operation_with_opts(impl_->messages, opts.get()));
    for (std::size_t i = done; i < batch.size(); ++i) {
      Doc doc;
      append_message(doc.get(), batch[i]);
      bson_error_t error;
      if (!mongoc_bulk_operation_insert_with_opts(bulk.get(), doc.get(), nullptr, &error)) {
        throw PartialAppend(done, uncertain ? PartialAppend::Rest::unknown : PartialAppend::Rest::not_stored,
                            std::string("mongodb: appending messages: ") + error.message);
      }
    }
    Doc reply;
    bson_error_t error;
    const bool ok = mongoc_bulk_operation_execute(bulk.get(), reply.out(), &error) != 0;
    Reader r(reply.get());
    const auto inserted = static_cast<std::size_t>(std::max<std::int64_t>(0, r.i64("nInserted").value_or(0)));
    if (ok) return;

    if (is_connection_error(error)) {
      // The server may have stored any of the rest before the connection broke.
      done += inserted;
      if (error.domain != MONGOC_ERROR_SERVER_SELECTION) uncertain = true;
      if (attempt < kAppendTries && error.domain != MONGOC_ERROR_SERVER_SELECTION) {
        std::this_thread::sleep_for(kRetryPause * attempt);
        continue;
      }
      throw PartialAppend(done, uncertain ? PartialAppend::Rest::unknown : PartialAppend::Rest::not_stored,
                          std::string("mongodb: appending messages: ") + error.message, /*unreachable=*/true);
    }
    if (const auto refused = r.first_write_error()) {
      const std::size_t at = done + refused->index;
      const bool duplicate = refused->code == kDuplicateKey && at < batch.size();
      // Stored by the try that broke off: the same message, so it counts as stored.
      if (duplicate && uncertain && impl_->stored_as_sent(batch[at])) {
        done = at + 1;
        continue;
      }
      const std::string why =
          "mongodb: appending messages: message " + std::to_string(at) + " refused: " + refused->message;
      // A resend: its cid is stored already, under another id (refuses_duplicate_cids).
      if (duplicate && !batch[at].cid.empty()) {
        const CidKey key{batch[at].room_id, batch[at].user_id, batch[at].cid};
        auto original = find_by_cids(std::span(&key, 1)).at(0);
        if (original && original->id != batch[at].id) throw PartialAppend(at, why, std::move(*original));
      }
      throw PartialAppend(at, PartialAppend::Rest::not_stored, why);
    }
    // A write concern error: written, but not known to be durable as asked.
    throw PartialAppend(done, PartialAppend::Rest::unknown,
                        std::string("mongodb: appending messages: ") + error.message);
  }
}

std::vector<Message> MongoStore::history(std::string_view room_id, int limit, std::optional<std::uint64_t> before_seq) {
  std::vector<Message> out;
  if (limit <= 0) return out;
  Doc filter;
  put_str(filter.get(), "room_id", room_id);
  put_not_deleted(filter.get());
  if (before_seq) {
    bson_t lt;
    bson_append_document_begin(filter.get(), "seq", -1, &lt);
    put_i64(&lt, "$lt", static_cast<std::int64_t>(*before_seq));
    bson_append_document_end(filter.get(), &lt);
  }
  // The original's messages (no seq) sort after every numbered one, newest first.
  each(find(impl_->messages, filter, FindOpts({{"seq", -1}, {"timestamp", -1}}, limit)),
       [&](const bson_t* d) { out.push_back(read_message(d)); });
  return out;
}

std::uint64_t MongoStore::max_seq(std::string_view room_id) {
  Doc filter;
  put_str(filter.get(), "room_id", room_id);
  std::uint64_t out = 0;
  each(find(impl_->messages, filter, FindOpts({{"seq", -1}}, 1)), [&](const bson_t* d) {
    out = static_cast<std::uint64_t>(std::max<std::int64_t>(0, Reader(d).i64("seq").value_or(0)));
  });
  return out;
}

std::vector<std::optional<Message>> MongoStore::find_by_cids(std::span<const CidKey> keys) {
  std::vector<std::optional<Message>> out(keys.size());
  using Key = std::tuple<std::string, std::string, std::string>;
  std::map<Key, std::vector<std::size_t>> wanted;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].cid.empty()) continue;
    wanted[Key{keys[i].room_id, keys[i].user_id, keys[i].cid}].push_back(i);
  }
  if (wanted.empty()) return out;
  Doc filter;
  bson_t any;
  bson_append_array_begin(filter.get(), "$or", -1, &any);
  std::size_t n = 0;
  for (const auto& [key, positions] : wanted) {
    const std::string pos = std::to_string(n++);
    bson_t one;
    bson_append_document_begin(&any, pos.c_str(), -1, &one);
    put_str(&one, "room_id", std::get<0>(key));
    put_str(&one, "user_id", std::get<1>(key));
    put_str(&one, "cid", std::get<2>(key));
    bson_append_document_end(&any, &one);
  }
  bson_append_array_end(filter.get(), &any);
  Doc opts;
  each(find(impl_->messages, filter, opts), [&](const bson_t* d) {
    Message m = read_message(d);
    auto it = wanted.find(Key{m.room_id, m.user_id, m.cid});
    if (it == wanted.end()) return;
    for (auto i : it->second) out[i] = m;
  });
  return out;
}

bool MongoStore::delete_message(std::string_view room_id, std::string_view message_id) {
  Doc filter, set;
  put_id(filter.get(), "_id", message_id);
  put_str(filter.get(), "room_id", room_id);
  put_not_deleted(filter.get());
  bson_t fields;
  bson_append_document_begin(set.get(), "$set", -1, &fields);
  put_bool(&fields, "deleted", true);
  bson_append_document_end(set.get(), &fields);
  return update(impl_->messages, filter, set, false, "deleting a message") > 0;
}

std::vector<std::string> MongoStore::purge_user_messages(std::string_view room_id, std::string_view user_id,
                                                         int limit) {
  std::vector<std::string> ids;
  if (limit <= 0) return ids;
  Doc filter;
  put_str(filter.get(), "room_id", room_id);
  put_user_match(filter.get(), user_id);
  put_not_deleted(filter.get());
  each(find(impl_->messages, filter, FindOpts({{"seq", -1}, {"timestamp", -1}}, limit)),
       [&](const bson_t* d) { ids.push_back(Reader(d).id("_id")); });
  if (ids.empty()) return ids;
  Doc by_ids, set;
  bson_t in, list;
  bson_append_document_begin(by_ids.get(), "_id", -1, &in);
  bson_append_array_begin(&in, "$in", -1, &list);
  for (std::size_t i = 0; i < ids.size(); ++i) put_id(&list, std::to_string(i).c_str(), ids[i]);
  bson_append_array_end(&in, &list);
  bson_append_document_end(by_ids.get(), &in);
  bson_t fields;
  bson_append_document_begin(set.get(), "$set", -1, &fields);
  put_bool(&fields, "deleted", true);
  bson_append_document_end(set.get(), &fields);
  update(impl_->messages, by_ids, set, true, "purging messages");
  return ids;
}

std::int64_t MongoStore::clear_room(std::string_view room_id) {
  Doc filter, set;
  put_str(filter.get(), "room_id", room_id);
  put_not_deleted(filter.get());
  bson_t fields;
  bson_append_document_begin(set.get(), "$set", -1, &fields);
  put_bool(&fields, "deleted", true);
  bson_append_document_end(set.get(), &fields);
  return update(impl_->messages, filter, set, true, "clearing a room", "modifiedCount");
}

// --- moderation ----------------------------------------------------------------------------

void MongoStore::record_moderation(const ModerationAction& a) {
  Doc doc;
  put_id(doc.get(), "_id", a.id);
  put_str(doc.get(), "room_id", a.room_id);
  put_str(doc.get(), "actor_id", a.actor_id);
  put_str(doc.get(), "action", a.action);
  put_str(doc.get(), "target_user_id", a.target_user_id);
  put_str(doc.get(), "target_message_id", a.target_message_id);
  put_str(doc.get(), "reason", a.reason);
  put_i64(doc.get(), "duration_seconds", a.duration_seconds);
  put_date(doc.get(), "at", a.at_ms);
  if (!insert(impl_->moderation, doc, "recording a moderation action")) {
    throw StoreError("mongodb: recording a moderation action: id " + a.id + " is taken");
  }
}

std::vector<ModerationAction> MongoStore::moderation_log(std::string_view room_id, int limit) {
  std::vector<ModerationAction> out;
  if (limit <= 0) return out;
  Doc filter;
  put_str(filter.get(), "room_id", room_id);
  each(find(impl_->moderation, filter, FindOpts({{"at", -1}, {"_id", -1}}, limit)),
       [&](const bson_t* d) { out.push_back(read_action(d)); });
  return out;
}

void MongoStore::put_ban(const Ban& ban) {
  Doc filter, doc;
  put_str(filter.get(), "room_id", ban.room_id);
  put_str(filter.get(), "user_id", ban.user_id);
  put_str(doc.get(), "room_id", ban.room_id);
  put_str(doc.get(), "user_id", ban.user_id);
  put_str(doc.get(), "actor_id", ban.actor_id);
  put_str(doc.get(), "reason", ban.reason);
  put_date(doc.get(), "created_at", ban.created_at_ms);
  if (ban.expires_at_ms != 0) put_date(doc.get(), "expires_at", ban.expires_at_ms);  // none: permanent
  upsert(impl_->bans, filter, doc, "putting a ban");
}

bool MongoStore::remove_ban(std::string_view room_id, std::string_view user_id) {
  Doc filter;
  put_str(filter.get(), "room_id", room_id);
  put_str(filter.get(), "user_id", user_id);
  return remove(impl_->bans, filter, false, "removing a ban") > 0;
}

std::vector<Ban> MongoStore::active_bans(std::string_view room_id, std::int64_t now_ms) {
  std::vector<Ban> out;
  Doc filter;
  put_str(filter.get(), "room_id", room_id);
  put_in_force(filter.get(), now_ms);
  each(find(impl_->bans, filter, FindOpts({{"user_id", 1}})), [&](const bson_t* d) { out.push_back(read_ban(d)); });
  return out;
}

std::vector<Ban> MongoStore::all_active_bans(std::int64_t now_ms) {
  std::vector<Ban> out;
  Doc filter;
  put_in_force(filter.get(), now_ms);
  each(find(impl_->bans, filter, FindOpts({{"room_id", 1}, {"user_id", 1}})),
       [&](const bson_t* d) { out.push_back(read_ban(d)); });
  return out;
}

}  // namespace chatorbit::store
