#include "net/utf8.hpp"

#include <bit>
#include <cstring>

namespace chatorbit::ws {
namespace {

constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;

struct Seq {
  std::uint8_t need;
  std::uint8_t lo;
  std::uint8_t hi;
};

// Advances `st` over [p, end). False as soon as a byte cannot continue a valid string;
// `st` is then unspecified.
bool scan(const unsigned char* p, const unsigned char* const end, Seq& st) {
  while (p < end) {
    if (st.need != 0) {
      const unsigned char b = *p++;
      if (b < st.lo || b > st.hi) return false;
      --st.need;
      st.lo = 0x80;
      st.hi = 0xBF;
      continue;
    }
    // Chat text is mostly ASCII: skip it a word at a time. memcpy keeps the load legal
    // at any alignment and compiles to a single instruction.
    while (end - p >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, sizeof w);
      if ((w & kHighBits) != 0) break;
      p += 8;
    }
    if (p == end) break;
    const unsigned char b = *p++;
    if (b < 0x80) continue;
    if (b < 0xC2) return false;  // a stray continuation byte, or C0/C1 (always overlong)
    if (b < 0xE0) {
      st = {1, 0x80, 0xBF};
    } else if (b < 0xF0) {
      st = {2, static_cast<std::uint8_t>(b == 0xE0 ? 0xA0 : 0x80),  // E0 80..9F: overlong
            static_cast<std::uint8_t>(b == 0xED ? 0x9F : 0xBF)};    // ED A0..BF: surrogates
    } else if (b < 0xF5) {
      st = {3, static_cast<std::uint8_t>(b == 0xF0 ? 0x90 : 0x80),  // F0 80..8F: overlong
            static_cast<std::uint8_t>(b == 0xF4 ? 0x8F : 0xBF)};    // F4 90..: above U+10FFFF
    } else {
      return false;  // F5..FF can only start sequences above U+10FFFF
    }
  }
  return true;
}

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

}  // namespace

bool is_valid_utf8(std::string_view s) {
  Seq st{0, 0x80, 0xBF};
  return scan(bytes(s), bytes(s) + s.size(), st) && st.need == 0;
}

std::size_t utf8_length(std::string_view valid) {
  // Code points = bytes - continuation bytes (10xxxxxx). For a word, a byte is a
  // continuation byte when its bit 7 is set and bit 6 is clear; shifting left by one
  // lines bit 6 up under bit 7 of the same byte.
  const unsigned char* p = bytes(valid);
  const unsigned char* const end = p + valid.size();
  std::size_t continuation = 0;
  for (; end - p >= 8; p += 8) {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    continuation += static_cast<std::size_t>(std::popcount(w & ~(w << 1) & kHighBits));
  }
  for (; p < end; ++p) continuation += (*p & 0xC0) == 0x80 ? 1 : 0;
  return valid.size() - continuation;
}

bool Utf8Validator::feed(std::string_view chunk) {
  if (failed_) return false;
  Seq st{need_, lo_, hi_};
  if (!scan(bytes(chunk), bytes(chunk) + chunk.size(), st)) {
    failed_ = true;
    return false;
  }
  need_ = st.need;
  lo_ = st.lo;
  hi_ = st.hi;
  return true;
}

}  // namespace chatorbit::ws
