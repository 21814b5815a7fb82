#include "chat/resend_window.hpp"

#include <gtest/gtest.h>

#include <string>

namespace chatorbit::chat {
namespace {

TEST(ResendWindow, ANewCidIsNotAResendUnlessTheClientSaysSo) {
  Session s;
  EXPECT_FALSE(note_post(s, "c1", false));
  EXPECT_TRUE(note_post(s, "c2", true)) << "marked: sent before, on an earlier connection";
  EXPECT_FALSE(note_post(s, "", true)) << "a post without a cid is never looked up";
}

TEST(ResendWindow, ACidSentBeforeOnTheConnectionMayBeAResendUntilItLeavesTheRing) {
  Session s;
  EXPECT_FALSE(note_post(s, "x", false));
  EXPECT_TRUE(note_post(s, "x", false)) << "sent again on the same connection, unmarked";
  // kRecentCids - 1 newer cids fill the ring; one more pushes "x" out.
  for (std::size_t i = 0; i < kRecentCids; ++i) EXPECT_FALSE(note_post(s, "n" + std::to_string(i), false)) << i;
  EXPECT_FALSE(note_post(s, "x", false)) << "too old to be remembered: the store's refusal is what finds it";
  EXPECT_TRUE(note_post(s, "n63", false)) << "the newest are still remembered";
  EXPECT_EQ(s.recent_cids.size(), kRecentCids);
}

}  // namespace
}  // namespace chatorbit::chat
