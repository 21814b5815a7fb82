#pragma once
// RESP2 on the wire: commands encoded as arrays of bulk strings (what every Redis
// command is), replies decoded by hiredis's reader (read.h), the one part of hiredis
// ChatOrbit uses. The sockets are Asio's (redis_connection.hpp).
//
// Thread-safety: RespReader is used by one thread at a time; the free functions are pure.

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct redisReader;

namespace chatorbit::engine::redis {

/// One decoded reply. Pub/sub pushes are arrays too (["message", channel, payload]).
struct Reply {
  enum class Type { string, array, integer, nil, status, error };
  Type type = Type::nil;
  std::string str;  ///< string, status, error
  std::int64_t integer = 0;
  std::vector<Reply> elements;  ///< array

  bool is_error() const { return type == Type::error; }
  bool is_nil() const { return type == Type::nil; }
  /// The reply as an integer: an integer reply, or a string of digits; throws otherwise.
  std::int64_t as_int() const;
  /// A short rendering for logs and error messages.
  std::string describe() const;
};

/// The reply's contents are not what the command promises (a script or server bug, or a
/// proxy speaking something else): the caller treats it as a failed operation.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A command under construction: arguments appended one by one, encoded at once.
class Command {
 public:
  Command() = default;
  explicit Command(std::string_view name) { arg(name); }
  Command& arg(std::string_view a);
  Command& arg(std::int64_t n);
  /// The command as RESP (an array of bulk strings).
  std::string encode() const;
  std::size_t size() const { return args_.size(); }
  const std::string& name() const { return args_.front(); }
  const std::vector<std::string>& args() const { return args_; }

 private:
  std::vector<std::string> args_;
};

/// Appends `args` to `out` as one RESP command.
void encode_command(std::string& out, const std::vector<std::string>& args);
/// The same, for arguments held elsewhere (a payload is copied once, into `out`).
void encode_command(std::string& out, std::initializer_list<std::string_view> args);

/// Incremental reply decoder over hiredis's redisReader.
class RespReader {
 public:
  RespReader();
  ~RespReader();
  RespReader(const RespReader&) = delete;
  RespReader& operator=(const RespReader&) = delete;

  /// Hands bytes read from the socket to the decoder.
  void feed(const char* data, std::size_t size);
  /// The next complete reply, if the bytes fed so far hold one. Throws ProtocolError if
  /// the stream is not RESP (the connection must then be dropped).
  std::optional<Reply> next();

 private:
  redisReader* reader_;
};

}  // namespace chatorbit::engine::redis
