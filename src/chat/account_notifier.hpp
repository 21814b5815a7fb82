#pragma once
// AccountEvents over the engine's broker: each event is a publication of kind 'U' on
// the control channel, which every chat node's Hub applies to its own sessions of that
// user (Hub::on_publication).

#include "auth/account_events.hpp"
#include "auth/revocations.hpp"
#include "chat/publication.hpp"
#include "engine/engine.hpp"

namespace chatorbit::chat {

/// Adds a revocation event to a node's RevocationList (a role change: nothing to add).
void apply_revocation(const AccountEvent& event, auth::RevocationList& revocations);

class AccountNotifier final : public auth::AccountEvents {
 public:
  explicit AccountNotifier(engine::Engine& engine) : engine_(engine) {}
  void role_changed(const std::string& user_id, const std::string& role) override;
  void tokens_revoked(const Revocation& revocation) override;

 private:
  engine::Engine& engine_;
};

}  // namespace chatorbit::chat
