#pragma once
// Tokens revoked by logout, checked on every authenticated request. Kept in memory
// for a lock-light lookup and written through to the store so a restart does not
// bring revoked tokens back to life. Thread-safe.

#include <cstdint>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/clock.hpp"

namespace chatorbit::auth {

class RevocationList {
 public:
  explicit RevocationList(const Clock& clock) : clock_(clock) {}

  /// Marks `jti` revoked until `expires_at_s` (the token's own exp; after that the token
  /// is dead anyway and the entry is dropped).
  void add(std::string jti, std::int64_t expires_at_s);
  /// True if `jti` was revoked and the revocation is still in force.
  bool is_revoked(std::string_view jti) const;
  /// Number of revocations held (including expired ones not yet pruned).
  std::size_t size() const;

 private:
  void prune_locked(std::int64_t now_s);

  const Clock& clock_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::int64_t> revoked_;
  std::int64_t next_prune_s_ = 0;
};

}  // namespace chatorbit::auth
