#pragma once
// Password hashing: Argon2id (libsodium) for new hashes; bcrypt (libcrypt) accepted for
// verification only, so accounts migrated from the Go service keep working and are upgraded
// to Argon2id at their next successful login (see needs_rehash).
//
// All functions are thread-safe: they share no mutable state (libsodium is initialised once,
// thread-safely, on first use).

#include <cstddef>
#include <string>
#include <string_view>

namespace chatorbit::auth {

/// Argon2id cost. The defaults are the OWASP minimum (19 MiB, 2 passes); libsodium always
/// uses one lane, so p=1 in the encoded hash.
struct Argon2Params {
  unsigned long long opslimit = 2;
  std::size_t memlimit = 19 * 1024 * 1024;
};

/// Hashes `password` with Argon2id and a fresh random salt, returning the self-describing
/// encoded string (e.g. "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>") to store as-is.
/// Any bytes are allowed in `password`, including NUL. Throws std::runtime_error only if
/// libsodium fails: out of memory, or `p` outside libsodium's accepted range.
std::string hash_password(std::string_view password, const Argon2Params& p = {});

/// True iff `password` matches `stored_hash`. Accepts "$argon2id$" and "$argon2i$" (libsodium)
/// and bcrypt "$2a$", "$2b$", "$2y$" (libcrypt; compared in constant time). Anything else,
/// including malformed hashes, unsupported schemes (e.g. "$2x$") and, for bcrypt, passwords
/// containing NUL bytes, yields false. As in every bcrypt implementation (the Go one
/// included), only the first 72 bytes of a password matter for bcrypt hashes.
/// Never throws; out of memory also yields false.
bool verify_password(std::string_view password, std::string_view stored_hash) noexcept;

/// True if `stored_hash` should be replaced by hash_password(password, p) after a successful
/// verify_password: it is bcrypt, Argon2i, or Argon2id with fewer passes or less memory than
/// `p` (hashes stronger than `p` are left alone). Also true for anything unrecognised or
/// malformed, as such a hash can never be kept. Never throws.
bool needs_rehash(std::string_view stored_hash, const Argon2Params& p = {}) noexcept;

}  // namespace chatorbit::auth
