#include "stats.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace chatorbit::bench {
namespace {

// The nearest-rank percentile of a sorted sample: what LatencyHistogram approximates.
std::uint64_t reference_percentile(const std::vector<std::uint64_t>& sorted, double p) {
  if (p <= 0) return sorted.front();
  if (p >= 100) return sorted.back();
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void expect_close_to(std::uint64_t got, std::uint64_t want, double rel, const std::string& what) {
  const double diff = std::abs(static_cast<double>(got) - static_cast<double>(want));
  EXPECT_LE(diff, rel * static_cast<double>(want) + 0.5) << what << ": got " << got << ", want " << want;
}

// ---------------------------------------------------------------------------------
// LatencyHistogram

TEST(LatencyHistogram, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0U);
  EXPECT_EQ(h.min(), 0U);
  EXPECT_EQ(h.max(), 0U);
  EXPECT_EQ(h.percentile(50), 0U);
  EXPECT_EQ(h.percentile(100), 0U);
  EXPECT_EQ(h.mean(), 0.0);
}

TEST(LatencyHistogram, SingleValueIsEveryPercentile) {
  LatencyHistogram h;
  h.record(1'234'567);
  for (double p : {0.0, 1.0, 50.0, 99.9, 100.0}) EXPECT_EQ(h.percentile(p), 1'234'567U) << p;
  EXPECT_EQ(h.min(), 1'234'567U);
  EXPECT_EQ(h.max(), 1'234'567U);
  EXPECT_DOUBLE_EQ(h.mean(), 1'234'567.0);
}

TEST(LatencyHistogram, BucketsAreContiguousAndTight) {
  // Every bucket starts right after the previous one ends, and none is wider than
  // 1/128 of its lower bound: the relative error bound.
  for (std::size_t b = 1; b < LatencyHistogram::kBucketCount; ++b) {
    ASSERT_EQ(LatencyHistogram::bucket_low(b), LatencyHistogram::bucket_high(b - 1) + 1) << b;
    const auto lo = LatencyHistogram::bucket_low(b);
    const auto width = LatencyHistogram::bucket_high(b) - lo + 1;
    ASSERT_LE(width * 128, std::max<std::uint64_t>(lo, 128)) << b;
  }
  for (std::uint64_t v : {0ULL, 1ULL, 127ULL, 128ULL, 255ULL, 256ULL, 1000ULL, 999'999ULL, 60'000'000'000ULL}) {
    const auto b = LatencyHistogram::bucket_of(v);
    EXPECT_LE(LatencyHistogram::bucket_low(b), v) << v;
    EXPECT_GE(LatencyHistogram::bucket_high(b), v) << v;
  }
  // 60 s is inside the range, not in the overflow bucket.
  EXPECT_LT(LatencyHistogram::bucket_of(60'000'000'000ULL), LatencyHistogram::kBucketCount - 1);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.percentile(50), 50U);
  EXPECT_EQ(h.percentile(90), 90U);
  EXPECT_EQ(h.percentile(99), 99U);
  EXPECT_EQ(h.percentile(100), 100U);
  EXPECT_EQ(h.percentile(0), 1U);
}

TEST(LatencyHistogram, PercentilesMatchSortedReferenceWithinOnePercent) {
  // Log-uniform values from 1 µs to 60 s, plus a heavy tail cluster.
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> exp10(3.0, std::log10(60e9));
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 200'000; ++i) values.push_back(static_cast<std::uint64_t>(std::pow(10.0, exp10(rng))));
  for (int i = 0; i < 500; ++i) values.push_back(5'000'000'000ULL + static_cast<std::uint64_t>(i) * 1'000'000ULL);
  LatencyHistogram h;
  for (auto v : values) h.record(v);
  std::sort(values.begin(), values.end());
  EXPECT_EQ(h.count(), values.size());
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.max(), values.back());
  for (double p : {0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    expect_close_to(h.percentile(p), reference_percentile(values, p), 0.01, "p" + std::to_string(p));
  }
}

TEST(LatencyHistogram, PercentilesOnNarrowDistribution) {
  // Typical latencies: 200 µs ± jitter; the error must stay relative to the value,
  // not to the range.
  std::mt19937_64 rng(7);
  std::normal_distribution<double> d(200'000.0, 20'000.0);
  std::vector<std::uint64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 100'000; ++i) {
    const auto v = static_cast<std::uint64_t>(std::max(1000.0, d(rng)));
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    expect_close_to(h.percentile(p), reference_percentile(values, p), 0.005, "p" + std::to_string(p));
  }
}

TEST(LatencyHistogram, NearestRankOnKnownData) {
  // 1..1000 µs: p50 is the 500th value, p99 the 990th, p99.9 the 999th.
  LatencyHistogram h;
  for (std::uint64_t us = 1; us <= 1000; ++us) h.record(us * 1000);
  expect_close_to(h.percentile(50), 500'000, 0.004, "p50");
  expect_close_to(h.percentile(99), 990'000, 0.004, "p99");
  expect_close_to(h.percentile(99.9), 999'000, 0.004, "p99.9");
  EXPECT_EQ(h.percentile(100), 1'000'000U);
  EXPECT_NEAR(h.mean(), 500'500.0, 1e-6);
}

TEST(LatencyHistogram, HugeValuesClampToTopBucketButMaxIsExact) {
  LatencyHistogram h;
  h.record(1000);
  h.record(500'000'000'000ULL);  // 500 s: beyond the range
  EXPECT_EQ(h.max(), 500'000'000'000ULL);
  EXPECT_EQ(h.percentile(100), 500'000'000'000ULL);
  expect_close_to(h.percentile(50), 1000, 0.004, "p50");
  EXPECT_LE(h.percentile(99), 500'000'000'000ULL);
}

TEST(LatencyHistogram, MergeEqualsRecordingEverything) {
  LatencyHistogram a, b, all;
  for (std::uint64_t v = 1000; v < 2'000'000; v += 997) {
    (v % 3 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  for (double p : {1.0, 50.0, 99.0, 99.9}) EXPECT_EQ(a.percentile(p), all.percentile(p));
  LatencyHistogram empty;
  a.merge(empty);
  EXPECT_EQ(a.count(), all.count());
  empty.merge(all);
  EXPECT_EQ(empty.min(), all.min());
}

TEST(LatencyHistogram, RecordNAndReset) {
  LatencyHistogram h;
  h.record_n(5000, 99);
  h.record_n(9'000'000, 1);
  h.record_n(1, 0);  // no-op
  EXPECT_EQ(h.count(), 100U);
  expect_close_to(h.percentile(99), 5000, 0.004, "p99");
  EXPECT_EQ(h.percentile(99.5), 9'000'000U);
  h.reset();
  EXPECT_EQ(h.count(), 0U);
  EXPECT_EQ(h.percentile(50), 0U);
  EXPECT_EQ(h.max(), 0U);
}

// ---------------------------------------------------------------------------------
// CounterSet

TEST(CounterSet, InsertContainsAndSize) {
  CounterSet s;
  EXPECT_TRUE(s.insert(0, 1));
  EXPECT_FALSE(s.insert(0, 1));
  EXPECT_TRUE(s.insert(3, 1000));
  EXPECT_TRUE(s.contains(0, 1));
  EXPECT_TRUE(s.contains(3, 1000));
  EXPECT_FALSE(s.contains(3, 999));
  EXPECT_FALSE(s.contains(7, 1));
  EXPECT_EQ(s.size(), 2U);
  EXPECT_EQ(s.senders(), 4U);
}

TEST(CounterSet, RefusesOutOfRange) {
  CounterSet s;
  EXPECT_FALSE(s.insert(CounterSet::kMaxSenders, 1));
  EXPECT_FALSE(s.insert(0, CounterSet::kMaxCounter));
  EXPECT_EQ(s.size(), 0U);
  EXPECT_FALSE(s.contains(CounterSet::kMaxSenders, 1));
}

TEST(CounterSet, MissingAndMerge) {
  CounterSet expected, got;
  for (std::uint64_t c = 1; c <= 200; ++c) {
    expected.insert(0, c);
    expected.insert(1, c);
  }
  for (std::uint64_t c = 1; c <= 200; c += 2) got.insert(0, c);  // half of sender 0
  got.insert(5, 1);                                              // a sender nobody expected
  EXPECT_EQ(expected.count_missing_from(got), 100U + 200U);
  EXPECT_EQ(got.count_missing_from(expected), 1U);
  CounterSet merged = got;
  merged.merge(expected);
  EXPECT_EQ(merged.size(), 401U);
  EXPECT_EQ(expected.count_missing_from(merged), 0U);
}

// ---------------------------------------------------------------------------------
// SequenceChecker

CounterSet expect_range(std::uint32_t senders, std::uint64_t first, std::uint64_t last) {
  CounterSet e;
  for (std::uint32_t s = 0; s < senders; ++s) {
    for (std::uint64_t c = first; c <= last; ++c) e.insert(s, c);
  }
  return e;
}

TEST(SequenceChecker, CleanInterleavedStream) {
  SequenceChecker v;
  for (std::uint64_t c = 1; c <= 50; ++c) {
    EXPECT_EQ(v.on_receive(0, c), SequenceChecker::Verdict::in_order);
    EXPECT_EQ(v.on_receive(1, c), SequenceChecker::Verdict::in_order);
  }
  const auto e = expect_range(2, 1, 50);
  EXPECT_EQ(v.received(), 100U);
  EXPECT_EQ(v.unique(), 100U);
  EXPECT_EQ(v.lost(e), 0U);
  EXPECT_EQ(v.duplicated(), 0U);
  EXPECT_EQ(v.reordered(), 0U);
  EXPECT_EQ(v.unexpected(e), 0U);
}

TEST(SequenceChecker, CountsLossAgainstExpected) {
  SequenceChecker v;
  for (std::uint64_t c : {1, 2, 4, 5, 9}) v.on_receive(0, c);
  const auto e = expect_range(1, 1, 10);  // 3, 6, 7, 8, 10 never came
  EXPECT_EQ(v.lost(e), 5U);
  EXPECT_EQ(v.reordered(), 0U);  // gaps are loss, not reordering
  EXPECT_EQ(v.duplicated(), 0U);
}

TEST(SequenceChecker, LossAtTheEndAndOfAWholeSender) {
  SequenceChecker v;
  for (std::uint64_t c = 1; c <= 7; ++c) v.on_receive(0, c);
  const auto e = expect_range(2, 1, 10);  // sender 0: 8-10 missing; sender 1: all 10
  EXPECT_EQ(v.lost(e), 13U);
}

TEST(SequenceChecker, DuplicatesAreNotReorders) {
  SequenceChecker v;
  EXPECT_EQ(v.on_receive(0, 1), SequenceChecker::Verdict::in_order);
  EXPECT_EQ(v.on_receive(0, 2), SequenceChecker::Verdict::in_order);
  EXPECT_EQ(v.on_receive(0, 2), SequenceChecker::Verdict::duplicate);  // immediate repeat
  EXPECT_EQ(v.on_receive(0, 1), SequenceChecker::Verdict::duplicate);  // old repeat
  EXPECT_EQ(v.on_receive(0, 3), SequenceChecker::Verdict::in_order);
  EXPECT_EQ(v.duplicated(), 2U);
  EXPECT_EQ(v.reordered(), 0U);
  EXPECT_EQ(v.unique(), 3U);
  EXPECT_EQ(v.received(), 5U);
  EXPECT_EQ(v.lost(expect_range(1, 1, 3)), 0U);
}

TEST(SequenceChecker, ReorderIsLowerThanHighestSeenFromTheSameSender) {
  SequenceChecker v;
  v.on_receive(0, 1);
  v.on_receive(0, 3);
  v.on_receive(1, 1);                                                  // other senders are independent
  EXPECT_EQ(v.on_receive(0, 2), SequenceChecker::Verdict::reordered);  // late, but not lost
  EXPECT_EQ(v.on_receive(0, 4), SequenceChecker::Verdict::in_order);
  // A late arrival does not lower the mark: 5 after 6 is reordered, 7 is not.
  v.on_receive(0, 6);
  EXPECT_EQ(v.on_receive(0, 5), SequenceChecker::Verdict::reordered);
  EXPECT_EQ(v.on_receive(0, 7), SequenceChecker::Verdict::in_order);
  EXPECT_EQ(v.reordered(), 2U);
  EXPECT_EQ(v.lost(expect_range(1, 1, 7)), 0U);
}

TEST(SequenceChecker, FullyReversedStream) {
  SequenceChecker v;
  for (std::uint64_t c = 10; c >= 1; --c) v.on_receive(0, c);
  EXPECT_EQ(v.reordered(), 9U);  // everything after the first
  EXPECT_EQ(v.lost(expect_range(1, 1, 10)), 0U);
}

TEST(SequenceChecker, UnexpectedIsSentButNotAcked) {
  SequenceChecker v;
  for (std::uint64_t c = 1; c <= 12; ++c) v.on_receive(0, c);
  const auto e = expect_range(1, 1, 10);  // 11 and 12 were in flight at the end
  EXPECT_EQ(v.lost(e), 0U);
  EXPECT_EQ(v.unexpected(e), 2U);
}

TEST(SequenceChecker, EmptyStreamLosesEverything) {
  SequenceChecker v;
  EXPECT_EQ(v.lost(expect_range(3, 1, 4)), 12U);
  EXPECT_EQ(v.lost(CounterSet{}), 0U);
  EXPECT_EQ(v.received(), 0U);
}

TEST(SequenceChecker, CounterZeroAndLargeCounters) {
  SequenceChecker v;
  EXPECT_EQ(v.on_receive(2, 0), SequenceChecker::Verdict::in_order);
  EXPECT_EQ(v.on_receive(2, 0), SequenceChecker::Verdict::duplicate);
  EXPECT_EQ(v.on_receive(2, 1'000'000), SequenceChecker::Verdict::in_order);
  EXPECT_EQ(v.on_receive(2, 999'999), SequenceChecker::Verdict::reordered);
  CounterSet e;
  e.insert(2, 0);
  e.insert(2, 1'000'000);
  e.insert(2, 500'000);
  EXPECT_EQ(v.lost(e), 1U);
}

TEST(SequenceChecker, InvalidPairsAreCountedAndIgnored) {
  SequenceChecker v;
  EXPECT_EQ(v.on_receive(CounterSet::kMaxSenders, 1), SequenceChecker::Verdict::invalid);
  EXPECT_EQ(v.on_receive(0, CounterSet::kMaxCounter + 5), SequenceChecker::Verdict::invalid);
  EXPECT_EQ(v.invalid(), 2U);
  EXPECT_EQ(v.unique(), 0U);
  EXPECT_EQ(v.received(), 2U);
}

TEST(DeliveryTotals, SumsOverViewers) {
  const auto e = expect_range(1, 1, 4);
  SequenceChecker clean, lossy, messy;
  for (std::uint64_t c = 1; c <= 4; ++c) clean.on_receive(0, c);
  lossy.on_receive(0, 1);
  lossy.on_receive(0, 4);
  for (std::uint64_t c : {2, 1, 1, 3, 4, 5}) messy.on_receive(0, c);
  DeliveryTotals t;
  t.add(clean, e);
  t.add(lossy, e);
  t.add(messy, e);
  EXPECT_EQ(t.lost, 2U);
  EXPECT_EQ(t.viewers_with_loss, 1U);
  EXPECT_EQ(t.duplicated, 1U);
  EXPECT_EQ(t.reordered, 1U);
  EXPECT_EQ(t.unexpected, 1U);
  EXPECT_EQ(t.received, 4U + 2U + 6U);
  EXPECT_EQ(t.unique, 4U + 2U + 5U);
}

// ---------------------------------------------------------------------------------
// Message content

TEST(BenchContent, RoundTrip) {
  const auto s = make_bench_content(7, 123456, 987654321012345ULL);
  EXPECT_EQ(s, "b:7:123456:987654321012345");
  BenchContent c;
  ASSERT_TRUE(parse_bench_content(s.data(), s.data() + s.size(), c));
  EXPECT_EQ(c.sender, 7U);
  EXPECT_EQ(c.counter, 123456U);
  EXPECT_EQ(c.send_ns, 987654321012345ULL);
}

TEST(BenchContent, PaddingAndTrailingJson) {
  const auto s = make_bench_content(1, 2, 3, 5);
  EXPECT_EQ(s, "b:1:2:3:xxxxx");
  const std::string json = "b:1:2:3\",\"timestamp\":\"x\"}";
  BenchContent c;
  ASSERT_TRUE(parse_bench_content(json.data(), json.data() + json.size(), c));
  EXPECT_EQ(c.send_ns, 3U);
}

TEST(BenchContent, RejectsGarbage) {
  BenchContent c;
  for (std::string bad : {"", "b", "b:", "hello", "b:1", "b:1:", "b:1:2", "b:1:2:", "b:x:2:3", "b:-1:2:3",
                          "b:99999999999:2:3", "c:1:2:3"}) {
    EXPECT_FALSE(parse_bench_content(bad.data(), bad.data() + bad.size(), c)) << bad;
  }
}

TEST(Median, OfOddAndEvenCountsAndOfNone) {
  EXPECT_EQ(median({3.0, 1.0, 2.0}), 2.0);
  EXPECT_EQ(median({4.0, 1.0, 3.0, 2.0}), 2.5);
  EXPECT_EQ(median({7.0}), 7.0);
  EXPECT_EQ(median({9.0, 1.0, 1.0, 1.0, 50.0}), 1.0) << "one slow round does not move it";
  EXPECT_TRUE(std::isnan(median({})));
}

}  // namespace
}  // namespace chatorbit::bench
