#include "chat/account_notifier.hpp"

#include <gtest/gtest.h>

#include "chat/hub.hpp"
#include "engine/memory/memory_engine.hpp"

namespace chatorbit::chat {
namespace {

// What a second node does with the announcements of the node that handled a logout or
// a password change: decode each publication and add it to its own RevocationList.
struct SecondNode {
  ManualClock clock;
  engine::MemoryEngine broker{clock};
  auth::RevocationList revocations{clock};
  int received = 0;

  SecondNode() {
    broker.set_subscriber([this](const std::string&, std::shared_ptr<const std::string> payload) {
      const auto d = decode_publication(*payload);
      ASSERT_TRUE(d.publication);
      const auto event = parse_account_event(d.publication->json);
      ASSERT_TRUE(event);
      apply_revocation(*event, revocations);
      ++received;
    });
    broker.subscribe(kControlChannel);
  }
};

auth::Claims token(std::string user, std::int64_t iat, std::string jti) {
  auth::Claims c;
  c.user_id = std::move(user);
  c.iat = iat;
  c.jti = std::move(jti);
  return c;
}

TEST(AccountNotifier, ALogoutOnOneNodeRevokesThatTokenOnAnother) {
  SecondNode node;
  AccountNotifier notifier(node.broker);
  const auto now = node.clock.unix_seconds();
  notifier.tokens_revoked({"u1", "jti-1", now + 3600, 0});
  EXPECT_EQ(node.received, 1);
  EXPECT_TRUE(node.revocations.is_revoked(token("u1", now, "jti-1")));
  EXPECT_FALSE(node.revocations.is_revoked(token("u1", now, "jti-2")));
}

TEST(AccountNotifier, APasswordChangeOnOneNodeRevokesOlderTokensOnAnother) {
  SecondNode node;
  AccountNotifier notifier(node.broker);
  const auto now = node.clock.unix_seconds();
  notifier.tokens_revoked({"u1", "", now + 86400, now + 1});
  EXPECT_TRUE(node.revocations.is_revoked(token("u1", now, "a")));
  EXPECT_FALSE(node.revocations.is_revoked(token("u1", now + 1, "b")));
  EXPECT_EQ(node.revocations.floor_of("u1"), now + 1);
}

TEST(AccountNotifier, ARoleChangeRevokesNothing) {
  SecondNode node;
  AccountNotifier notifier(node.broker);
  notifier.role_changed("u1", "user");
  EXPECT_EQ(node.received, 1);
  EXPECT_EQ(node.revocations.size(), 0u);
}

}  // namespace
}  // namespace chatorbit::chat
