#include "auth/password.hpp"

#include <crypt.h>
#include <sodium.h>

#include <charconv>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace chatorbit::auth {

namespace {

constexpr std::string_view kArgon2idPrefix = "$argon2id$";
constexpr std::string_view kArgon2iPrefix = "$argon2i$";
constexpr std::size_t kBcryptHashLen = 60;  // "$2b$NN$" + 22 salt + 31 hash characters.
constexpr std::size_t kBcryptMaxKeyBytes = 72;
constexpr std::uint32_t kArgon2Version = 0x13;  // v=19, the only version libsodium produces.

bool sodium_ready() {
  // C++ guarantees a function-local static is initialised exactly once even under
  // concurrent first calls; sodium_init() itself is also idempotent.
  static const bool ok = sodium_init() >= 0;
  return ok;
}

bool is_bcrypt(std::string_view h) { return h.starts_with("$2a$") || h.starts_with("$2b$") || h.starts_with("$2y$"); }

bool is_bcrypt_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '/';
}

// Validated here rather than left to libcrypt so that garbage never reaches C code, and a
// cost above 31 (which libcrypt would reject anyway) fails fast.
bool is_wellformed_bcrypt(std::string_view h) {
  if (h.size() != kBcryptHashLen || !is_bcrypt(h)) return false;
  if (h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' || h[6] != '$') return false;
  const int cost = (h[4] - '0') * 10 + (h[5] - '0');
  if (cost < 4 || cost > 31) return false;
  for (char c : h.substr(7)) {
    if (!is_bcrypt_char(c)) return false;
  }
  return true;
}

bool verify_bcrypt(std::string_view password, std::string_view stored) {
  if (!is_wellformed_bcrypt(stored)) return false;
  // crypt() takes a C string, so a NUL would silently cut the password short.
  if (password.find('\0') != std::string_view::npos) return false;
  // bcrypt only ever reads 72 key bytes; cutting here gives the same result while keeping
  // long input under libcrypt's own passphrase limit, as Go's CompareHashAndPassword does.
  std::string phrase(password.substr(0, kBcryptMaxKeyBytes));
  const std::string setting(stored);

  // crypt_data is ~32 KiB: too big for comfortable stack use. make_unique value-initialises
  // (zeroes) it, which crypt_rn requires before first use.
  auto data = std::make_unique<crypt_data>();
  const char* out = crypt_rn(phrase.c_str(), setting.c_str(), data.get(), sizeof(crypt_data));
  bool ok =
      out != nullptr && std::strlen(out) == kBcryptHashLen && sodium_memcmp(out, stored.data(), kBcryptHashLen) == 0;
  sodium_memzero(data.get(), sizeof(crypt_data));
  sodium_memzero(phrase.data(), phrase.size());
  return ok;
}

bool verify_argon2(std::string_view password, std::string_view stored) {
  if (!sodium_ready()) return false;
  if (stored.find('\0') != std::string_view::npos) return false;
  const std::string encoded(stored);  // libsodium wants a NUL-terminated string.
  static constexpr char kEmpty[] = "";
  const char* pw = password.data() != nullptr ? password.data() : kEmpty;
  return crypto_pwhash_str_verify(encoded.c_str(), pw, password.size()) == 0;
}

// Reads "<key><u32>" at the front of `s`, advancing past it.
bool take_param(std::string_view& s, std::string_view key, std::uint32_t& out) {
  if (!s.starts_with(key)) return false;
  s.remove_prefix(key.size());
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc{} || ptr == s.data()) return false;
  s.remove_prefix(static_cast<std::size_t>(ptr - s.data()));
  return true;
}

}  // namespace

std::string hash_password(std::string_view password, const Argon2Params& p) {
  if (!sodium_ready()) throw std::runtime_error("libsodium failed to initialise");
  char out[crypto_pwhash_STRBYTES];
  static constexpr char kEmpty[] = "";
  const char* pw = password.data() != nullptr ? password.data() : kEmpty;
  if (crypto_pwhash_str_alg(out, pw, password.size(), p.opslimit, p.memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw std::runtime_error("Argon2id hashing failed (out of memory or parameters out of range)");
  }
  return std::string(out);
}

bool verify_password(std::string_view password, std::string_view stored_hash) noexcept {
  try {
    if (stored_hash.starts_with(kArgon2idPrefix) || stored_hash.starts_with(kArgon2iPrefix)) {
      return verify_argon2(password, stored_hash);
    }
    if (is_bcrypt(stored_hash)) return verify_bcrypt(password, stored_hash);
    return false;
  } catch (...) {
    // Only allocation can fail above; refusing the login is the safe answer.
    return false;
  }
}

bool needs_rehash(std::string_view stored_hash, const Argon2Params& p) noexcept {
  try {
    if (!stored_hash.starts_with(kArgon2idPrefix)) return true;
    if (!sodium_ready() || stored_hash.find('\0') != std::string_view::npos) return true;
    const std::string encoded(stored_hash);
    const int rc = crypto_pwhash_str_needs_rehash(encoded.c_str(), p.opslimit, p.memlimit);
    if (rc == 0) return false;
    if (rc < 0) return true;  // Not decodable: it can never verify, so replace it.
    // libsodium says "different"; only a weaker hash is worth the cost of rehashing.
    std::string_view s = stored_hash.substr(kArgon2idPrefix.size());
    std::uint32_t version = 0, m = 0, t = 0, lanes = 0;
    if (!take_param(s, "v=", version) || !take_param(s, "$m=", m) || !take_param(s, ",t=", t) ||
        !take_param(s, ",p=", lanes)) {
      return true;
    }
    return version != kArgon2Version || m < p.memlimit / 1024 || t < p.opslimit;
  } catch (...) {
    return true;
  }
}

}  // namespace chatorbit::auth
