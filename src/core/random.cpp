#include "core/random.hpp"

#include <sodium.h>

#include <stdexcept>
#include <vector>

namespace chatorbit {

std::string to_hex(std::span<const unsigned char> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0f]);
  }
  return out;
}

std::string RandomSource::hex(std::size_t n) {
  std::vector<unsigned char> buf(n);
  fill(buf);
  return to_hex(buf);
}

OsRandom& OsRandom::instance() {
  static OsRandom source = [] {
    if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
    return OsRandom{};
  }();
  return source;
}

void OsRandom::fill(std::span<unsigned char> out) { randombytes_buf(out.data(), out.size()); }

void SeededRandom::fill(std::span<unsigned char> out) {
  // splitmix64: good enough spread for deterministic tests, never for secrets.
  std::size_t i = 0;
  while (i < out.size()) {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (int k = 0; k < 8 && i < out.size(); ++k, ++i) out[i] = static_cast<unsigned char>(z >> (8 * k));
  }
}

}  // namespace chatorbit
