#pragma once
// Reading JSON request bodies defensively: anything that is not a JSON object with
// the expected field types becomes a 400 with a clear message, never an exception
// that escapes as a 500, and never a value of the wrong type reaching a query.

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "net/http_types.hpp"

namespace chatorbit::http {

/// A request body parsed as a JSON object. Errors throw HttpError(400, error_message,
/// {"detail": what was wrong}); `error_message` keeps the contract's wording per route.
class JsonBody {
 public:
  JsonBody(const Request& req, std::string error_message);

  /// A required string field.
  std::string string(std::string_view key) const;
  /// An optional string field (absent or null → nullopt; other types → 400).
  std::optional<std::string> optional_string(std::string_view key) const;
  /// An optional whole-number field within [lo, hi].
  std::optional<std::int64_t> optional_int(std::string_view key, std::int64_t lo, std::int64_t hi) const;
  /// An optional boolean field.
  std::optional<bool> optional_bool(std::string_view key) const;

  [[noreturn]] void fail(const std::string& detail) const;
  const boost::json::object& object() const { return obj_; }

 private:
  boost::json::object obj_;
  std::string error_message_;
};

}  // namespace chatorbit::http
