#pragma once
// Tokens that must no longer be accepted although their signature and exp are fine:
// one token revoked by logout (by its jti), or every token of a user issued before a
// password change (a per-user floor on the issue time, iat). Checked on every
// authenticated request and WebSocket handshake, so held in memory for a lock-light,
// synchronous lookup.
//
// This is a node's cache. The store keeps the durable record and the engine the shared
// copy (with TTL); the cache is filled from the engine at start and whenever the broker
// is back (auth/shared_revocations.hpp), and in between by the account events every node
// receives (chat::apply_revocation). Thread-safe.

#include <cstdint>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/jwt.hpp"
#include "core/clock.hpp"

namespace chatorbit::auth {

class RevocationList {
 public:
  explicit RevocationList(const Clock& clock) : clock_(clock) {}

  /// Marks `jti` revoked until `expires_at_s` (the token's exp plus the verifier's
  /// leeway; after that the token is dead anyway and the entry is dropped). Of two
  /// expiries for one jti the later is kept.
  void add(std::string jti, std::int64_t expires_at_s);
  /// Revokes every token of `user_id` whose iat is before `not_before_s`, until
  /// `expires_at_s` (when all of them have expired). Floors only rise: of two, the higher
  /// not_before_s and the later expiry are kept, as the engine does.
  void add_floor(std::string user_id, std::int64_t not_before_s, std::int64_t expires_at_s);
  /// The earliest iat a token of `user_id` may carry (0: no floor). Tokens issued for the
  /// user must not carry an earlier one, or they would be born revoked.
  std::int64_t floor_of(std::string_view user_id) const;
  /// True if `jti` was revoked and the revocation is still in force.
  bool is_revoked(std::string_view jti) const;
  /// True if the token is revoked by its jti or by its user's floor. A token without iat
  /// (the original service's) counts as issued at 0: any floor revokes it.
  bool is_revoked(const Claims& claims) const;
  /// Number of entries held (jti revocations and floors, including expired ones not yet
  /// pruned).
  std::size_t size() const;

 private:
  void maybe_prune_locked(std::int64_t now_s);

  const Clock& clock_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::int64_t> revoked_;  ///< jti -> exp
  struct Floor {
    std::int64_t not_before_s;
    std::int64_t expires_at_s;
  };
  std::unordered_map<std::string, Floor> floors_;  ///< user id -> floor
  std::int64_t next_prune_s_ = 0;
};

}  // namespace chatorbit::auth
