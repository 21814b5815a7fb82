#include "chat/fanout_passes.hpp"

#include <gtest/gtest.h>

namespace chatorbit::chat {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using Duration = FlushPacer::Duration;

// Passes of `writing` each, starting `gap` apart, until the smoothing has settled.
void steady(FlushPacer& pacer, Duration gap, Duration writing, int passes = 40) {
  for (int i = 0; i < passes; ++i) pacer.passed(gap, writing);
}

TEST(FlushPacer, BeforeAnyPassNothingWaits) {
  FlushPacer pacer(milliseconds{20});
  EXPECT_FALSE(pacer.busy());
  EXPECT_EQ(pacer.wait(Duration::zero()), Duration::zero());
}

TEST(FlushPacer, AQuietLoopWritesAtTheEndOfTheTurn) {
  FlushPacer pacer(milliseconds{20});
  steady(pacer, milliseconds{50}, microseconds{300});  // 500 viewers, 20 messages/s
  EXPECT_FALSE(pacer.busy());
  EXPECT_EQ(pacer.wait(Duration::zero()), Duration::zero()) << "due at once after the last pass: still no wait";
}

TEST(FlushPacer, ALoopWritingUnderFourFifthsOfItsTimeDoesNotWait) {
  FlushPacer pacer(milliseconds{20});
  steady(pacer, milliseconds{20}, milliseconds{15});  // 3/4 of the time writing
  EXPECT_FALSE(pacer.busy());
  EXPECT_EQ(pacer.wait(milliseconds{1}), Duration::zero());
}

TEST(FlushPacer, PastFourFifthsPassesAreSpacedToThatShare) {
  FlushPacer pacer(milliseconds{20});
  steady(pacer, milliseconds{9}, milliseconds{8});  // frames arrive faster than passes end
  EXPECT_TRUE(pacer.busy());
  EXPECT_EQ(pacer.spacing(), milliseconds{10}) << "8 ms of writing in every 10";
  EXPECT_EQ(pacer.wait(milliseconds{8}), milliseconds{2}) << "due at the end of a pass: waits for the rest";
  EXPECT_EQ(pacer.wait(milliseconds{10}), Duration::zero());
  // Spaced so, the share settles at four fifths and the loop stays in this mode.
  steady(pacer, milliseconds{10}, milliseconds{8});
  EXPECT_TRUE(pacer.busy());
  EXPECT_EQ(pacer.spacing(), milliseconds{10});
}

TEST(FlushPacer, TheSpacingNeverExceedsTheBound) {
  FlushPacer pacer(milliseconds{20});
  steady(pacer, milliseconds{70}, milliseconds{65});  // saturated: 10,000 viewers
  EXPECT_EQ(pacer.spacing(), milliseconds{20});
  EXPECT_EQ(pacer.wait(Duration::zero()), milliseconds{20});
  EXPECT_EQ(pacer.wait(milliseconds{70}), Duration::zero()) << "a pass longer than the bound: the next at once";
}

TEST(FlushPacer, ABoundOfZeroKeepsEveryPassAtTheEndOfTheTurn) {
  FlushPacer pacer(Duration::zero());
  steady(pacer, milliseconds{10}, milliseconds{10});
  EXPECT_TRUE(pacer.busy());
  EXPECT_EQ(pacer.wait(Duration::zero()), Duration::zero());
}

TEST(FlushPacer, TheLoadIsFollowedDownAsWellAsUp) {
  FlushPacer pacer(milliseconds{20});
  steady(pacer, milliseconds{12}, milliseconds{12});
  ASSERT_TRUE(pacer.busy());
  // The room went quiet: within a few passes the loop writes at once again.
  for (int i = 0; i < 6; ++i) pacer.passed(milliseconds{100}, microseconds{100});
  EXPECT_FALSE(pacer.busy());
  EXPECT_EQ(pacer.wait(Duration::zero()), Duration::zero());
  // One pass the scheduler stretched, after quiet ones, does not make the loop busy.
  pacer.passed(milliseconds{30}, milliseconds{30});
  EXPECT_FALSE(pacer.busy());
}

TEST(FlushPacer, ALongQuietSpellCountsAsOneSecond) {
  FlushPacer pacer(milliseconds{20});
  steady(pacer, milliseconds{10}, milliseconds{10});
  pacer.passed(std::chrono::hours{1}, milliseconds{10});  // the first message after an hour
  EXPECT_FALSE(pacer.busy());
  // A busy room again is followed within a fifth of a second of its passes, not after
  // an hour of them.
  for (int i = 0; i < 20; ++i) pacer.passed(milliseconds{10}, milliseconds{10});
  EXPECT_TRUE(pacer.busy());
}

}  // namespace
}  // namespace chatorbit::chat
