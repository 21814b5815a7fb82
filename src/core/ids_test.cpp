#include "core/ids.hpp"

#include <gtest/gtest.h>

#include <set>

namespace chatorbit {
namespace {

TEST(ObjectId, ShapeAndUniqueness) {
  ManualClock clock;
  SeededRandom random(7);
  ObjectIdGenerator gen(clock, random);
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    const auto id = gen.next();
    ASSERT_TRUE(is_object_id(id)) << id;
    ASSERT_TRUE(seen.insert(id).second) << "duplicate " << id;
  }
  EXPECT_NE(*seen.begin(), "000000000000000000000000");
}

TEST(ObjectId, StartsWithTheTimestamp) {
  ManualClock clock{SystemTime{std::chrono::seconds{0x65000000}}};
  SeededRandom random(1);
  ObjectIdGenerator gen(clock, random);
  EXPECT_EQ(gen.next().substr(0, 8), "65000000");
}

TEST(ObjectId, Recognition) {
  EXPECT_TRUE(is_object_id("690766ae876dd929bee54fcd"));
  EXPECT_TRUE(is_object_id("690766AE876DD929BEE54FCD"));
  EXPECT_FALSE(is_object_id("690766ae876dd929bee54fc"));
  EXPECT_FALSE(is_object_id("690766ae876dd929bee54fcdd"));
  EXPECT_FALSE(is_object_id("690766ae876dd929bee54fcg"));
  EXPECT_FALSE(is_object_id(""));
}

}  // namespace
}  // namespace chatorbit
