#pragma once
// The WebSocket (RFC 6455) framing codec used after Beast has done the HTTP upgrade.
//
// Why our own codec: frames the server sends are unmasked, so one encoded buffer can be
// shared by every viewer of a room, and many frames can be appended to one buffer and
// written with a single send(). No extension is ever negotiated (no permessage-deflate),
// so the RSV bits must always be zero.
//
// Encoding (server -> client) is a set of free functions: pure, thread-safe.
// Decoding (client -> server) is FrameReader: one per connection, not thread-safe.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "net/utf8.hpp"

namespace chatorbit::ws {

enum class Opcode : std::uint8_t { continuation = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA };

/// Close status codes (RFC 6455 §7.4 and the IANA registry) and the product's own.
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unsupported = 1003;
/// Never on the wire: what FrameReader reports for a close frame that carried no code,
/// and what make_close_frame() turns into an empty close frame.
inline constexpr std::uint16_t no_status = 1005;
inline constexpr std::uint16_t invalid_payload = 1007;
inline constexpr std::uint16_t policy = 1008;
inline constexpr std::uint16_t too_big = 1009;
inline constexpr std::uint16_t internal = 1011;
inline constexpr std::uint16_t service_restart = 1012;  ///< a draining node: reconnect (elsewhere)
/// Application codes (4000-4999 are private use).
inline constexpr std::uint16_t unauthorized = 4001;  ///< the session's token was revoked
inline constexpr std::uint16_t banned = 4003;
inline constexpr std::uint16_t slow_consumer = 4008;
}  // namespace close_code

/// Largest payload of a control frame (close, ping, pong).
inline constexpr std::size_t kMaxControlPayload = 125;
/// Largest close reason: a control payload less the 2-byte code.
inline constexpr std::size_t kMaxCloseReason = kMaxControlPayload - 2;

/// True if `code` may appear in a close frame on the wire: 1000-1003, 1007-1014 and
/// 3000-4999. 1004-1006 and 1015 are reserved for local use, and the rest of 1000-2999
/// is unassigned. 1012 (service restart: a draining node's "reconnect elsewhere"), 1013
/// (try again later) and 1014 (bad gateway) were registered with IANA after RFC 6455
/// (and after the Autobahn suite's 7.9 cases, which still call them invalid); browsers
/// and client libraries take them, and so does this side.
bool is_valid_close_code(std::uint16_t code);

// ---------------------------------------------------------------------------------
// Encoding. Frames are final (FIN set), unmasked, and use the shortest length form.

/// Size of the encoded frame carrying `payload_size` bytes (header + payload).
std::size_t frame_size(std::size_t payload_size);

/// Appends one frame to `out`, so that several frames can go out in one write.
/// Throws std::invalid_argument if `op` is continuation (the server never fragments) or
/// if a control frame's payload exceeds kMaxControlPayload.
void append_frame(std::string& out, Opcode op, std::string_view payload);

/// One frame as a new buffer; see append_frame().
std::string make_frame(Opcode op, std::string_view payload);

/// Appends a close frame. `reason` is cut to kMaxCloseReason bytes at a code-point
/// boundary; a reason that is not valid UTF-8 is dropped (the peer would have to fail
/// the connection over it). `code` close_code::no_status yields an empty close frame
/// (and ignores `reason`); any other code must satisfy is_valid_close_code(), else
/// std::invalid_argument is thrown.
void append_close_frame(std::string& out, std::uint16_t code, std::string_view reason);

/// One close frame as a new buffer; see append_close_frame().
std::string make_close_frame(std::uint16_t code, std::string_view reason = {});

// ---------------------------------------------------------------------------------
// Decoding.

/// One result of FrameReader::next().
struct Event {
  enum class Kind : std::uint8_t { need_more, text, binary, ping, pong, close, error };
  Kind kind = Kind::need_more;
  /// text/binary: the whole reassembled message (text: valid UTF-8). ping/pong: the
  /// application data, to echo in the pong.
  /// close: the reason (valid UTF-8, possibly empty). Empty otherwise.
  std::string payload;
  /// close: the code received, or close_code::no_status if the frame had none.
  /// error: the code the server must close with (1002, 1007 or 1009).
  std::uint16_t code = 0;
  /// error: a short static description, for logs. Empty otherwise.
  std::string_view reason;
};

/// Incremental decoder of client-to-server frames. Bytes are fed as they come off the
/// socket, in chunks of any size (many frames in one chunk, a frame split anywhere);
/// next() is then called until it returns need_more.
///
/// Everything RFC 6455 requires a server to check is checked, and the first violation
/// is reported once as an error event with the close code to send; a frame too large
/// is refused from its header, before any of its payload is buffered. Fragmented
/// messages are reassembled; control frames that arrive between the fragments are
/// returned at once. Text messages are UTF-8-validated as their bytes arrive, so an
/// invalid message fails before its end has been received.
///
/// Terminal states: after an error, next() keeps returning the same error and feed()
/// discards its input. After a close event, next() returns need_more and feed()
/// discards its input: nothing a client sends after its close frame has meaning.
///
/// Memory: payload bytes are unmasked straight into the message being assembled (at
/// most max_message_bytes, and never more than has actually arrived), so once next()
/// has returned need_more the input buffer holds at most one partial frame header. Its
/// capacity stays that of the largest chunk fed. One reader per connection; not
/// thread-safe.
class FrameReader {
 public:
  static constexpr std::size_t kDefaultMaxMessageBytes = 64 * 1024;

  /// `max_message_bytes` limits a whole message (the sum of its fragments; inclusive).
  explicit FrameReader(std::size_t max_message_bytes = kDefaultMaxMessageBytes);

  /// Buffers `bytes` (copied; the view need not outlive the call).
  void feed(std::string_view bytes);
  /// The next complete event, or need_more if more input is required.
  Event next();

  /// True once an error has been returned.
  bool failed() const { return stage_ == Stage::failed; }
  /// True once a close frame has been returned.
  bool closed() const { return stage_ == Stage::closed; }
  std::size_t max_message_bytes() const { return max_message_bytes_; }

 private:
  enum class Stage : std::uint8_t { header, payload, failed, closed };

  // Each returns with stage_ updated; an Event of kind need_more means "keep going".
  bool parse_header();  ///< false: the header is not complete yet
  void consume_payload();
  Event finish_frame();
  Event finish_close();
  void fail(std::uint16_t code, std::string_view reason);
  void release_buffers();  ///< in a terminal stage nothing more is parsed

  std::size_t max_message_bytes_;
  Stage stage_ = Stage::header;

  // Fed bytes not yet parsed are buf_[pos_, size). Compacted in feed() only once the
  // consumed prefix is at least as long as what remains, so the cost stays linear no
  // matter how the input is chunked.
  std::string buf_;
  std::size_t pos_ = 0;

  // The frame being read.
  Opcode opcode_ = Opcode::continuation;
  bool fin_ = false;
  unsigned char mask_[4] = {};
  std::uint64_t remaining_ = 0;  ///< payload bytes of this frame still to come
  std::size_t mask_phase_ = 0;   ///< payload bytes of this frame already unmasked, mod 4
  std::string control_;          ///< payload of a control frame (at most 125 bytes)

  // The data message being reassembled; message_open_ spans its fragments.
  bool message_open_ = false;
  bool message_is_text_ = false;
  std::string message_;
  Utf8Validator utf8_;

  // The error, repeated by next() once failed.
  std::uint16_t error_code_ = 0;
  std::string_view error_reason_;
};

}  // namespace chatorbit::ws
