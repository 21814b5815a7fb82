// Fuzz target: the WebSocket encoders (net/ws_frame.hpp: append_frame, make_frame,
// append_close_frame, frame_size), checked by decoding what they produce.
//
// Input: byte 0 picks the opcode (text, binary, ping, pong, close, continuation);
// bytes 1-2 (big-endian) are a payload length to stretch the rest to (so that the 125,
// 126 / 65535 and 65536 length-form boundaries are reached), or for close the code;
// bytes 3.. are the payload or the close reason.
//
// Oracles, beyond the sanitizers: the documented exceptions are thrown exactly when the
// header says (continuation; control payload over 125; close code not allowed) and
// nothing else escapes; frame_size() is the encoded size; the frame is final, unmasked,
// in the shortest length form; masked as a client would and fed to a FrameReader, it
// decodes to the same message; a close frame's reason is the given one cut to 123 bytes
// at a code-point boundary, or empty if it was not UTF-8.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "net/utf8.hpp"
#include "net/ws_frame.hpp"

namespace {

namespace ws = chatorbit::ws;

void check(bool ok, const char* what) { chatorbit::fuzz::check(ok, "ws_encode_fuzz", what); }

// The server's frame turned into a client's: mask bit set and a key inserted.
std::string as_client_frame(std::string_view f) {
  const auto len7 = static_cast<unsigned char>(f[1]) & 0x7F;
  const std::size_t head = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
  static constexpr unsigned char kKey[4] = {0xA1, 0x05, 0x7E, 0xC3};
  std::string out(f.substr(0, head));
  out[1] = static_cast<char>(out[1] | 0x80);
  out.append(reinterpret_cast<const char*>(kKey), 4);
  for (std::size_t i = head; i < f.size(); ++i) out += static_cast<char>(f[i] ^ kKey[(i - head) & 3]);
  return out;
}

ws::Event decode(const std::string& frame) {
  ws::FrameReader r(1 << 20);
  r.feed(as_client_frame(frame));
  ws::Event ev = r.next();
  check(r.next().kind == ws::Event::Kind::need_more || r.closed(), "one frame decoded to more than one event");
  return ev;
}

std::size_t payload_offset(const std::string& f) {
  const auto len7 = static_cast<unsigned char>(f[1]) & 0x7F;
  return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  static constexpr ws::Opcode kOps[] = {ws::Opcode::text, ws::Opcode::binary, ws::Opcode::ping,
                                        ws::Opcode::pong, ws::Opcode::close,  ws::Opcode::continuation};
  const ws::Opcode op = kOps[data[0] % std::size(kOps)];
  const auto word = static_cast<std::uint16_t>((data[1] << 8) | data[2]);
  const std::string_view rest(reinterpret_cast<const char*>(data) + 3, size - 3);

  if (op == ws::Opcode::close) {
    std::string out = "prefix";  // append_*: must append, not overwrite
    try {
      ws::append_close_frame(out, word, rest);
    } catch (const std::invalid_argument&) {
      check(word != ws::close_code::no_status && !ws::is_valid_close_code(word), "close frame refused wrongly");
      return 0;
    }
    check(word == ws::close_code::no_status || ws::is_valid_close_code(word), "invalid close code accepted");
    check(out.compare(0, 6, "prefix") == 0, "append_close_frame overwrote the buffer");
    const std::string frame = out.substr(6);
    check(frame == ws::make_close_frame(word, rest), "make_close_frame differs from append_close_frame");
    const ws::Event ev = decode(frame);
    check(ev.kind == ws::Event::Kind::close, "close frame does not decode as a close");
    check(ev.code == word, "close code changed");
    std::string_view want;
    if (word != ws::close_code::no_status) {
      want = rest.substr(0, ws::kMaxCloseReason);
      // The cut must not split a sequence: back up to its lead byte, as documented.
      if (rest.size() > ws::kMaxCloseReason) {
        std::size_t cut = ws::kMaxCloseReason;
        while (cut > 0 && (static_cast<unsigned char>(rest[cut]) & 0xC0) == 0x80) --cut;
        want = rest.substr(0, cut);
      }
      if (!ws::is_valid_utf8(want)) want = {};
    }
    check(ev.payload == want, "close reason is not the given one, cut at a boundary");
    return 0;
  }

  // Stretch the payload to `word` bytes (repeating the input) when that is longer.
  std::string payload(rest);
  if (!rest.empty() && word > payload.size()) {
    while (payload.size() < word) payload.append(rest.substr(0, word - payload.size()));
  }
  const bool control = op == ws::Opcode::ping || op == ws::Opcode::pong;
  std::string frame;
  try {
    frame = ws::make_frame(op, payload);
  } catch (const std::invalid_argument&) {
    check(op == ws::Opcode::continuation || (control && payload.size() > ws::kMaxControlPayload),
          "frame refused wrongly");
    return 0;
  }
  check(op != ws::Opcode::continuation, "continuation frame encoded");
  check(!control || payload.size() <= ws::kMaxControlPayload, "oversized control frame encoded");
  check(frame.size() == ws::frame_size(payload.size()), "frame_size() is not the encoded size");
  check((static_cast<unsigned char>(frame[0]) & 0xF0) == 0x80, "not FIN, or RSV bits set");
  check((static_cast<unsigned char>(frame[1]) & 0x80) == 0, "server frame masked");
  const std::size_t head = payload_offset(frame);
  const std::size_t shortest = payload.size() <= 125 ? 2 : payload.size() <= 0xFFFF ? 4 : 10;
  check(head == shortest, "length not in the shortest form");
  check(std::string_view(frame).substr(head) == payload, "payload not copied verbatim");

  if (op == ws::Opcode::text && !ws::is_valid_utf8(payload)) return 0;  // the reader would refuse it: its job
  const ws::Event ev = decode(frame);
  static constexpr ws::Event::Kind kKinds[] = {ws::Event::Kind::text, ws::Event::Kind::binary, ws::Event::Kind::ping,
                                               ws::Event::Kind::pong};
  check(ev.kind == kKinds[data[0] % std::size(kOps)], "frame decodes as another kind");
  check(ev.payload == payload, "frame decodes to another payload");
  return 0;
}
