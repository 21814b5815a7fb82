#pragma once
// Changes to an account that live connections must feel at once, not when their token
// expires: a role change (a demoted moderator loses moderator powers on the WebSocket it
// has open), and revoked tokens (logout closes that token's connections, a password
// change closes all of the user's). The auth and user services announce them here; the
// chat side (chat/account_notifier.hpp) carries them to every chat node.

#include <cstdint>
#include <string>

namespace chatorbit::auth {

/// Thread-safe; never blocks (announcements are fire-and-forget: the durable state is
/// the store's, and every node reads it again at the next handshake).
class AccountEvents {
 public:
  virtual ~AccountEvents() = default;
  /// `user_id` now has `role` ("user", "moderator" or "admin").
  virtual void role_changed(const std::string& user_id, const std::string& role) = 0;
  /// What a revocation says, as RevocationList holds it: every node adds it to its own
  /// list and closes the sessions it covers.
  struct Revocation {
    std::string user_id;
    std::string jti;                ///< logout: that token; empty: every token of the user
    std::int64_t expires_at_s = 0;  ///< until when the entry matters (the tokens' exp)
    std::int64_t not_before_s = 0;  ///< jti empty: tokens issued before this are revoked
  };
  virtual void tokens_revoked(const Revocation& revocation) = 0;
};

}  // namespace chatorbit::auth
