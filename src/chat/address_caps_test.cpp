#include "chat/address_caps.hpp"

#include <gtest/gtest.h>

namespace chatorbit::chat {
namespace {

TEST(AddressCaps, RefusesTheConnectionPastTheCapAndCountsNothingForIt) {
  AddressCaps caps(2);
  EXPECT_TRUE(caps.try_acquire("10.0.0.1"));
  EXPECT_TRUE(caps.try_acquire("10.0.0.1"));
  EXPECT_FALSE(caps.try_acquire("10.0.0.1"));
  EXPECT_EQ(caps.open("10.0.0.1"), 2);
  EXPECT_TRUE(caps.try_acquire("10.0.0.2")) << "each address has its own count";
}

TEST(AddressCaps, AReleasedSlotCanBeTakenAgain) {
  AddressCaps caps(1);
  ASSERT_TRUE(caps.try_acquire("10.0.0.1"));
  caps.release("10.0.0.1");
  EXPECT_EQ(caps.open("10.0.0.1"), 0);
  EXPECT_TRUE(caps.try_acquire("10.0.0.1"));
}

TEST(AddressCaps, AReleaseWithoutAnAcquireDoesNotGoBelowZero) {
  AddressCaps caps(1);
  caps.release("10.0.0.1");
  EXPECT_EQ(caps.open("10.0.0.1"), 0);
  EXPECT_TRUE(caps.try_acquire("10.0.0.1"));
  EXPECT_FALSE(caps.try_acquire("10.0.0.1"));
}

}  // namespace
}  // namespace chatorbit::chat
