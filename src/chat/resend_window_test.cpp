#include "chat/resend_window.hpp"

#include <gtest/gtest.h>

#include <string>

namespace chatorbit::chat {
namespace {

TEST(ResendWindow, TheFirstPostsOfAConnectionMayBeResendsOfAnEarlierOnes) {
  Session s;
  for (std::uint32_t i = 0; i < kResendWindow; ++i) EXPECT_TRUE(note_post(s, "c" + std::to_string(i))) << i;
  EXPECT_FALSE(note_post(s, "fresh")) << "past the window, a new cid is a new message";
  EXPECT_FALSE(note_post(s, "")) << "a post without a cid is never looked up";
}

TEST(ResendWindow, ACidSentBeforeOnTheConnectionMayBeAResendUntilItLeavesTheRing) {
  Session s;
  for (std::uint32_t i = 0; i < kResendWindow; ++i) note_post(s, "early" + std::to_string(i));
  EXPECT_FALSE(note_post(s, "x"));
  EXPECT_TRUE(note_post(s, "x")) << "sent again on the same connection";
  // kRecentCids newer cids push "x" out of the ring.
  for (std::size_t i = 0; i < kRecentCids; ++i) EXPECT_FALSE(note_post(s, "n" + std::to_string(i))) << i;
  EXPECT_FALSE(note_post(s, "x")) << "too old to be remembered: the store's refusal is what finds it";
  EXPECT_TRUE(note_post(s, "n63")) << "the newest are still remembered";
  EXPECT_LE(s.recent_cids.size(), kRecentCids);
}

}  // namespace
}  // namespace chatorbit::chat
