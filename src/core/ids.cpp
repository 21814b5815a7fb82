#include "core/ids.hpp"

#include <array>

namespace chatorbit {

bool is_object_id(std::string_view s) {
  if (s.size() != 24) return false;
  for (char c : s) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

ObjectIdGenerator::ObjectIdGenerator(const Clock& clock, RandomSource& random) : clock_(clock) {
  random.fill(process_unique_);
  unsigned char c[3];
  random.fill(c);
  counter_ = (std::uint32_t{c[0]} << 16) | (std::uint32_t{c[1]} << 8) | c[2];
}

std::string ObjectIdGenerator::next() {
  const auto secs = static_cast<std::uint32_t>(clock_.unix_seconds());
  const std::uint32_t count = counter_.fetch_add(1, std::memory_order_relaxed) & 0xffffff;
  std::array<unsigned char, 12> b{};
  b[0] = static_cast<unsigned char>(secs >> 24);
  b[1] = static_cast<unsigned char>(secs >> 16);
  b[2] = static_cast<unsigned char>(secs >> 8);
  b[3] = static_cast<unsigned char>(secs);
  for (int i = 0; i < 5; ++i) b[4 + i] = process_unique_[i];
  b[9] = static_cast<unsigned char>(count >> 16);
  b[10] = static_cast<unsigned char>(count >> 8);
  b[11] = static_cast<unsigned char>(count);
  return to_hex(b);
}

}  // namespace chatorbit
