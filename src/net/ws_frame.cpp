#include "net/ws_frame.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace chatorbit::ws {
namespace {

using Kind = Event::Kind;

constexpr bool is_control(Opcode op) { return (static_cast<std::uint8_t>(op) & 0x08) != 0; }

constexpr bool is_known_opcode(std::uint8_t op) { return op <= 0x2 || (op >= 0x8 && op <= 0xA); }

constexpr std::size_t header_size(std::size_t payload_size) {
  return payload_size <= 125 ? 2 : payload_size <= 0xFFFF ? 4 : 10;
}

// XORs `n` bytes with the masking key, starting `phase` bytes into the key's cycle
// (a frame's payload can arrive in several pieces). Eight bytes per step: the key is
// laid out twice in byte order, so the word XOR is independent of endianness.
void unmask(char* dst, const char* src, std::size_t n, const unsigned char key[4], std::size_t phase) {
  unsigned char k8[8];
  for (std::size_t i = 0; i < 8; ++i) k8[i] = key[(phase + i) & 3];
  std::uint64_t k;
  std::memcpy(&k, k8, sizeof k);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, src + i, sizeof w);
    w ^= k;
    std::memcpy(dst + i, &w, sizeof w);
  }
  for (; i < n; ++i) dst[i] = static_cast<char>(static_cast<unsigned char>(src[i]) ^ k8[i & 7]);
}

}  // namespace

bool is_valid_close_code(std::uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

std::size_t frame_size(std::size_t payload_size) { return header_size(payload_size) + payload_size; }

void append_frame(std::string& out, Opcode op, std::string_view payload) {
  if (op == Opcode::continuation) throw std::invalid_argument("ws: the server does not send continuation frames");
  if (is_control(op) && payload.size() > kMaxControlPayload) {
    throw std::invalid_argument("ws: control frame payload over 125 bytes");
  }
  const std::size_t n = payload.size();
  char h[10];
  h[0] = static_cast<char>(0x80 | static_cast<std::uint8_t>(op));
  std::size_t len = 2;
  if (n <= 125) {
    h[1] = static_cast<char>(n);
  } else if (n <= 0xFFFF) {
    h[1] = 126;
    h[2] = static_cast<char>(n >> 8);
    h[3] = static_cast<char>(n);
    len = 4;
  } else {
    h[1] = 127;
    const auto n64 = static_cast<std::uint64_t>(n);
    for (int i = 0; i < 8; ++i) h[2 + i] = static_cast<char>(n64 >> (56 - 8 * i));
    len = 10;
  }
  out.append(h, len);
  out.append(payload);
}

std::string make_frame(Opcode op, std::string_view payload) {
  std::string out;
  out.reserve(frame_size(payload.size()));
  append_frame(out, op, payload);
  return out;
}

void append_close_frame(std::string& out, std::uint16_t code, std::string_view reason) {
  if (code == close_code::no_status) {
    append_frame(out, Opcode::close, {});
    return;
  }
  if (!is_valid_close_code(code)) throw std::invalid_argument("ws: close code not allowed on the wire");
  if (reason.size() > kMaxCloseReason) {
    // Back up from the first dropped byte to the start of its sequence.
    std::size_t cut = kMaxCloseReason;
    while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80) --cut;
    reason = reason.substr(0, cut);
  }
  if (!is_valid_utf8(reason)) reason = {};
  char payload[kMaxControlPayload];
  payload[0] = static_cast<char>(code >> 8);
  payload[1] = static_cast<char>(code);
  if (!reason.empty()) std::memcpy(payload + 2, reason.data(), reason.size());  // data() may be null
  append_frame(out, Opcode::close, std::string_view(payload, 2 + reason.size()));
}

std::string make_close_frame(std::uint16_t code, std::string_view reason) {
  std::string out;
  append_close_frame(out, code, reason);
  return out;
}

// ---------------------------------------------------------------------------------

