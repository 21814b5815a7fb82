#include "auth/login_throttle.hpp"

#include <gtest/gtest.h>

#include "core/run_blocking.hpp"
#include "engine/memory/memory_engine.hpp"

namespace chatorbit::auth {
namespace {

using namespace std::chrono_literals;

TEST(LoginThrottle, BlocksAfterLimitUntilOldestFailureAgesOut) {
  ManualClock clock;
  LoginThrottle t(clock, 3, 60s);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(t.blocked_for("a")) << i;
    t.record_failure("a");
    clock.advance(10s);
  }
  // Failures at 0, 10, 20; now 30: blocked until the one at 0 leaves at 60.
  const auto wait = t.blocked_for("a");
  ASSERT_TRUE(wait);
  EXPECT_EQ(*wait, 30s);
  EXPECT_FALSE(t.blocked_for("b")) << "keys are independent";
  clock.advance(29s);
  EXPECT_TRUE(t.blocked_for("a"));
  clock.advance(1s);
  EXPECT_FALSE(t.blocked_for("a"));
}

TEST(LoginThrottle, WithADelayCapFailuresPastTheLimitWaitLongerEachTimeButNeverLocked) {
  ManualClock clock;
  LoginThrottle t(clock, 3, 900s, 8s);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(t.blocked_for("acct")) << i;
    t.record_failure("acct");
  }
  // Past the limit: 1 s after the latest failure, then 2, 4, 8, 8 (the cap).
  for (auto expected : {1s, 2s, 4s, 8s, 8s}) {
    const auto wait = t.blocked_for("acct");
    ASSERT_TRUE(wait);
    EXPECT_EQ(*wait, expected);
    clock.advance(expected - 1s);
    EXPECT_TRUE(t.blocked_for("acct"));
    clock.advance(1s);
    EXPECT_FALSE(t.blocked_for("acct")) << "a delay, not a lock";
    t.record_failure("acct");
  }
  t.reset("acct");
  EXPECT_FALSE(t.blocked_for("acct"));
}

TEST(LoginThrottle, ResetForgetsFailures) {
  ManualClock clock;
  LoginThrottle t(clock, 2, 60s);
  t.record_failure("a");
  t.record_failure("a");
  EXPECT_TRUE(t.blocked_for("a"));
  t.reset("a");
  EXPECT_FALSE(t.blocked_for("a"));
}

TEST(LoginThrottle, SweepKeepsRecentFailures) {
  ManualClock clock;
  LoginThrottle t(clock, 1, 60s);
  t.record_failure("victim");
  for (int i = 0; i < 5000; ++i) t.record_failure("spray-" + std::to_string(i));
  EXPECT_TRUE(t.blocked_for("victim"));
}

TEST(LoginThrottle, FailuresOnOneNodeCountOnAnotherThroughTheSharedEngine) {
  ManualClock clock;
  engine::MemoryEngine shared(clock);
  LoginThrottle a(clock, 3, 60s, 0s, &shared, "pair:");
  LoginThrottle b(clock, 3, 60s, 0s, &shared, "pair:");
  run_blocking(a.fail("k"));
  run_blocking(b.fail("k"));
  EXPECT_FALSE(run_blocking(a.check("k")));
  clock.advance(10s);
  run_blocking(a.fail("k"));
  EXPECT_FALSE(b.blocked_for("k")) << "node B alone saw one failure";
  const auto wait = run_blocking(b.check("k"));
  ASSERT_TRUE(wait) << "three failures over two nodes";
  EXPECT_EQ(*wait, 50s) << "until the first, at 0, leaves the window at 60";
  run_blocking(b.clear("k"));
  EXPECT_FALSE(run_blocking(a.check("k"))) << "a success on B clears the count everywhere";
  LoginThrottle other(clock, 3, 60s, 0s, &shared, "account:");
  run_blocking(a.fail("k"));
  run_blocking(a.fail("k"));
  run_blocking(a.fail("k"));
  EXPECT_FALSE(run_blocking(other.check("k"))) << "scopes are apart";
}

}  // namespace
}  // namespace chatorbit::auth
