#pragma once
// What chat looks like on the wire: room ids and message content as accepted from
// clients, and the JSON of every frame the server sends. Message frames are written
// by hand, not through a JSON tree, so the key order matches the original byte for
// byte and one encoding can be shared by every viewer.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/store.hpp"

namespace chatorbit::chat {

/// The normalised (lower-case) room id, or nullopt with `why` set if it is not 1-64
/// characters of a-z 0-9 _ -.
std::optional<std::string> normalize_room_id(std::string_view raw, std::string* why = nullptr);

/// Content after trimming surrounding white space, or an error code ("invalid" or
/// "too_long") with a message. `text` is already valid UTF-8 (the frame codec checks).
struct ContentCheck {
  std::string content;
  std::string error_code;  ///< empty when acceptable
  std::string message;
};
ContentCheck check_content(std::string_view text, int max_chars);

/// {"id","room_id","user_id","content","timestamp","username","seq"}: the original's
/// frame plus username and seq. Also the shape of history items.
std::string message_json_v1(const store::Message& m);
/// The same message as a version 2 envelope: {"type":"message",...}.
std::string message_json_v2_from_v1(std::string_view v1);

/// {"type":"error","code":...,"message":...} with optional retry_after_ms and cid.
std::string error_json(std::string_view code, std::string_view message, std::optional<std::int64_t> retry_after_ms = {},
                       std::string_view cid = {});

/// Appends `s` as a JSON string literal, quotes included.
void append_json_string(std::string& out, std::string_view s);

}  // namespace chatorbit::chat
