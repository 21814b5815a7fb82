#include "chat/replay.hpp"

#include <gtest/gtest.h>

namespace chatorbit::chat {
namespace {

using namespace std::chrono_literals;
constexpr std::int64_t kNow = 1'000'000'000'000;
constexpr auto kRecent = 1s;

/// A history read: seqs newest first, each `age` old.
std::vector<store::Message> read(std::vector<std::uint64_t> seqs, std::chrono::nanoseconds age = 10ms) {
  std::vector<store::Message> out;
  for (auto s : seqs) {
    store::Message m;
    m.seq = s;
    m.timestamp_ns = kNow - age.count();
    out.push_back(m);
  }
  return out;
}

TEST(Replay, AContiguousReadHasNoHole) {
  EXPECT_FALSE(replay_has_recent_hole(read({9, 8, 7, 6}), 200, 5, kNow, kRecent));
  EXPECT_FALSE(replay_has_recent_hole(read({}), 200, 5, kNow, kRecent));
  EXPECT_FALSE(replay_has_recent_hole(read({5, 4}), 200, 5, kNow, kRecent)) << "nothing above after_seq";
}

TEST(Replay, AFreshHoleBetweenTwoMessagesIsOne) {
  EXPECT_TRUE(replay_has_recent_hole(read({9, 7, 6}), 200, 5, kNow, kRecent)) << "8 may be on its way";
}

TEST(Replay, AFreshHoleRightAboveTheSessionsLastSeqIsOne) {
  EXPECT_TRUE(replay_has_recent_hole(read({8, 7}), 200, 5, kNow, kRecent)) << "6 may be on its way";
  EXPECT_TRUE(replay_has_recent_hole(read({8, 7, 5, 4}), 3, 5, kNow, kRecent))
      << "the read reached back to 5 although it was full";
}

TEST(Replay, OldHolesAreDeletedMessagesOrNumbersGivenUp) {
  EXPECT_FALSE(replay_has_recent_hole(read({9, 7, 6}, 5s), 200, 5, kNow, kRecent));
}

TEST(Replay, BelowAReadCutAtItsLimitNothingIsKnown) {
  EXPECT_FALSE(replay_has_recent_hole(read({60, 59, 58}), 3, 5, kNow, kRecent));
  EXPECT_TRUE(replay_has_recent_hole(read({60, 58, 57}), 3, 5, kNow, kRecent)) << "59 is inside what was read";
}

}  // namespace
}  // namespace chatorbit::chat
