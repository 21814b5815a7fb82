#include "chart.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace chatorbit::bench {
namespace {

std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + needle.size())) ++n;
  return n;
}

// Log-normal latencies around 30 ms, as a loaded server might show.
std::vector<std::uint64_t> lognormal_values(int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> d(std::log(30e6), 0.6);
  std::vector<std::uint64_t> values;
  for (int i = 0; i < n; ++i) values.push_back(static_cast<std::uint64_t>(d(rng)));
  return values;
}

// ---------------------------------------------------------------------------------
// latency_bins

TEST(ChartBins, EmptyHistogramHasNoBins) {
  LatencyHistogram h;
  EXPECT_TRUE(latency_bins(h, 10).empty());
}

TEST(ChartBins, ContiguousAscendingAndSharesMatchTheValues) {
  const auto values = lognormal_values(20'000, 1);
  LatencyHistogram h;
  for (const auto v : values) h.record(v);
  const auto bins = latency_bins(h, 10);
  ASSERT_FALSE(bins.empty());

  double total = 0;
  for (std::size_t i = 0; i < bins.size(); ++i) {
    EXPECT_LE(bins[i].low_ns, bins[i].high_ns) << i;
    if (i > 0) {
      EXPECT_EQ(bins[i].low_ns, bins[i - 1].high_ns + 1) << i;
    }
    EXPECT_GE(bins[i].share, 0.0) << i;
    total += bins[i].share;
  }
  EXPECT_NEAR(total, 1.0, 1e-9);

  // Every value lies in a bin, and each bin's share is exactly the values it holds.
  std::vector<std::uint64_t> held(bins.size(), 0);
  for (const auto v : values) {
    const auto it =
        std::upper_bound(bins.begin(), bins.end(), v, [](auto x, const ChartBin& b) { return x < b.low_ns; });
    ASSERT_NE(it, bins.begin()) << v;
    ASSERT_LE(v, std::prev(it)->high_ns) << v;
    ++held[static_cast<std::size_t>(std::prev(it) - bins.begin())];
  }
  for (std::size_t i = 0; i < bins.size(); ++i) {
    EXPECT_NEAR(bins[i].share, static_cast<double>(held[i]) / static_cast<double>(values.size()), 1e-12) << i;
  }
  EXPECT_GT(bins.front().share, 0.0);
  EXPECT_GT(bins.back().share, 0.0);
}

TEST(ChartBins, AboutTheRequestedNumberPerDecade) {
  LatencyHistogram h;
  h.record(1'000'000);      // 1 ms
  h.record(1'000'000'000);  // 1 s: three decades later
  for (const int per_decade : {8, 10, 12}) {
    const auto bins = latency_bins(h, per_decade);
    EXPECT_GE(bins.size(), static_cast<std::size_t>(3 * per_decade)) << per_decade;
    EXPECT_LE(bins.size(), static_cast<std::size_t>(3 * per_decade + 1)) << per_decade;
    EXPECT_NEAR(bins.front().share + bins.back().share, 1.0, 1e-12);
    for (const auto& b : bins) {
      const double width_decades = std::log10(static_cast<double>(b.high_ns + 1) / static_cast<double>(b.low_ns));
      EXPECT_LT(width_decades, 1.0 / per_decade + 0.01) << per_decade << " " << b.low_ns;
    }
  }
}

TEST(ChartBins, ValuesPastTheHistogramRangeAreCovered) {
  LatencyHistogram h;
  h.record(2'000'000);
  h.record(500'000'000'000ULL);  // 500 s, beyond the top bucket
  const auto bins = latency_bins(h, 10);
  ASSERT_FALSE(bins.empty());
  EXPECT_LE(bins.front().low_ns, 2'000'000U);
  EXPECT_GE(bins.back().high_ns, 500'000'000'000ULL);
  EXPECT_NEAR(bins.back().share, 0.5, 1e-12);
}

// ---------------------------------------------------------------------------------
// format_ms

TEST(ChartFormat, ThreeSignificantDigitsInMilliseconds) {
  EXPECT_EQ(format_ms(0), "0");
  EXPECT_EQ(format_ms(1'000), "0.001");
  EXPECT_EQ(format_ms(150'000), "0.15");
  EXPECT_EQ(format_ms(1'234'567), "1.23");
  EXPECT_EQ(format_ms(30'000'000), "30");
  EXPECT_EQ(format_ms(30'149'999), "30.1");
  EXPECT_EQ(format_ms(999'600), "1");  // rounds up to the next digit, no "1.00"
  EXPECT_EQ(format_ms(1'000'000'000), "1000");
  EXPECT_EQ(format_ms(1'234'567'890), "1235");
}

// ---------------------------------------------------------------------------------
// latency_chart_svg

TEST(LatencyChart, IsOneSelfContainedSvgDocument) {
  LatencyHistogram h;
  for (const auto v : lognormal_values(1000, 2)) h.record(v);
  const std::string svg = latency_chart_svg("fan-out", {{"run", &h}});
  std::string body = svg;
  if (body.starts_with("<?xml")) body.erase(0, body.find("?>") + 2);
  body.erase(0, body.find_first_not_of(" \n"));
  EXPECT_TRUE(body.starts_with("<svg ")) << svg.substr(0, 120);
  EXPECT_TRUE(svg.ends_with("</svg>\n") || svg.ends_with("</svg>"));
  EXPECT_EQ(count_of(svg, "<svg"), 1U);
  EXPECT_EQ(count_of(svg, "</svg>"), 1U);
  EXPECT_NE(svg.find("xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  for (const char* banned : {"<script", "<style", "@import", "href", "url("}) {
    EXPECT_EQ(svg.find(banned), std::string::npos) << banned;
  }
  EXPECT_NE(svg.find(">fan-out</text>"), std::string::npos);
}

TEST(LatencyChart, EscapesTitleAndLabels) {
  LatencyHistogram h;
  h.record(5'000'000);
  const std::string svg = latency_chart_svg(R"(p99 <&>" 'x')", {{R"(a<b & "c")", &h}});
  EXPECT_NE(svg.find("p99 &lt;&amp;&gt;&quot; &apos;x&apos;"), std::string::npos);
  EXPECT_NE(svg.find("a&lt;b &amp; &quot;c&quot;"), std::string::npos);
  EXPECT_EQ(svg.find("<&>"), std::string::npos);
  EXPECT_EQ(svg.find("a<b"), std::string::npos);
  EXPECT_EQ(svg.find("\"c\""), std::string::npos);
  // Outside entities, a '&' may not appear at all.
  for (auto at = svg.find('&'); at != std::string::npos; at = svg.find('&', at + 1)) {
    const auto entity = svg.substr(at, svg.find(';', at) - at + 1);
    EXPECT_TRUE(entity == "&amp;" || entity == "&lt;" || entity == "&gt;" || entity == "&quot;" || entity == "&apos;")
        << entity;
  }
}

TEST(LatencyChart, OnePathPerNonEmptySeriesInDistinctColours) {
  LatencyHistogram a, b, empty;
  for (const auto v : lognormal_values(1000, 3)) a.record(v);
  for (const auto v : lognormal_values(1000, 4)) b.record(v * 2);
  const std::string svg = latency_chart_svg("t", {{"a", &a}, {"empty", &empty}, {"b", &b}});
  EXPECT_EQ(count_of(svg, "<path "), 2U);
  std::set<std::string> colours;
  for (auto at = svg.find("<path "); at != std::string::npos; at = svg.find("<path ", at + 1)) {
    const auto stroke = svg.find("stroke=\"", at) + 8;
    colours.insert(svg.substr(stroke, svg.find('"', stroke) - stroke));
  }
  EXPECT_EQ(colours.size(), 2U);
  // The legend names every series with its sample count.
  EXPECT_NE(svg.find(">1000 samples</text>"), std::string::npos);
  EXPECT_NE(svg.find(">empty</text>"), std::string::npos);
  EXPECT_NE(svg.find(">no samples</text>"), std::string::npos);
}

TEST(LatencyChart, MarkersShowTheFirstSeriesPercentiles) {
  LatencyHistogram first, second;
  for (std::uint64_t ms = 1; ms <= 1000; ++ms) first.record(ms * 1'000'000);
  second.record(5'000'000'000ULL);
  const std::string svg = latency_chart_svg("t", {{"first", &first}, {"second", &second}});
  EXPECT_NE(svg.find(">p50 " + format_ms(first.percentile(50)) + " ms</text>"), std::string::npos);
  EXPECT_NE(svg.find(">p99 " + format_ms(first.percentile(99)) + " ms</text>"), std::string::npos);
  EXPECT_NE(svg.find(">p99.9 " + format_ms(first.percentile(99.9)) + " ms</text>"), std::string::npos);
  EXPECT_NE(svg.find(">max 1000 ms</text>"), std::string::npos);
  // The nearest-rank p50 of 1..1000 ms is 500 ms, within a bucket's width.
  const std::string p50 = format_ms(first.percentile(50));
  EXPECT_TRUE(p50 == "499" || p50 == "500" || p50 == "501") << p50;
  EXPECT_EQ(svg.find(">max 5000 ms</text>"), std::string::npos);  // the second series has none
  EXPECT_EQ(count_of(svg, "stroke-dasharray"), 4U);
}

TEST(LatencyChart, EmptyHistogramSaysNoSamples) {
  LatencyHistogram empty;
  for (const auto& series : {std::vector<ChartSeries>{{"idle", &empty}}, std::vector<ChartSeries>{}}) {
    const std::string svg = latency_chart_svg("nothing", series);
    EXPECT_NE(svg.find(">no samples</text>"), std::string::npos);
    EXPECT_EQ(svg.find("<path"), std::string::npos);
    EXPECT_EQ(svg.find("stroke-dasharray"), std::string::npos);
    EXPECT_TRUE(svg.ends_with("</svg>\n"));
  }
}

TEST(LatencyChart, XAxisTicksCoverTheData) {
  LatencyHistogram h;
  h.record(1'000'000);      // 1 ms
  h.record(40'000'000);     // 40 ms
  h.record(2'000'000'000);  // 2 s
  const std::string svg = latency_chart_svg("t", {{"run", &h}});
  for (const char* tick : {"1", "10", "100", "1000", "10000"}) {
    EXPECT_EQ(count_of(svg, std::string(">") + tick + "</text>"), 1U) << tick;
  }
  EXPECT_EQ(svg.find(">0.1</text>"), std::string::npos);  // starts at the data, not a decade early
  EXPECT_EQ(svg.find(">100000</text>"), std::string::npos);

  LatencyHistogram fast;
  fast.record(150'000);  // 0.15 ms
  fast.record(300'000);
  const std::string fast_svg = latency_chart_svg("t", {{"run", &fast}});
  EXPECT_NE(fast_svg.find(">0.1</text>"), std::string::npos);
  EXPECT_NE(fast_svg.find(">1</text>"), std::string::npos);
  EXPECT_EQ(fast_svg.find(">10</text>"), std::string::npos);
}

}  // namespace
}  // namespace chatorbit::bench
