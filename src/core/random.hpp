#pragma once
// Randomness is injected: ids, salts, secrets and token ids come from a RandomSource
// so tests can make them deterministic.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace chatorbit {

/// Source of random bytes. Implementations are thread-safe.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  /// Fills `out` with random bytes.
  virtual void fill(std::span<unsigned char> out) = 0;

  /// `n` random bytes, hex-encoded (2n characters).
  std::string hex(std::size_t n);
};

/// Cryptographically secure randomness from the operating system (libsodium's randombytes).
class OsRandom final : public RandomSource {
 public:
  void fill(std::span<unsigned char> out) override;
  /// A process-wide instance.
  static OsRandom& instance();
};

/// Deterministic, NOT secure: a counter-based stream for tests.
class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(std::uint64_t seed) : state_(seed) {}
  void fill(std::span<unsigned char> out) override;

 private:
  std::uint64_t state_;
};

/// Lower-case hex encoding of `bytes`.
std::string to_hex(std::span<const unsigned char> bytes);

}  // namespace chatorbit
