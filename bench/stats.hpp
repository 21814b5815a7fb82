#pragma once
// The counting behind chatorbit-bench: pure, single-threaded, unit-tested
// (bench/stats_test.cpp). Depends on the standard library only.
//
// - LatencyHistogram: HDR-like log-linear histogram of nanosecond values with
//   percentile queries. 128 linear sub-buckets per power of two keep the relative error
//   of any reported value under 1/256 (a value is reported as its bucket's midpoint).
// - CounterSet: a growable bit set of (sender, counter) pairs.
// - SequenceChecker: one per viewer; counts duplicated and reordered messages as they
//   arrive and, at the end, lost ones against what the senders had acknowledged.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace chatorbit::bench {

class LatencyHistogram {
 public:
  /// Values are nanoseconds. Exact below 128 ns; above, 128 buckets per power of two.
  /// The range covers 1 µs to 60 s with margin; larger values land in the top bucket
  /// (max() stays exact).
  static constexpr int kSubBucketBits = 7;
  static constexpr std::uint64_t kSubBuckets = 1ULL << kSubBucketBits;  // 128
  static constexpr int kMaxMagnitude = 36;                              // 2^36 ns = 68.7 s
  static constexpr std::size_t kBucketCount = kSubBuckets * (kMaxMagnitude - kSubBucketBits + 1);

  LatencyHistogram();

  void record(std::uint64_t ns) { record_n(ns, 1); }
  void record_n(std::uint64_t ns, std::uint64_t n);
  void merge(const LatencyHistogram& other);
  void reset();

  std::uint64_t count() const { return count_; }
  /// 0 when empty.
  std::uint64_t min() const { return count_ ? min_ : 0; }
  std::uint64_t max() const { return max_; }
  double mean() const { return count_ ? sum_ / static_cast<double>(count_) : 0.0; }

  /// The value at percentile `p` (0-100) by nearest rank: the smallest recorded value
  /// v such that at least p% of the values are <= v, as its bucket's midpoint clamped
  /// to [min, max]. percentile(0) is min(), percentile(100) is max(). 0 when empty.
  std::uint64_t percentile(double p) const;

  /// How many values bucket `b` (< kBucketCount) holds.
  std::uint64_t bucket_count_at(std::size_t b) const { return buckets_[b]; }

  /// Bucket arithmetic, exposed for the tests.
  static std::size_t bucket_of(std::uint64_t ns);
  static std::uint64_t bucket_low(std::size_t bucket);   ///< smallest value in the bucket
  static std::uint64_t bucket_high(std::size_t bucket);  ///< largest value in the bucket

 private:
  std::vector<std::uint64_t> buckets_;
  std::uint64_t count_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  double sum_ = 0;
};

/// A set of non-negative counters per sender, as bits. Senders are small dense ids;
/// counters are expected to be dense from 0 or 1 upwards (memory is one bit per value
/// up to the largest inserted).
class CounterSet {
 public:
  /// Largest sender id + 1 and largest counter + 1 accepted; beyond them insert()
  /// refuses (a garbled message must not allocate gigabytes).
  static constexpr std::uint32_t kMaxSenders = 1U << 16;
  static constexpr std::uint64_t kMaxCounter = 1ULL << 32;

  /// True if the pair was not in the set before. Pairs out of range are not stored
  /// and return false; check valid() first.
  bool insert(std::uint32_t sender, std::uint64_t counter);
  bool contains(std::uint32_t sender, std::uint64_t counter) const;
  static bool valid(std::uint32_t sender, std::uint64_t counter) {
    return sender < kMaxSenders && counter < kMaxCounter;
  }
  std::uint64_t size() const { return size_; }
  std::uint32_t senders() const { return static_cast<std::uint32_t>(bits_.size()); }
  /// Number of pairs in *this that are not in `other`.
  std::uint64_t count_missing_from(const CounterSet& other) const;
  void merge(const CounterSet& other);

 private:
  std::vector<std::vector<std::uint64_t>> bits_;  // [sender][counter / 64]
  std::uint64_t size_ = 0;
};

/// What one viewer received. Feed it every (sender, counter) in arrival order.
class SequenceChecker {
 public:
  enum class Verdict : std::uint8_t {
    in_order,   ///< first time seen, and higher than anything seen from that sender
    reordered,  ///< first time seen, but lower than the highest already seen from that sender
    duplicate,  ///< seen before
    invalid,    ///< sender id or counter out of CounterSet's range; ignored
  };

  Verdict on_receive(std::uint32_t sender, std::uint64_t counter);

  std::uint64_t received() const { return received_; }  ///< every call, whatever the verdict
  std::uint64_t unique() const { return seen_.size(); }
  std::uint64_t duplicated() const { return duplicated_; }
  std::uint64_t reordered() const { return reordered_; }
  std::uint64_t invalid() const { return invalid_; }
  /// Expected pairs never received. `expected` is what the senders had acknowledged
  /// (or sent) when the run ended.
  std::uint64_t lost(const CounterSet& expected) const { return expected.count_missing_from(seen_); }
  /// Received pairs that were not expected (sent but not acknowledged, or never sent).
  std::uint64_t unexpected(const CounterSet& expected) const { return seen_.count_missing_from(expected); }
  const CounterSet& seen() const { return seen_; }

 private:
  CounterSet seen_;
  std::vector<std::uint64_t> highest_;  // per sender: highest counter + 1, 0 = none yet
  std::uint64_t received_ = 0;
  std::uint64_t duplicated_ = 0;
  std::uint64_t reordered_ = 0;
  std::uint64_t invalid_ = 0;
};

/// Totals over many viewers.
struct DeliveryTotals {
  std::uint64_t received = 0;
  std::uint64_t unique = 0;
  std::uint64_t lost = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t reordered = 0;
  std::uint64_t unexpected = 0;
  std::uint64_t invalid = 0;
  std::uint64_t viewers_with_loss = 0;

  void add(const SequenceChecker& viewer, const CounterSet& expected);
};

/// The payload senders put in a message's content: "b:<sender>:<counter>:<send_ns>",
/// optionally followed by ':' and padding.
std::string make_bench_content(std::uint32_t sender, std::uint64_t counter, std::uint64_t send_ns, std::size_t pad = 0);

struct BenchContent {
  std::uint32_t sender = 0;
  std::uint64_t counter = 0;
  std::uint64_t send_ns = 0;
};

/// Parses the start of `s` as make_bench_content() wrote it; stops at the first
/// character after the timestamp (so the rest of a JSON document may follow).
bool parse_bench_content(const char* s, const char* end, BenchContent& out);

/// The median of `values` (of the middle two, their mean); NaN when there are none.
double median(std::vector<double> values);

}  // namespace chatorbit::bench
