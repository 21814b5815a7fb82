#include "store/mongo/mongo_migrate.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "store/mongo/bson_util.hpp"
#include "store/mongo/mongo_store.hpp"

namespace chatorbit::store {

using namespace mongo_detail;

namespace {

constexpr int kChunk = 1000;  // messages read, then numbered in one ordered bulk write

/// One client of the pool and the collections the migration reads and writes.
class Session {
 public:
  explicit Session(MongoPool& pool) : pool_(pool), client_(pool.pop()) {
    messages_ = mongoc_client_get_collection(client_, pool.database().c_str(), "messages");
    users_ = mongoc_client_get_collection(client_, pool.database().c_str(), "users");
  }
  ~Session() {
    mongoc_collection_destroy(messages_);
    mongoc_collection_destroy(users_);
    pool_.push(client_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  mongoc_collection_t* messages() { return messages_; }
  mongoc_collection_t* users() { return users_; }

 private:
  MongoPool& pool_;
  mongoc_client_t* client_;
  mongoc_collection_t* messages_;
  mongoc_collection_t* users_;
};

/// The rooms that hold messages without a seq, in room order.
std::vector<std::string> rooms_to_number(Session& s) {
  Doc cmd, reply;
  put_str(cmd.get(), "distinct", "messages");
  put_str(cmd.get(), "key", "room_id");
  bson_t query;
  bson_append_document_begin(cmd.get(), "query", -1, &query);
  put_exists(&query, "seq", false);
  bson_append_document_end(cmd.get(), &query);
  bson_error_t error;
  if (!mongoc_collection_read_command_with_opts(s.messages(), cmd.get(), nullptr, nullptr, reply.out(), &error)) {
    fail(error, "migrate: listing rooms");
  }
  std::vector<std::string> rooms;
  bson_iter_t it, values;
  if (bson_iter_init_find(&it, reply.get(), "values") && BSON_ITER_HOLDS_ARRAY(&it) &&
      bson_iter_recurse(&it, &values)) {
    while (bson_iter_next(&values)) {
      if (!BSON_ITER_HOLDS_UTF8(&values)) continue;
      std::uint32_t len = 0;
      const char* v = bson_iter_utf8(&values, &len);
      rooms.emplace_back(v, len);
    }
  }
  std::sort(rooms.begin(), rooms.end());
  return rooms;
}

std::int64_t count(Session& s, const Doc& filter) {
  bson_error_t error;
  const std::int64_t n =
      mongoc_collection_count_documents(s.messages(), filter.get(), nullptr, nullptr, nullptr, &error);
  if (n < 0) fail(error, "migrate: counting");
  return n;
}

/// The room's highest seq, and whether a numbered message was written by ChatOrbit
/// itself (not given its seq by a migration).
std::pair<std::int64_t, bool> numbered_state(Session& s, const std::string& room) {
  std::int64_t top = 0;
  {
    Doc filter, opts;
    put_str(filter.get(), "room_id", room);
    put_exists(filter.get(), "seq", true);
    bson_t sort;
    bson_append_document_begin(opts.get(), "sort", -1, &sort);
    bson_append_int32(&sort, "seq", -1, -1);
    bson_append_document_end(opts.get(), &sort);
    bson_append_int64(opts.get(), "limit", -1, 1);
    each(mongoc_collection_find_with_opts(s.messages(), filter.get(), opts.get(), nullptr),
         [&](const bson_t* d) { top = Reader(d).i64("seq").value_or(0); });
  }
  Doc served;
  put_str(served.get(), "room_id", room);
  put_exists(served.get(), "seq", true);
  put_exists(served.get(), "migrated", false);
  return {top, top > 0 && count(s, served) > 0};
}

/// Usernames by user id (a string or an ObjectId in the original's messages), cached.
class Usernames {
 public:
  explicit Usernames(Session& s) : s_(s) {}
  const std::string& of(const std::string& user_id) {
    auto [it, fresh] = cache_.try_emplace(user_id);
    if (!fresh) return it->second;
    Doc filter, opts;
    put_id(filter.get(), "_id", user_id);
    bson_append_int64(opts.get(), "limit", -1, 1);
    each(mongoc_collection_find_with_opts(s_.users(), filter.get(), opts.get(), nullptr),
         [&](const bson_t* d) { it->second = Reader(d).str("username"); });
    return it->second;
  }

 private:
  Session& s_;
  std::map<std::string, std::string> cache_;
};

struct Pending {
  std::string id;
  std::string user_id;
};

/// The room's next chunk of messages without a seq, oldest first.
std::vector<Pending> next_chunk(Session& s, const std::string& room) {
  Doc filter, opts;
  put_str(filter.get(), "room_id", room);
  put_exists(filter.get(), "seq", false);
  bson_t sort;
  bson_append_document_begin(opts.get(), "sort", -1, &sort);
  bson_append_int32(&sort, "timestamp", -1, 1);
  bson_append_int32(&sort, "_id", -1, 1);
  bson_append_document_end(opts.get(), &sort);
  bson_append_int64(opts.get(), "limit", -1, kChunk);
  std::vector<Pending> out;
  each(mongoc_collection_find_with_opts(s.messages(), filter.get(), opts.get(), nullptr), [&](const bson_t* d) {
    Reader r(d);
    out.push_back(Pending{r.id("_id"), r.id("user_id")});
  });
  return out;
}

/// Gives `chunk` the seqs after `top`, in order; returns how many were numbered.
std::int64_t number(Session& s, const std::vector<Pending>& chunk, std::int64_t top, Usernames& names) {
  Doc bulk_opts;
  put_bool(bulk_opts.get(), "ordered", true);
  Bulk bulk(mongoc_collection_create_bulk_operation_with_opts(s.messages(), bulk_opts.get()));
  for (const auto& p : chunk) {
    Doc selector, update;
    put_id(selector.get(), "_id", p.id);
    put_exists(selector.get(), "seq", false);  // resumable: never numbered twice
    bson_t set;
    bson_append_document_begin(update.get(), "$set", -1, &set);
    put_i64(&set, "seq", ++top);
    put_str(&set, "user_id", p.user_id);
    put_str(&set, "username", names.of(p.user_id));
    put_bool(&set, "migrated", true);
    bson_append_document_end(update.get(), &set);
    bson_error_t error;
    if (!mongoc_bulk_operation_update_one_with_opts(bulk.get(), selector.get(), update.get(), nullptr, &error)) {
      fail(error, "migrate: numbering");
    }
  }
  Doc reply;
  bson_error_t error;
  if (mongoc_bulk_operation_execute(bulk.get(), reply.out(), &error) == 0) fail(error, "migrate: numbering");
  return Reader(reply.get()).i64("nModified").value_or(0);
}

}  // namespace

MigrationReport migrate_original_messages(const Config& config, std::ostream& progress, std::int64_t progress_every) {
  if (config.mongo_url.empty()) throw ConfigError("migrate: MONGO_URL is not set: it names the database to migrate");
  auto pool = std::make_shared<MongoPool>(config.mongo_url, config.mongo);
  {
    MongoStore prepare(pool, true);  // email_lower for the original's users, the indexes
  }
  Session s(*pool);
  Usernames names(s);
  MigrationReport report;
  const auto rooms = rooms_to_number(s);
  progress << "migrate: " << pool->location() << ": " << rooms.size() << " room(s) with messages to number"
           << std::endl;
  for (const auto& room : rooms) {
    ++report.rooms;
    auto [top, served] = numbered_state(s, room);
    Doc left;
    put_str(left.get(), "room_id", room);
    put_exists(left.get(), "seq", false);
    const std::int64_t total = count(s, left);
    if (served) {
      ++report.rooms_skipped;
      progress << "migrate: room " << room << ": skipped: ChatOrbit has served it already (seq up to " << top
               << "), so its " << total << " older message(s) cannot be numbered before those" << std::endl;
      continue;
    }
    std::int64_t done = 0, next_line = progress_every;
    for (auto chunk = next_chunk(s, room); !chunk.empty(); chunk = next_chunk(s, room)) {
      const std::int64_t n = number(s, chunk, top, names);
      top += static_cast<std::int64_t>(chunk.size());
      done += n;
      report.numbered += n;
      if (done >= next_line) {
        progress << "migrate: room " << room << ": " << done << " of " << total << " numbered" << std::endl;
        next_line += progress_every;
      }
      if (n < static_cast<std::int64_t>(chunk.size())) {
        // Another writer numbered some of them meanwhile: start the room over from the
        // store's own state rather than guess.
        top = numbered_state(s, room).first;
      }
    }
    progress << "migrate: room " << room << ": done, " << done << " numbered, seq up to " << top << std::endl;
  }
  progress << "migrate: " << report.numbered << " message(s) numbered in " << (report.rooms - report.rooms_skipped)
           << " room(s)";
  if (report.rooms_skipped > 0) progress << ", " << report.rooms_skipped << " room(s) skipped (see above)";
  progress << std::endl;
  return report;
}

}  // namespace chatorbit::store
