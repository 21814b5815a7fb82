#include "chat/account_notifier.hpp"

#include "chat/hub.hpp"
#include "chat/publication.hpp"

namespace chatorbit::chat {

void AccountNotifier::role_changed(const std::string& user_id, const std::string& role) {
  engine_.publish(kControlChannel, std::make_shared<const std::string>(encode_role_changed(user_id, role)));
}

void AccountNotifier::tokens_revoked(const std::string& user_id, const std::string& jti) {
  engine_.publish(kControlChannel, std::make_shared<const std::string>(encode_tokens_revoked(user_id, jti)));
}

}  // namespace chatorbit::chat
