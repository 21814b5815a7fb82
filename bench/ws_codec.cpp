// The WebSocket client codec of chatorbit-bench: frame encoding and parsing, and the
// handshake's key and accept helpers.

#include "ws_codec.hpp"

#include <openssl/sha.h>

#include <cstring>

namespace chatorbit::bench {

// ---------------------------------------------------------------------------------
// Codec

void append_client_frame(std::string& out, WsOp op, std::string_view payload, std::uint32_t mask) {
  const std::size_t n = payload.size();
  out.push_back(static_cast<char>(0x80 | static_cast<unsigned>(op)));
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>((n >> 8) & 0xFF));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xFF));
  }
  const unsigned char key[4] = {static_cast<unsigned char>(mask >> 24), static_cast<unsigned char>(mask >> 16),
                                static_cast<unsigned char>(mask >> 8), static_cast<unsigned char>(mask)};
  out.append(reinterpret_cast<const char*>(key), 4);
  const std::size_t start = out.size();
  out.append(payload);
  for (std::size_t i = 0; i < n; ++i) out[start + i] = static_cast<char>(out[start + i] ^ key[i & 3]);
}

void append_client_close(std::string& out, std::uint16_t code, std::uint32_t mask) {
  const char body[2] = {static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  append_client_frame(out, WsOp::close, std::string_view(body, 2), mask);
}

std::size_t ServerFrameParser::frame_size(const unsigned char* p, std::size_t n, ServerFrame& f, std::size_t& header) {
  if (n < 2) return 0;
  const unsigned b0 = p[0];
  const unsigned b1 = p[1];
  if ((b0 & 0x70) != 0 || (b1 & 0x80) != 0) return SIZE_MAX;  // RSV bits; servers never mask
  f.op = static_cast<WsOp>(b0 & 0x0F);
  f.fin = (b0 & 0x80) != 0;
  std::uint64_t len = b1 & 0x7F;
  header = 2;
  if (len == 126) {
    if (n < 4) return 0;
    len = (static_cast<std::uint64_t>(p[2]) << 8) | p[3];
    header = 4;
  } else if (len == 127) {
    if (n < 10) return 0;
    len = 0;
    for (int i = 2; i < 10; ++i) len = (len << 8) | p[i];
    header = 10;
  }
  if (len > kMaxFrameBytes) return SIZE_MAX;
  return header + static_cast<std::size_t>(len);
}

// ---------------------------------------------------------------------------------
// Handshake helpers

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(const unsigned char* p, std::size_t n) {
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const std::uint32_t v =
        (static_cast<std::uint32_t>(p[i]) << 16) | (static_cast<std::uint32_t>(p[i + 1]) << 8) | p[i + 2];
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back(kB64[v & 63]);
  }
  if (n - i == 1) {
    const std::uint32_t v = static_cast<std::uint32_t>(p[i]) << 16;
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out += "==";
  } else if (n - i == 2) {
    const std::uint32_t v = (static_cast<std::uint32_t>(p[i]) << 16) | (static_cast<std::uint32_t>(p[i + 1]) << 8);
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

std::uint64_t xorshift(std::uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

}  // namespace

std::string make_ws_key(std::uint64_t& state) {
  unsigned char raw[16];
  for (int i = 0; i < 2; ++i) {
    const std::uint64_t v = xorshift(state);
    std::memcpy(raw + 8 * i, &v, 8);
  }
  return base64(raw, sizeof raw);
}

std::string ws_accept_for(std::string_view key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input(key);
  input += kGuid;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return base64(digest, sizeof digest);
}

}  // namespace chatorbit::bench
