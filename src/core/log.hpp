#pragma once
// Structured logging: one JSON object per line on stderr, written with a single
// write(2) so lines from different threads never interleave.
//
//   log::info("http_request", {{"request_id", id}, {"status", 200}});

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace chatorbit::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

/// Parses "debug", "info", "warn"/"warning", "error" (any case).
std::optional<Level> parse_level(std::string_view s);
/// Sets the minimum level that is written. Thread-safe.
void set_level(Level level);
/// True if an event at `level` would be written.
bool enabled(Level level);

/// One key/value pair of a log line. Strings are referenced, not copied: they must
/// outlive the call (they always do when written inline).
struct Field {
  using Value = std::variant<std::string_view, std::int64_t, double, bool>;
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view{v}) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view{v}) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  template <class I>
  requires(std::is_integral_v<I> && !std::is_same_v<I, bool>) Field(std::string_view k, I v)
      : key(k), value(static_cast<std::int64_t>(v)) {}
  std::string_view key;
  Value value;
};

/// Writes one line if `level` is enabled.
void write(Level level, std::string_view event, std::initializer_list<Field> fields = {});

inline void debug(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::debug, e, f); }
inline void info(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::info, e, f); }
inline void warn(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::warn, e, f); }
inline void error(std::string_view e, std::initializer_list<Field> f = {}) { write(Level::error, e, f); }

/// Appends `s` to `out` as the inside of a JSON string (quotes not included).
void append_json_escaped(std::string& out, std::string_view s);

}  // namespace chatorbit::log