FrameReader::FrameReader(std::size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

void FrameReader::feed(std::string_view bytes) {
  if (stage_ == Stage::failed || stage_ == Stage::closed || bytes.empty()) return;
  if (pos_ == buf_.size()) {
    buf_.clear();  // the usual case: everything was parsed; keeps the capacity
    pos_ = 0;
  } else if (pos_ >= buf_.size() - pos_) {
    buf_.erase(0, pos_);  // moves no more bytes than were consumed: amortized O(1) per byte
    pos_ = 0;
  }
  buf_.append(bytes);
}

void FrameReader::fail(std::uint16_t code, std::string_view reason) {
  stage_ = Stage::failed;
  error_code_ = code;
  error_reason_ = reason;
  release_buffers();
}

Event FrameReader::next() {
  for (;;) {
    switch (stage_) {
      case Stage::failed: return Event{Kind::error, {}, error_code_, error_reason_};
      case Stage::closed: return {};
      case Stage::header:
        if (!parse_header()) return {};
        break;
      case Stage::payload:
        consume_payload();
        if (stage_ != Stage::payload) break;  // failed
        if (remaining_ != 0) return {};
        if (Event ev = finish_frame(); ev.kind != Kind::need_more) return ev;
        break;
    }
  }
}

bool FrameReader::parse_header() {
  const std::size_t avail = buf_.size() - pos_;
  if (avail < 2) return false;
  const auto* h = reinterpret_cast<const unsigned char*>(buf_.data()) + pos_;
  const bool fin = (h[0] & 0x80) != 0;
  const std::uint8_t op = h[0] & 0x0F;
  const bool control = (op & 0x08) != 0;
  const std::uint8_t len7 = h[1] & 0x7F;

  // Everything decidable from the first two bytes is decided before waiting for more, so
  // a bad frame is refused as early as possible. The order is fixed, which keeps the
  // reported error independent of how the input was chunked.
  const char* bad = nullptr;
  if ((h[0] & 0x70) != 0) {
    bad = "reserved bits set";
  } else if (!is_known_opcode(op)) {
    bad = "reserved opcode";
  } else if (control && !fin) {
    bad = "fragmented control frame";
  } else if (op == 0x0 && !message_open_) {
    bad = "continuation without a message";
  } else if (!control && op != 0x0 && message_open_) {
    bad = "new message inside a fragmented message";
  } else if ((h[1] & 0x80) == 0) {
    bad = "unmasked client frame";
  }
  if (bad != nullptr) {
    fail(close_code::protocol_error, bad);
    return true;
  }

  const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
  if (avail < 2 + ext) return false;
  std::uint64_t len = len7;
  if (ext != 0) {
    len = 0;
    for (std::size_t i = 0; i < ext; ++i) len = (len << 8) | h[2 + i];
  }
  // Longer-than-needed length forms are accepted, as RFC 6455 §5.2 allows a receiver to.
  if ((len >> 63) != 0) {
    fail(close_code::protocol_error, "64-bit length with the top bit set");
    return true;
  }
  if (control && len > kMaxControlPayload) {
    fail(close_code::protocol_error, "control frame over 125 bytes");
    return true;
  }
  // Refused from the header alone: nothing of an oversized message is ever buffered.
  if (!control && len > max_message_bytes_ - (message_open_ ? message_.size() : 0)) {
    fail(close_code::too_big, "message too big");
    return true;
  }

  if (avail < 2 + ext + 4) return false;
  std::memcpy(mask_, h + 2 + ext, 4);
  pos_ += 2 + ext + 4;
  opcode_ = static_cast<Opcode>(op);
  fin_ = fin;
  remaining_ = len;
  mask_phase_ = 0;
  if (control) {
    control_.clear();
  } else if (op != 0x0) {
    message_open_ = true;
    message_is_text_ = op == 0x1;
    message_.clear();
    // Reserve for what has actually arrived, not for the declared length: a client must
    // not be able to make us allocate max_message_bytes with a 10-byte header. Only on
    // the first fragment, so that later ones keep the string's geometric growth.
    message_.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(len, buf_.size() - pos_)));
    utf8_.reset();
  }
  stage_ = Stage::payload;
  return true;
}

void FrameReader::consume_payload() {
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf_.size() - pos_, remaining_));
  if (n == 0) return;
  std::string& dst = is_control(opcode_) ? control_ : message_;
  const std::size_t old = dst.size();
  dst.resize(old + n);
  unmask(dst.data() + old, buf_.data() + pos_, n, mask_, mask_phase_);
  pos_ += n;
  remaining_ -= n;
  mask_phase_ = (mask_phase_ + n) & 3;
  // Validated as it arrives, so a bad text message fails before its last fragment.
  if (!is_control(opcode_) && message_is_text_ && !utf8_.feed(std::string_view(dst).substr(old))) {
    fail(close_code::invalid_payload, "invalid UTF-8 in text message");
  }
}

Event FrameReader::finish_frame() {
  stage_ = Stage::header;
  switch (opcode_) {
    case Opcode::ping: return Event{Kind::ping, std::move(control_), 0, {}};
    case Opcode::pong: return Event{Kind::pong, std::move(control_), 0, {}};
    case Opcode::close: return finish_close();
    case Opcode::continuation:
    case Opcode::text:
    case Opcode::binary:
      if (!fin_) return {};
      if (message_is_text_ && !utf8_.complete()) {
        fail(close_code::invalid_payload, "text message ends inside a UTF-8 sequence");
        return {};
      }
      message_open_ = false;
      return Event{message_is_text_ ? Kind::text : Kind::binary, std::move(message_), 0, {}};
  }
  return {};
}

Event FrameReader::finish_close() {
  std::uint16_t code = close_code::no_status;
  if (control_.size() == 1) {
    fail(close_code::protocol_error, "close frame with a 1-byte payload");
    return {};
  }
  if (!control_.empty()) {
    code = static_cast<std::uint16_t>((static_cast<unsigned char>(control_[0]) << 8) |
                                      static_cast<unsigned char>(control_[1]));
    if (!is_valid_close_code(code)) {
      fail(close_code::protocol_error, "invalid close code");
      return {};
    }
    control_.erase(0, 2);
    if (!is_valid_utf8(control_)) {
      fail(close_code::invalid_payload, "close reason is not UTF-8");
      return {};
    }
  }
  stage_ = Stage::closed;
  release_buffers();
  return Event{Kind::close, std::move(control_), code, {}};
}

void FrameReader::release_buffers() {
  std::string().swap(buf_);
  std::string().swap(message_);
  pos_ = 0;
}

}  // namespace chatorbit::ws
