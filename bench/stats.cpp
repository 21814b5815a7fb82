#include "stats.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>

namespace chatorbit::bench {

// ---------------------------------------------------------------------------------
// LatencyHistogram

LatencyHistogram::LatencyHistogram() : buckets_(kBucketCount, 0) {}

std::size_t LatencyHistogram::bucket_of(std::uint64_t ns) {
  if (ns < kSubBuckets) return static_cast<std::size_t>(ns);
  const int magnitude = 63 - std::countl_zero(ns);  // ns in [2^magnitude, 2^(magnitude+1))
  if (magnitude >= kMaxMagnitude) return kBucketCount - 1;
  const int shift = magnitude - kSubBucketBits;
  return static_cast<std::size_t>(kSubBuckets * static_cast<std::uint64_t>(shift) + (ns >> shift));
}

std::uint64_t LatencyHistogram::bucket_low(std::size_t bucket) {
  if (bucket < 2 * kSubBuckets) return bucket;
  const int shift = static_cast<int>(bucket / kSubBuckets) - 1;
  const std::uint64_t sub = bucket % kSubBuckets + kSubBuckets;
  return sub << shift;
}

std::uint64_t LatencyHistogram::bucket_high(std::size_t bucket) {
  if (bucket < 2 * kSubBuckets) return bucket;
  const int shift = static_cast<int>(bucket / kSubBuckets) - 1;
  return bucket_low(bucket) + (1ULL << shift) - 1;
}

void LatencyHistogram::record_n(std::uint64_t ns, std::uint64_t n) {
  if (n == 0) return;
  buckets_[bucket_of(ns)] += n;
  count_ += n;
  min_ = std::min(min_, ns);
  max_ = std::max(max_, ns);
  sum_ += static_cast<double>(ns) * static_cast<double>(n);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < kBucketCount; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void LatencyHistogram::reset() {
  std::fill(buckets_.begin(), buckets_.end(), 0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

std::uint64_t LatencyHistogram::percentile(double p) const {
  if (count_ == 0) return 0;
  if (!(p > 0.0)) return min_;  // also NaN
  if (p >= 100.0) return max_;
  auto rank = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      const std::uint64_t lo = bucket_low(i);
      const std::uint64_t mid = lo + (bucket_high(i) - lo) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

// ---------------------------------------------------------------------------------
// CounterSet

bool CounterSet::insert(std::uint32_t sender, std::uint64_t counter) {
  if (!valid(sender, counter)) return false;
  if (sender >= bits_.size()) bits_.resize(sender + 1);
  auto& words = bits_[sender];
  const std::size_t word = static_cast<std::size_t>(counter / 64);
  if (word >= words.size()) words.resize(std::max(word + 1, words.size() * 2), 0);
  const std::uint64_t bit = 1ULL << (counter % 64);
  if (words[word] & bit) return false;
  words[word] |= bit;
  ++size_;
  return true;
}

bool CounterSet::contains(std::uint32_t sender, std::uint64_t counter) const {
  if (!valid(sender, counter) || sender >= bits_.size()) return false;
  const auto& words = bits_[sender];
  const std::size_t word = static_cast<std::size_t>(counter / 64);
  return word < words.size() && (words[word] >> (counter % 64)) & 1U;
}

std::uint64_t CounterSet::count_missing_from(const CounterSet& other) const {
  std::uint64_t missing = 0;
  for (std::size_t s = 0; s < bits_.size(); ++s) {
    const auto& mine = bits_[s];
    const std::vector<std::uint64_t>* theirs = s < other.bits_.size() ? &other.bits_[s] : nullptr;
    for (std::size_t w = 0; w < mine.size(); ++w) {
      const std::uint64_t t = theirs && w < theirs->size() ? (*theirs)[w] : 0;
      missing += static_cast<std::uint64_t>(std::popcount(mine[w] & ~t));
    }
  }
  return missing;
}

void CounterSet::merge(const CounterSet& other) {
  if (other.bits_.size() > bits_.size()) bits_.resize(other.bits_.size());
  size_ = 0;
  for (std::size_t s = 0; s < bits_.size(); ++s) {
    if (s < other.bits_.size()) {
      const auto& theirs = other.bits_[s];
      if (theirs.size() > bits_[s].size()) bits_[s].resize(theirs.size(), 0);
      for (std::size_t w = 0; w < theirs.size(); ++w) bits_[s][w] |= theirs[w];
    }
    for (const auto w : bits_[s]) size_ += static_cast<std::uint64_t>(std::popcount(w));
  }
}

// ---------------------------------------------------------------------------------
// SequenceChecker

SequenceChecker::Verdict SequenceChecker::on_receive(std::uint32_t sender, std::uint64_t counter) {
  ++received_;
  if (!CounterSet::valid(sender, counter)) {
    ++invalid_;
    return Verdict::invalid;
  }
  if (!seen_.insert(sender, counter)) {
    ++duplicated_;
    return Verdict::duplicate;
  }
  if (sender >= highest_.size()) highest_.resize(sender + 1, 0);
  if (counter + 1 < highest_[sender]) {
    ++reordered_;
    return Verdict::reordered;
  }
  highest_[sender] = counter + 1;
  return Verdict::in_order;
}

void DeliveryTotals::add(const SequenceChecker& viewer, const CounterSet& expected) {
  received += viewer.received();
  unique += viewer.unique();
  duplicated += viewer.duplicated();
  reordered += viewer.reordered();
  invalid += viewer.invalid();
  const auto l = viewer.lost(expected);
  lost += l;
  if (l) ++viewers_with_loss;
  unexpected += viewer.unexpected(expected);
}

// ---------------------------------------------------------------------------------
// Message content

std::string make_bench_content(std::uint32_t sender, std::uint64_t counter, std::uint64_t send_ns, std::size_t pad) {
  std::string out;
  out.reserve(48 + pad);
  out += "b:";
  out += std::to_string(sender);
  out += ':';
  out += std::to_string(counter);
  out += ':';
  out += std::to_string(send_ns);
  if (pad) {
    out.push_back(':');
    out.append(pad, 'x');
  }
  return out;
}

bool parse_bench_content(const char* s, const char* end, BenchContent& out) {
  if (end - s < 2 || s[0] != 'b' || s[1] != ':') return false;
  s += 2;
  auto r1 = std::from_chars(s, end, out.sender);
  if (r1.ec != std::errc{} || r1.ptr == end || *r1.ptr != ':') return false;
  auto r2 = std::from_chars(r1.ptr + 1, end, out.counter);
  if (r2.ec != std::errc{} || r2.ptr == end || *r2.ptr != ':') return false;
  auto r3 = std::from_chars(r2.ptr + 1, end, out.send_ns);
  return r3.ec == std::errc{};
}

double median(std::vector<double> values) {
  if (values.empty()) return NAN;
  const std::size_t m = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(m), values.end());
  if (values.size() % 2) return values[m];
  const double upper = values[m];
  const double lower = *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(m));
  return (lower + upper) / 2;
}

}  // namespace chatorbit::bench
