#pragma once
// The frames a chat client sends (docs/protocol.md, "Client to server"), parsed and
// type-checked in one place: a field of the wrong type is refused with `invalid`, never
// read as if it were absent. Pure: the fuzzer and the unit tests call it directly.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chatorbit::chat {

struct ClientFrame {
  enum class Type : std::uint8_t { message, join, history, ping };
  Type type = Type::message;
  std::optional<std::string> room_id;
  std::optional<std::string> content;
  std::string cid;  ///< empty: none
  /// The client says it sent this cid before (after a reconnect or an error): looked
  /// up before it is numbered (chat/resend_window.hpp).
  bool resend = false;
  // history
  std::optional<std::uint64_t> before;  ///< only messages with a smaller seq
  int limit = 50;                       ///< 1..kMaxHistoryLimit
};

/// Largest `limit` of a history request; larger ones are capped to it.
inline constexpr int kMaxHistoryLimit = 200;
/// Longest client id.
inline constexpr std::size_t kMaxCidBytes = 64;

/// A frame, or why it is refused (always the `invalid` error code). `cid` is set whenever
/// the frame carried a readable one, so that the refusal can name it.
struct ParsedFrame {
  std::optional<ClientFrame> frame;
  std::string error;
  std::string cid;
};

/// Parses one text frame (valid UTF-8; the codec has checked). Unknown fields are
/// ignored, so that newer clients keep working. Never throws but std::bad_alloc.
ParsedFrame parse_client_frame(std::string_view text);

}  // namespace chatorbit::chat
