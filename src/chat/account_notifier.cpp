#include "chat/account_notifier.hpp"

#include <boost/json/serialize.hpp>

#include "chat/hub.hpp"

namespace chatorbit::chat {

namespace {

void publish(engine::Engine& engine, const boost::json::object& event) {
  engine.publish(kControlChannel, std::make_shared<const std::string>("U\n" + boost::json::serialize(event)));
}

}  // namespace

void AccountNotifier::role_changed(const std::string& user_id, const std::string& role) {
  publish(engine_, {{"action", "role"}, {"user_id", user_id}, {"role", role}});
}

void AccountNotifier::tokens_revoked(const std::string& user_id, const std::string& jti) {
  publish(engine_, {{"action", "revoke"}, {"user_id", user_id}, {"jti", jti}});
}

}  // namespace chatorbit::chat
