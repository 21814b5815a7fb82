#pragma once
// A fan-out load split over several chatorbit-bench processes (--role viewers|senders,
// driven by bench/multinode.py): the files through which they agree on what was sent,
// and the latency histogram in a form that merges across processes.
//
// A senders process writes what its senders had acknowledged (--acked-out) as lines
// "<sender> <first counter> <last counter>", one per run of consecutive counters; a
// viewers process waits for that file (--expect-file) and judges every viewer's loss
// against it. Files are written to a temporary name and renamed, so a reader never
// sees half of one.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "stats.hpp"

namespace chatorbit::bench::detail {

/// One sender's acknowledged counters (1..last_sent are checked).
struct AckedBy {
  std::uint32_t sender = 0;
  std::uint64_t last_sent = 0;
  const CounterSet* acked = nullptr;
};

/// Writes `text` to `path` atomically (temporary file, then rename). False on failure.
bool write_file_atomic(const std::string& path, const std::string& text);

/// The --acked-out file's contents.
std::string acked_text(const std::vector<AckedBy>& senders);

/// What the senders had acknowledged, per room (sender s belongs to room s mod
/// `rooms`), read from an --acked-out file; nullopt if it does not exist (yet). Throws
/// std::runtime_error if it is malformed.
std::optional<std::vector<CounterSet>> read_expected(const std::string& path, std::uint32_t rooms);

/// The histogram as JSON: {"count":N,"min_ns":..,"max_ns":..,"sum_ns":..,
/// "buckets":[[low_ns,high_ns,count],...]} with the non-empty buckets only.
std::string histogram_json(const LatencyHistogram& h);

}  // namespace chatorbit::bench::detail
