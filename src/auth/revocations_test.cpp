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

}  // namespace
}  // namespace chatorbit::auth
