#include "split_load.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

namespace chatorbit::bench::detail {
namespace {

std::string temp_path(const char* name) {
  return ::testing::TempDir() + "split_load_" + std::to_string(getpid()) + "_" + name;
}

TEST(SplitLoad, AckedTextListsRunsOfConsecutiveCounters) {
  CounterSet a;
  for (std::uint64_t c : {1, 2, 3, 5, 7, 8}) a.insert(4, c);
  EXPECT_EQ(acked_text({{4, 9, &a}}), "4 1 3\n4 5 5\n4 7 8\n");
  CounterSet none;
  EXPECT_EQ(acked_text({{0, 3, &none}}), "");
}

TEST(SplitLoad, ExpectedRoundTripsByRoom) {
  CounterSet s0, s1, s2;
  for (std::uint64_t c = 1; c <= 10; ++c) s0.insert(0, c);
  for (std::uint64_t c = 1; c <= 4; ++c) s1.insert(1, c);
  s2.insert(2, 2);
  const std::string path = temp_path("expected");
  ASSERT_TRUE(write_file_atomic(path, acked_text({{0, 10, &s0}, {1, 4, &s1}, {2, 2, &s2}})));
  const auto rooms = read_expected(path, 2);
  ASSERT_TRUE(rooms.has_value());
  ASSERT_EQ(rooms->size(), 2u);
  EXPECT_EQ((*rooms)[0].size(), 11u);  // senders 0 and 2
  EXPECT_EQ((*rooms)[1].size(), 4u);
  EXPECT_TRUE((*rooms)[0].contains(2, 2));
  EXPECT_FALSE((*rooms)[0].contains(2, 1));
  std::remove(path.c_str());
}

TEST(SplitLoad, MissingFileIsNotYetThereAndGarbageIsAnError) {
  EXPECT_FALSE(read_expected(temp_path("absent"), 1).has_value());
  const std::string path = temp_path("garbage");
  ASSERT_TRUE(write_file_atomic(path, "0 5 2\n"));
  EXPECT_THROW(read_expected(path, 1), std::runtime_error);
  std::remove(path.c_str());
}

TEST(SplitLoad, HistogramJsonHoldsTheNonEmptyBuckets) {
  LatencyHistogram h;
  EXPECT_EQ(histogram_json(h), "{\"count\":0,\"min_ns\":0,\"max_ns\":0,\"sum_ns\":0,\"buckets\":[]}");
  h.record(5);
  h.record(5);
  h.record(1000);
  const std::string j = histogram_json(h);
  EXPECT_NE(j.find("\"count\":3"), std::string::npos) << j;
  EXPECT_NE(j.find("[5,5,2]"), std::string::npos) << j;
  const auto b = LatencyHistogram::bucket_of(1000);
  EXPECT_NE(j.find("[" + std::to_string(LatencyHistogram::bucket_low(b)) + "," +
                   std::to_string(LatencyHistogram::bucket_high(b)) + ",1]"),
            std::string::npos)
      << j;
}

}  // namespace
}  // namespace chatorbit::bench::detail
