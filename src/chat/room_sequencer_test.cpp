#include "chat/room_sequencer.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace chatorbit::chat {
namespace {

using namespace std::chrono_literals;
using Sequencer = RoomSequencer<std::uint64_t>;  // the item is its own seq, for the checks
using Clock = Sequencer::Clock;

class RoomSequencerTest : public ::testing::Test {
 protected:
  static constexpr auto kWait = 300ms;
  Sequencer seq{kWait};
  Clock::time_point t0 = Clock::now();
  Sequencer::Released out;

  std::vector<std::uint64_t> offer(std::uint64_t n, Clock::duration at) {
    out.clear();
    seq.offer("r", n, std::uint64_t{n}, t0 + at, out);
    return out.ready;
  }
  std::vector<std::uint64_t> expire(Clock::duration at) {
    out.clear();
    seq.expire(t0 + at, out);
    return out.ready;
  }
  /// Brings room "r" to a known position: 1 arrives and waits out the start.
  void start_at_one() {
    seq.follow("r");
    ASSERT_EQ(offer(1, 0ms), std::vector<std::uint64_t>{1});
  }
};

using V = std::vector<std::uint64_t>;

TEST_F(RoomSequencerTest, ARoomNewlyFollowedHoldsItsFirstArrivalsForTheWaitThenReleasesThemInOrder) {
  seq.follow("r");
  EXPECT_EQ(offer(7, 0ms), V{});
  EXPECT_EQ(offer(5, 10ms), V{}) << "published before 7 by another node, arrived after it";
  EXPECT_EQ(offer(6, 20ms), V{});
  EXPECT_EQ(seq.next_deadline(), t0 + kWait) << "the wait counts from the first arrival";
  EXPECT_EQ(expire(kWait - 1ms), V{});
  EXPECT_EQ(expire(kWait), (V{5, 6, 7}));
  EXPECT_EQ(out.skipped, 0u) << "nothing was known to be missing";
  EXPECT_EQ(offer(8, kWait + 1ms), V{8}) << "from now on, in-order arrivals pass at once";
}

TEST_F(RoomSequencerTest, ANewRoomsFirstMessageNeedsNoWait) {
  seq.follow("r");
  EXPECT_EQ(offer(2, 0ms), V{}) << "another node's 2 got here first";
  EXPECT_EQ(offer(1, 1ms), (V{1, 2})) << "no number comes before 1";
  EXPECT_EQ(offer(3, 2ms), V{3});
  EXPECT_EQ(seq.next_deadline(), std::nullopt);
}

TEST_F(RoomSequencerTest, InOrderArrivalsPassAtOnce) {
  start_at_one();
  for (std::uint64_t n = 2; n < 100; ++n) EXPECT_EQ(offer(n, kWait), V{n});
  EXPECT_EQ(seq.waiting(), 0u);
  EXPECT_EQ(seq.next_deadline(), std::nullopt);
}

TEST_F(RoomSequencerTest, AnEarlyArrivalWaitsForTheOnesBeforeIt) {
  start_at_one();
  EXPECT_EQ(offer(3, kWait + 1ms), V{});
  EXPECT_EQ(offer(4, kWait + 2ms), V{});
  EXPECT_EQ(offer(2, kWait + 3ms), (V{2, 3, 4}));
  EXPECT_EQ(out.skipped, 0u);
  EXPECT_EQ(seq.waiting(), 0u);
}

TEST_F(RoomSequencerTest, AGapIsSkippedAndCountedAfterTheWait) {
  start_at_one();
  const auto at = kWait + 10ms;
  offer(4, at);  // 2 and 3 were reserved by a node that died
  offer(5, at + 5ms);
  EXPECT_EQ(seq.next_deadline(), t0 + at + kWait);
  EXPECT_EQ(expire(at + kWait - 1ms), V{});
  EXPECT_EQ(expire(at + kWait), (V{4, 5}));
  EXPECT_EQ(out.skipped, 2u);
  EXPECT_EQ(offer(6, at + kWait), V{6});
}

TEST_F(RoomSequencerTest, APublicationAfterItsNumberWasPassedIsDroppedAsLate) {
  start_at_one();
  offer(3, kWait);
  expire(2 * kWait);  // 2 given up
  EXPECT_EQ(offer(2, 2 * kWait + 1ms), V{});
  EXPECT_EQ(out.late, 1u);
  EXPECT_EQ(offer(3, 2 * kWait + 2ms), V{}) << "a second copy of a number is late too";
  EXPECT_EQ(out.late, 1u);
  EXPECT_EQ(offer(4, 2 * kWait + 3ms), V{4});
}

TEST_F(RoomSequencerTest, NoPublicationWaitsLongerThanTheWaitEvenBehindSeveralGaps) {
  start_at_one();
  const auto at = kWait + 10ms;
  offer(6, at);         // waits for 2..5
  offer(3, at + 50ms);  // waits for 2; arrived later than 6
  // At 6's deadline both gaps are given up, though 3 has not waited its full wait.
  EXPECT_EQ(expire(at + kWait), (V{3, 6}));
  EXPECT_EQ(out.skipped, 1u + 2u);
}

TEST_F(RoomSequencerTest, TooManyHeldGiveUpTheOldestGapAtOnce) {
  Sequencer small{kWait, 3};
  small.follow("r");
  out.clear();
  small.offer("r", 1, 1, t0, out);
  small.expire(t0 + kWait, out);
  out.clear();
  for (std::uint64_t n = 3; n <= 6; ++n) small.offer("r", n, std::uint64_t{n}, t0 + kWait, out);
  EXPECT_EQ(out.ready, (V{3, 4, 5, 6})) << "four held, over the cap of three";
  EXPECT_EQ(out.skipped, 1u);
}

TEST_F(RoomSequencerTest, RoomsAreOrderedIndependently) {
  seq.follow("a");
  seq.follow("b");
  out.clear();
  seq.offer("a", 1, 1, t0, out);
  seq.offer("b", 10, 10, t0, out);
  seq.expire(t0 + kWait, out);
  std::sort(out.ready.begin(), out.ready.end());  // rooms are expired in no particular order
  EXPECT_EQ(out.ready, (V{1, 10}));
  out.clear();
  seq.offer("a", 3, 3, t0 + kWait, out);  // a waits for 2
  seq.offer("b", 11, 11, t0 + kWait, out);
  EXPECT_EQ(out.ready, V{11}) << "a gap in one room holds nothing of another";
}

TEST_F(RoomSequencerTest, UnnumberedPublicationsKeepTheirPlaceAmongWaitingMessages) {
  start_at_one();
  constexpr std::uint64_t kDelete = 1000;  // e.g. the deletion of message 3
  out.clear();
  seq.offer_unnumbered("r", 999, out);
  EXPECT_EQ(out.ready, V{999}) << "nothing waits: it passes at once";
  offer(3, kWait);  // waits for 2
  out.clear();
  seq.offer_unnumbered("r", std::uint64_t{kDelete}, out);
  EXPECT_EQ(out.ready, V{}) << "it arrived after 3, so it goes after 3";
  offer(5, kWait + 1ms);  // waits for 4; arrived after the deletion
  EXPECT_EQ(offer(2, kWait + 2ms), (V{2, 3, kDelete}));
  EXPECT_EQ(offer(4, kWait + 3ms), (V{4, 5}));
}

TEST_F(RoomSequencerTest, UnnumberedPublicationsHeldBehindAGapAreReleasedWhenItIsGivenUp) {
  start_at_one();
  offer(3, kWait);
  out.clear();
  seq.offer_unnumbered("r", 1000, out);
  EXPECT_EQ(expire(2 * kWait), (V{3, 1000}));
}

TEST_F(RoomSequencerTest, ARoomNotFollowedPassesEverythingThrough) {
  EXPECT_EQ(offer(9, 0ms), V{9});
  EXPECT_EQ(offer(3, 0ms), V{3});
  seq.follow("r");
  offer(4, 1ms);
  seq.forget("r");
  EXPECT_FALSE(seq.following("r"));
  EXPECT_EQ(seq.waiting(), 0u) << "forgetting a room drops what waited for it";
}

TEST_F(RoomSequencerTest, AGapDueIsLookedUpOnceAndGivenUpOnlyWhenTheLookUpIsOver) {
  start_at_one();
  EXPECT_EQ(offer(4, 10ms), V{});  // 2 and 3 missing
  EXPECT_TRUE(seq.fetch_due(t0 + 10ms + kWait - 1ms).empty()) << "not due yet";
  const auto due = seq.fetch_due(t0 + 10ms + kWait);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].room, "r");
  EXPECT_EQ(due[0].missing, (V{2, 3}));
  EXPECT_TRUE(seq.fetch_due(t0 + 10ms + kWait).empty()) << "once";
  EXPECT_EQ(expire(10ms + kWait), V{}) << "held while it is looked up";
  EXPECT_EQ(seq.next_deadline(), t0 + 10ms + 2 * kWait) << "at most one more wait";
  EXPECT_EQ(offer(2, 10ms + kWait + 5ms), V{2}) << "the store had 2";
  seq.fetched("r");
  EXPECT_EQ(expire(10ms + kWait + 6ms), V{4}) << "3 was not found: given up now";
  EXPECT_EQ(out.skipped, 1u);
}

TEST_F(RoomSequencerTest, ALookUpAsksForEveryNumberMissingBeforeTheHighestHeld) {
  start_at_one();
  for (std::uint64_t n : {3, 5, 6, 9}) EXPECT_EQ(offer(n, 0ms), V{});
  const auto due = seq.fetch_due(t0 + kWait);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].missing, (V{2, 4, 7, 8})) << "not only the first gap: each would wait its own turn";
}

TEST_F(RoomSequencerTest, ALookUpThatNeverEndsHoldsTheRoomOneMoreWaitAtMost) {
  start_at_one();
  EXPECT_EQ(offer(3, 0ms), V{});
  ASSERT_EQ(seq.fetch_due(t0 + kWait).size(), 1u);
  EXPECT_EQ(expire(2 * kWait - 1ms), V{});
  EXPECT_EQ(expire(2 * kWait), V{3});
}

}  // namespace
}  // namespace chatorbit::chat
