#include "chat/account_notifier.hpp"

#include "chat/hub.hpp"
#include "chat/publication.hpp"

namespace chatorbit::chat {

void apply_revocation(const AccountEvent& e, auth::RevocationList& revocations) {
  if (!e.revoke || e.expires_at_s <= 0) return;
  if (!e.jti.empty()) {
    revocations.add(e.jti, e.expires_at_s);
  } else if (e.not_before_s > 0) {
    revocations.add_floor(e.user_id, e.not_before_s, e.expires_at_s);
  }
}

void AccountNotifier::role_changed(const std::string& user_id, const std::string& role) {
  engine_.publish(kControlChannel, std::make_shared<const std::string>(encode_role_changed(user_id, role)));
}

void AccountNotifier::tokens_revoked(const Revocation& r) {
  engine_.publish(kControlChannel, std::make_shared<const std::string>(encode_tokens_revoked(r)));
}

}  // namespace chatorbit::chat
