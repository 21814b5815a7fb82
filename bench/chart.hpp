#pragma once
// Latency distribution charts for chatorbit-bench: LatencyHistogram -> a self-contained
// SVG document. Pure and single-threaded; standard library only; unit-tested in
// bench/chart_test.cpp.

#include <cstdint>
#include <string>
#include <vector>

#include "stats.hpp"

namespace chatorbit::bench {

/// One line of a chart. The histogram is not owned and must outlive the call; a null
/// pointer is drawn as an empty histogram.
struct ChartSeries {
  std::string label;
  const LatencyHistogram* histogram = nullptr;
};

/// A range of nanosecond values [low_ns, high_ns] and the fraction (0-1) of the
/// histogram's samples in it.
struct ChartBin {
  std::uint64_t low_ns = 0;
  std::uint64_t high_ns = 0;
  double share = 0.0;
};

/// The histogram's buckets merged into about `bins_per_decade` (>= 1) bins per power of
/// ten, grouped by where each bucket starts; coarser where the buckets themselves are
/// coarser (below ~1 µs). The bins are contiguous and ascending, run from the first to
/// the last non-empty bucket (empty bins in between included, with share 0), the last
/// one reaches max() even past the histogram's range, and the shares sum to 1.
/// Empty when the histogram is.
std::vector<ChartBin> latency_bins(const LatencyHistogram& histogram, int bins_per_decade);

/// Nanoseconds as milliseconds with 3 significant digits and no trailing zeros, never
/// in exponent form and independent of the locale: 1'234'567 -> "1.23",
/// 30'000'000 -> "30", 1'234'567'890 -> "1235". The chart writes its values this way.
std::string format_ms(std::uint64_t ns);

/// An SVG document (900x480, no scripts, no external fonts or CSS) showing each series'
/// latency distribution: x = latency in ms on a log scale with a tick per decade
/// covering every series' min to max, y = share of the samples (%) per bin
/// (latency_bins, 10 per decade). One step-line <path> per non-empty series in a
/// distinct colour; a legend with each label and its sample count; dashed markers for
/// p50, p99, p99.9 and max of the first series, labelled e.g. "p50 30.1 ms". When no
/// series has samples the chart says "no samples" and draws no path. All text is
/// XML-escaped.
std::string latency_chart_svg(const std::string& title, const std::vector<ChartSeries>& series);

}  // namespace chatorbit::bench
