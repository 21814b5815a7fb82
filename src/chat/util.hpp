#pragma once
// Small helpers shared by the chat service's source files.

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace chatorbit::chat {

/// A whole non-negative number (a sequence number, a limit), or nullopt.
inline std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

/// A one-element vector. Braced lists must not appear inside co_await expressions:
/// GCC 12 cannot keep an initializer_list's array alive across the suspension.
template <class T>
std::vector<T> one(T v) {
  std::vector<T> out;
  out.push_back(std::move(v));
  return out;
}

}  // namespace chatorbit::chat
