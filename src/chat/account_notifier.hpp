#pragma once
// AccountEvents over the engine's broker: each event is a publication of kind 'U' on
// the control channel, which every chat node's Hub applies to its own sessions of that
// user (Hub::on_publication).

#include "auth/account_events.hpp"
#include "engine/engine.hpp"

namespace chatorbit::chat {

class AccountNotifier final : public auth::AccountEvents {
 public:
  explicit AccountNotifier(engine::Engine& engine) : engine_(engine) {}
  void role_changed(const std::string& user_id, const std::string& role) override;
  void tokens_revoked(const std::string& user_id, const std::string& jti) override;

 private:
  engine::Engine& engine_;
};

}  // namespace chatorbit::chat
