#pragma once
// Small owners and helpers over libbson and libmongoc for the MongoDB store and its
// migration (mongo_store.cpp, mongo_migrate.cpp): documents, cursors and bulk writes
// that free themselves, typed appends and reads, and how driver errors map to the
// store's.

#include <mongoc/mongoc.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/store.hpp"

namespace chatorbit::store::mongo_detail {

/// An owned bson_t. Not movable: libbson keeps small documents inline.
class Doc {
 public:
  Doc() { bson_init(&b_); }
  ~Doc() { bson_destroy(&b_); }
  Doc(const Doc&) = delete;
  Doc& operator=(const Doc&) = delete;

  bson_t* get() { return &b_; }
  const bson_t* get() const { return &b_; }
  /// For driver calls that fill in a reply: they initialise it themselves, always.
  bson_t* out() {
    bson_destroy(&b_);
    return &b_;
  }

 private:
  bson_t b_;
};

class Cursor {
 public:
  explicit Cursor(mongoc_cursor_t* c) : c_(c) {}
  ~Cursor() { mongoc_cursor_destroy(c_); }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  mongoc_cursor_t* get() { return c_; }

 private:
  mongoc_cursor_t* c_;
};

class Bulk {
 public:
  explicit Bulk(mongoc_bulk_operation_t* b) : b_(b) {}
  ~Bulk() { mongoc_bulk_operation_destroy(b_); }
  Bulk(const Bulk&) = delete;
  Bulk& operator=(const Bulk&) = delete;
  mongoc_bulk_operation_t* get() { return b_; }

 private:
  mongoc_bulk_operation_t* b_;
};

inline bool is_object_id(std::string_view s) {
  if (s.size() != 24) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

inline void put_str(bson_t* d, const char* key, std::string_view v) {
  bson_append_utf8(d, key, -1, v.data(), static_cast<int>(v.size()));
}
inline void put_i64(bson_t* d, const char* key, std::int64_t v) { bson_append_int64(d, key, -1, v); }
inline void put_bool(bson_t* d, const char* key, bool v) { bson_append_bool(d, key, -1, v); }
inline void put_date(bson_t* d, const char* key, std::int64_t ms) { bson_append_date_time(d, key, -1, ms); }

/// An id as the API shows it: 24 hex characters are an ObjectId, anything else a string.
inline void put_id(bson_t* d, const char* key, std::string_view id) {
  if (is_object_id(id)) {
    const std::string text(id);
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, text.c_str());
    bson_append_oid(d, key, -1, &oid);
  } else {
    put_str(d, key, id);
  }
}

/// Typed reads of one document's top-level fields; a missing field, or one of another
/// type, reads as empty.
class Reader {
 public:
  explicit Reader(const bson_t* d) : d_(d) {}

  std::string str(const char* key) const {
    bson_iter_t it;
    if (!find(key, &it) || !BSON_ITER_HOLDS_UTF8(&it)) return {};
    std::uint32_t len = 0;
    const char* s = bson_iter_utf8(&it, &len);
    return std::string(s, len);
  }
  /// A string, or an ObjectId as its 24 lower-case hex characters.
  std::string id(const char* key) const {
    bson_iter_t it;
    if (!find(key, &it)) return {};
    if (BSON_ITER_HOLDS_OID(&it)) {
      char hex[25];
      bson_oid_to_string(bson_iter_oid(&it), hex);
      return hex;
    }
    return str(key);
  }
  std::optional<std::int64_t> i64(const char* key) const {
    bson_iter_t it;
    if (!find(key, &it)) return std::nullopt;
    if (BSON_ITER_HOLDS_INT64(&it)) return bson_iter_int64(&it);
    if (BSON_ITER_HOLDS_INT32(&it)) return bson_iter_int32(&it);
    if (BSON_ITER_HOLDS_DOUBLE(&it)) return static_cast<std::int64_t>(bson_iter_double(&it));
    return std::nullopt;
  }
  /// A BSON date, in Unix milliseconds (a number is taken as milliseconds too).
  std::optional<std::int64_t> time_ms(const char* key) const {
    bson_iter_t it;
    if (find(key, &it) && BSON_ITER_HOLDS_DATE_TIME(&it)) return bson_iter_date_time(&it);
    return i64(key);
  }
  bool boolean(const char* key) const {
    bson_iter_t it;
    return find(key, &it) && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
  }

  struct WriteError {
    std::size_t index = 0;
    std::int64_t code = 0;
    std::string message;
  };
  /// A bulk write reply's first entry of writeErrors.
  std::optional<WriteError> first_write_error() const {
    bson_iter_t it, errors;
    if (!find("writeErrors", &it) || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &errors)) {
      return std::nullopt;
    }
    if (!bson_iter_next(&errors) || !BSON_ITER_HOLDS_DOCUMENT(&errors)) return std::nullopt;
    std::uint32_t len = 0;
    const std::uint8_t* data = nullptr;
    bson_iter_document(&errors, &len, &data);
    bson_t doc;
    if (!bson_init_static(&doc, data, len)) return std::nullopt;
    Reader r(&doc);
    return WriteError{static_cast<std::size_t>(r.i64("index").value_or(0)), r.i64("code").value_or(0), r.str("errmsg")};
  }

 private:
  bool find(const char* key, bson_iter_t* it) const { return bson_iter_init_find(it, d_, key); }
  const bson_t* d_;
};

inline bool is_duplicate_key(const bson_error_t& e) { return e.code == 11000 || e.code == 11001; }

/// The server could not be reached or the connection broke: the outcome of a write in
/// flight is unknown (except for server selection, which sent nothing).
inline bool is_connection_error(const bson_error_t& e) {
  return e.domain == MONGOC_ERROR_STREAM || e.domain == MONGOC_ERROR_SERVER_SELECTION;
}

/// Throws StoreUnavailable for a server that cannot be reached, StoreError otherwise.
[[noreturn]] inline void fail(const bson_error_t& e, std::string_view what) {
  std::string text = "mongodb: " + std::string(what) + ": " + e.message;
  if (is_connection_error(e)) throw StoreUnavailable(text);
  throw StoreError(text);
}

/// {field: {$exists: exists}}.
inline void put_exists(bson_t* d, const char* field, bool exists) {
  bson_t cond;
  bson_append_document_begin(d, field, -1, &cond);
  put_bool(&cond, "$exists", exists);
  bson_append_document_end(d, &cond);
}

/// Calls f(const bson_t*) for every document of the cursor (taking ownership of it),
/// then throws if the cursor ended on an error.
template <class F>
void each(mongoc_cursor_t* raw, F&& f) {
  Cursor cursor(raw);
  const bson_t* doc = nullptr;
  while (mongoc_cursor_next(cursor.get(), &doc)) f(doc);
  bson_error_t error;
  if (mongoc_cursor_error(cursor.get(), &error)) fail(error, "reading a cursor");
}

}  // namespace chatorbit::store::mongo_detail
