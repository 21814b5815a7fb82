#include "core/time_format.hpp"

#include <gtest/gtest.h>

namespace chatorbit {
namespace {

TEST(TimeFormat, NanosecondsAsGoPrintsThem) {
  // 2025-11-04T13:21:51.729935846Z, the timestamp in the original's README.
  const std::int64_t ns = 1762262511LL * 1'000'000'000 + 729'935'846;
  EXPECT_EQ(format_rfc3339(ns, 9), "2025-11-04T13:21:51.729935846Z");
  EXPECT_EQ(format_rfc3339(ns, 3), "2025-11-04T13:21:51.729Z");
  EXPECT_EQ(format_rfc3339(ns, 0), "2025-11-04T13:21:51Z");
}

TEST(TimeFormat, PadsAndHandlesTheEpoch) {
  EXPECT_EQ(format_rfc3339(0, 3), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(5, 9), "1970-01-01T00:00:00.000000005Z");
  EXPECT_EQ(format_rfc3339(-1, 3), "1969-12-31T23:59:59.999Z");
}

}  // namespace
}  // namespace chatorbit
