#include "auth/revocations.hpp"

#include <gtest/gtest.h>

namespace chatorbit::auth {
namespace {

using namespace std::chrono_literals;

TEST(RevocationList, RevokedUntilWellPastExpiry) {
  ManualClock clock;
  RevocationList list(clock);
  const auto now = clock.unix_seconds();
  EXPECT_FALSE(list.is_revoked("j1"));
  list.add("j1", now + 100);
  EXPECT_TRUE(list.is_revoked("j1"));
  EXPECT_FALSE(list.is_revoked("j2"));
  // Pruning happens on add, at most once a minute, and keeps a margin beyond exp.
  clock.advance(200s);
  list.add("j2", clock.unix_seconds() + 100);
  EXPECT_TRUE(list.is_revoked("j1")) << "within the 5-minute margin";
  clock.advance(400s);
  list.add("j3", clock.unix_seconds() + 100);
  EXPECT_FALSE(list.is_revoked("j1"));
  EXPECT_TRUE(list.is_revoked("j3"));
}

Claims token(std::string user, std::int64_t iat, std::string jti = "j") {
  Claims c;
  c.user_id = std::move(user);
  c.iat = iat;
  c.jti = std::move(jti);
  return c;
}

TEST(RevocationList, FloorRevokesOnlyEarlierTokensOfThatUser) {
  ManualClock clock;
  RevocationList list(clock);
  const auto now = clock.unix_seconds();
  EXPECT_EQ(list.floor_of("u1"), 0);
  list.add_floor("u1", now + 1, now + 86400);
  EXPECT_EQ(list.floor_of("u1"), now + 1);
  EXPECT_TRUE(list.is_revoked(token("u1", now)));
  EXPECT_TRUE(list.is_revoked(token("u1", 0))) << "a token without iat predates every floor";
  EXPECT_FALSE(list.is_revoked(token("u1", now + 1)));
  EXPECT_FALSE(list.is_revoked(token("u2", now)));
  // A floor never goes down, even if an older change arrives late.
  list.add_floor("u1", now - 50, now + 100);
  EXPECT_EQ(list.floor_of("u1"), now + 1);
  // A revoked jti is refused whatever its iat.
  list.add("gone", now + 100);
  EXPECT_TRUE(list.is_revoked(token("u2", now + 5, "gone")));
}

TEST(RevocationList, FloorsArePrunedAfterTheTokensTheyCoverExpired) {
  ManualClock clock;
  RevocationList list(clock);
  const auto now = clock.unix_seconds();
  list.add_floor("u1", now, now + 100);
  clock.advance(500s);
  list.add("other", clock.unix_seconds() + 10);  // pruning runs on writes
  EXPECT_EQ(list.floor_of("u1"), 0);
  EXPECT_EQ(list.size(), 1u);
}

}  // namespace
}  // namespace chatorbit::auth
