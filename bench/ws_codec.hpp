#pragma once
// The WebSocket client codec of chatorbit-bench: masked frames out, an incremental parser
// of server frames in, and the handshake's key and accept helpers.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace chatorbit::bench {

// ---------------------------------------------------------------------------------
// Codec

enum class WsOp : std::uint8_t { continuation = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA };

/// Appends one final, masked client frame (RFC 6455 5.3: every client frame is masked).
void append_client_frame(std::string& out, WsOp op, std::string_view payload, std::uint32_t mask);

/// Appends a masked close frame carrying `code` (no reason).
void append_client_close(std::string& out, std::uint16_t code, std::uint32_t mask);

struct ServerFrame {
  WsOp op = WsOp::text;
  bool fin = true;
  std::string_view payload;
};

/// Incremental parser of server-to-client frames (unmasked). Feed it chunks as they come
/// off the socket: many frames per chunk, frames split anywhere. Complete frames are
/// handed to the callback as views into the chunk (or, for a frame that straddled
/// chunks, into the parser's own buffer) valid only during the call.
class ServerFrameParser {
 public:
  /// Larger frames are refused as a protocol error (the server never sends them).
  static constexpr std::size_t kMaxFrameBytes = 16U << 20;
  enum class Status : std::uint8_t { ok, stopped, error };

  /// `on_frame(const ServerFrame&) -> bool`; returning false stops parsing (the rest of
  /// the chunk is dropped: the connection is going away). error: a masked frame, RSV
  /// bits, or a frame larger than kMaxFrameBytes.
  template <class F>
  Status feed(std::string_view chunk, F&& on_frame);

  /// Bytes of an incomplete frame held from earlier chunks.
  std::size_t pending() const { return partial_.size(); }

  /// The whole frame's size (header + payload) if `n` bytes at `p` hold its header; 0
  /// if the header is incomplete; SIZE_MAX on a protocol error. Fills op/fin and the
  /// header size.
  static std::size_t frame_size(const unsigned char* p, std::size_t n, ServerFrame& f, std::size_t& header);

 private:
  std::string partial_;
};

template <class F>
ServerFrameParser::Status ServerFrameParser::feed(std::string_view chunk, F&& on_frame) {
  auto p = reinterpret_cast<const unsigned char*>(chunk.data());
  std::size_t n = chunk.size();
  ServerFrame f;
  std::size_t header = 0;
  if (!partial_.empty()) {
    // Complete the held frame: its header a byte at a time (so as not to swallow the
    // start of the next frame), then exactly its payload.
    std::size_t total = 0;
    for (;;) {
      total = frame_size(reinterpret_cast<const unsigned char*>(partial_.data()), partial_.size(), f, header);
      if (total == SIZE_MAX) return Status::error;
      if (total != 0) break;
      if (n == 0) return Status::ok;
      partial_.push_back(static_cast<char>(*p++));
      --n;
    }
    const std::size_t take = std::min(total - partial_.size(), n);
    partial_.append(reinterpret_cast<const char*>(p), take);
    p += take;
    n -= take;
    if (partial_.size() < total) return Status::ok;
    f.payload = std::string_view(partial_.data() + header, total - header);
    const bool go_on = on_frame(static_cast<const ServerFrame&>(f));
    if (partial_.capacity() > (64U << 10)) {
      std::string().swap(partial_);
    } else {
      partial_.clear();
    }
    if (!go_on) return Status::stopped;
  }
  while (n > 0) {
    const std::size_t total = frame_size(p, n, f, header);
    if (total == SIZE_MAX) return Status::error;
    if (total == 0 || total > n) {
      partial_.assign(reinterpret_cast<const char*>(p), n);
      return Status::ok;
    }
    f.payload = std::string_view(reinterpret_cast<const char*>(p) + header, total - header);
    if (!on_frame(static_cast<const ServerFrame&>(f))) return Status::stopped;
    p += total;
    n -= total;
  }
  return Status::ok;
}

// ---------------------------------------------------------------------------------
// Handshake helpers

/// A random Sec-WebSocket-Key (base64 of 16 bytes) from `state` (xorshift64).
std::string make_ws_key(std::uint64_t& state);
/// The Sec-WebSocket-Accept the server must answer `key` with (SHA-1, base64).
std::string ws_accept_for(std::string_view key);

}  // namespace chatorbit::bench
