#include "chart.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <optional>
#include <string_view>
#include <utility>

namespace chatorbit::bench {
namespace {

// Canvas and plot area, in SVG user units. The legend sits in a column right of the plot,
// so it never hides a curve or a marker.
constexpr double kWidth = 900;
constexpr double kHeight = 480;
constexpr double kLeft = 70;
constexpr double kRight = 680;
constexpr double kTop = 50;
constexpr double kBottom = 410;
constexpr double kLegendX = 700;
constexpr int kBinsPerDecade = 10;
// Colour-blind-safe palette (Okabe-Ito); series beyond it reuse its colours.
constexpr std::string_view kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                         "#E69F00", "#56B4E9", "#000000", "#F0E442"};

std::string_view colour_of(std::size_t series) { return kColours[series % std::size(kColours)]; }

// `v` with `decimals` digits after the point. to_chars: no locale, no exponent.
std::string fixed(double v, int decimals = 1) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  return std::string(buf, r.ptr);
}

// `v` (>= 0) with `digits` significant digits (more when it has more integer digits),
// trailing zeros and point dropped.
std::string significant(double v, int digits) {
  const int magnitude = v > 0 ? static_cast<int>(std::floor(std::log10(v))) : 0;
  std::string s = fixed(v, std::max(0, digits - 1 - magnitude));
  if (s.find('.') != std::string::npos) {
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

// `attributes` are trusted constants; coordinates and content are not.
void add_line(std::string& out, double x1, double y1, double x2, double y2, std::string_view attributes) {
  out += "<line x1=\"" + fixed(x1) + "\" y1=\"" + fixed(y1) + "\" x2=\"" + fixed(x2) + "\" y2=\"" + fixed(y2) + "\" " +
         std::string(attributes) + "/>\n";
}

void add_text(std::string& out, double x, double y, std::string_view content, std::string_view attributes = "") {
  out += "<text x=\"" + fixed(x) + "\" y=\"" + fixed(y) + "\"" + (attributes.empty() ? "" : " ") +
         std::string(attributes) + ">" + xml_escape(content) + "</text>\n";
}

// Maps nanoseconds and shares to the plot area: x over whole decades of milliseconds,
// y from 0 to `y_top` percent.
struct Plot {
  int first_decade = 0;  // log10 of the leftmost tick in ms
  int last_decade = 1;
  double y_top = 1;  // percent
  double y_step = 1;

  double x(double ns) const {
    const double decades = std::log10(std::max(ns, 1.0) / 1e6) - first_decade;
    return std::clamp(kLeft + decades / (last_decade - first_decade) * (kRight - kLeft), kLeft, kRight);
  }
  double y(double share) const { return kBottom - share * 100 / y_top * (kBottom - kTop); }
};

// The axes' ranges covering every series, or nothing when no series has a sample.
std::optional<Plot> make_plot(const std::vector<ChartSeries>& series, const std::vector<std::vector<ChartBin>>& bins) {
  bool any = false;
  double lo_ms = 0, hi_ms = 0, top_share = 0;
  for (std::size_t i = 0; i < series.size(); ++i) {
    if (bins[i].empty()) continue;
    const double min_ms = std::max<double>(series[i].histogram->min(), 1.0) / 1e6;
    const double max_ms = std::max<double>(series[i].histogram->max(), 1.0) / 1e6;
    lo_ms = any ? std::min(lo_ms, min_ms) : min_ms;
    hi_ms = any ? std::max(hi_ms, max_ms) : max_ms;
    for (const auto& bin : bins[i]) top_share = std::max(top_share, bin.share);
    any = true;
  }
  if (!any) return std::nullopt;
  Plot plot;
  // The epsilon keeps an exact power of ten (1 ms, 1000 ms) from widening the axis.
  plot.first_decade = static_cast<int>(std::floor(std::log10(lo_ms) + 1e-9));
  plot.last_decade = std::max(static_cast<int>(std::ceil(std::log10(hi_ms) - 1e-9)), plot.first_decade + 1);
  // About five gridlines at 1, 2 or 5 times a power of ten.
  const double raw_step = std::max(top_share * 100, 1e-6) / 5;
  const double power = std::pow(10.0, std::floor(std::log10(raw_step)));
  for (const double multiple : {1.0, 2.0, 5.0, 10.0}) {
    plot.y_step = multiple * power;
    if (raw_step <= plot.y_step) break;
  }
  plot.y_top = std::ceil(top_share * 100 / plot.y_step - 1e-9) * plot.y_step;
  return plot;
}

void draw_axes(std::string& out, const Plot& plot) {
  constexpr std::string_view kGrid = R"(stroke="#dddddd")";
  for (int i = 0; plot.y_step * i <= plot.y_top * (1 + 1e-9); ++i) {
    const double percent = plot.y_step * i;
    const double y = plot.y(percent / 100);
    add_line(out, kLeft, y, kRight, y, kGrid);
    add_text(out, kLeft - 6, y + 4, significant(percent, 3) + "%", R"(text-anchor="end")");
  }
  for (int decade = plot.first_decade; decade <= plot.last_decade; ++decade) {
    const double ns = std::pow(10.0, decade) * 1e6;
    const double x = plot.x(ns);
    add_line(out, x, kTop, x, kBottom, kGrid);
    add_text(out, x, kBottom + 18, significant(ns / 1e6, 3), R"(text-anchor="middle")");
    for (int m = 2; m <= 9 && decade < plot.last_decade; ++m) {
      add_line(out, plot.x(m * ns), kBottom, plot.x(m * ns), kBottom + 4, R"(stroke="#666666")");
    }
  }
  add_text(out, (kLeft + kRight) / 2, kBottom + 40, "latency (ms, log scale)", R"(text-anchor="middle")");
  const double mid_y = (kTop + kBottom) / 2;
  add_text(out, 20, mid_y, "share of samples (%)",
           "text-anchor=\"middle\" transform=\"rotate(-90 20 " + fixed(mid_y) + ")\"");
}

// A step line: up to each bin's share across the bin, down to the axis at both ends.
void draw_series(std::string& out, const Plot& plot, const std::vector<ChartBin>& bins, std::string_view colour) {
  std::string d = "M" + fixed(plot.x(static_cast<double>(bins.front().low_ns))) + "," + fixed(kBottom);
  for (const auto& bin : bins) {
    d += " V" + fixed(plot.y(bin.share)) + " H" + fixed(plot.x(static_cast<double>(bin.high_ns) + 1));
  }
  d += " V" + fixed(kBottom);
  out += "<path d=\"" + d + "\" fill=\"none\" stroke=\"" + std::string(colour) + "\" stroke-width=\"1.5\"/>\n";
}

// Dashed verticals at p50, p99, p99.9 and max, labels stacked so close values stay legible.
void draw_markers(std::string& out, const Plot& plot, const LatencyHistogram& histogram) {
  const std::pair<std::string_view, std::uint64_t> markers[] = {{"p50", histogram.percentile(50)},
                                                                {"p99", histogram.percentile(99)},
                                                                {"p99.9", histogram.percentile(99.9)},
                                                                {"max", histogram.max()}};
  double label_y = kTop + 14;
  for (const auto& [name, ns] : markers) {
    const double x = plot.x(static_cast<double>(ns));
    add_line(out, x, kTop, x, kBottom, R"(stroke="#444444" stroke-dasharray="4 3")");
    const bool near_right = x > kRight - 90;
    add_text(out, near_right ? x - 4 : x + 4, label_y, std::string(name) + " " + format_ms(ns) + " ms",
             near_right ? R"(text-anchor="end" fill="#444444")" : R"(fill="#444444")");
    label_y += 15;
  }
}

void draw_legend(std::string& out, const std::vector<ChartSeries>& series) {
  double y = kTop + 10;
  for (std::size_t i = 0; i < series.size(); ++i) {
    const std::uint64_t n = series[i].histogram ? series[i].histogram->count() : 0;
    const std::string colour(colour_of(i));
    add_line(out, kLegendX, y - 4, kLegendX + 20, y - 4, "stroke=\"" + colour + "\" stroke-width=\"3\"");
    add_text(out, kLegendX + 26, y, series[i].label);
    add_text(out, kLegendX + 26, y + 15, n ? std::to_string(n) + " samples" : "no samples", R"(fill="#666666")");
    y += 38;
  }
}

}  // namespace

std::vector<ChartBin> latency_bins(const LatencyHistogram& histogram, int bins_per_decade) {
  std::vector<ChartBin> bins;
  if (histogram.count() == 0) return bins;
  const double per_decade = std::max(bins_per_decade, 1);
  // A bucket joins the bin its low end falls in; the epsilon keeps 10^k in bin k.
  const auto bin_of = [per_decade](std::size_t bucket) {
    const double low = std::max<double>(LatencyHistogram::bucket_low(bucket), 1.0);
    return static_cast<long>(std::floor(std::log10(low) * per_decade + 1e-9));
  };
  long current = 0;
  const std::size_t last = LatencyHistogram::bucket_of(histogram.max());
  for (std::size_t b = LatencyHistogram::bucket_of(histogram.min()); b <= last; ++b) {
    if (bins.empty() || bin_of(b) != current) {
      bins.push_back({LatencyHistogram::bucket_low(b), 0, 0.0});
      current = bin_of(b);
    }
    bins.back().high_ns = LatencyHistogram::bucket_high(b);
    bins.back().share += static_cast<double>(histogram.bucket_count_at(b));
  }
  // Values past the histogram's range all sit in its top bucket; max() is still exact.
  bins.back().high_ns = std::max(bins.back().high_ns, histogram.max());
  for (auto& bin : bins) bin.share /= static_cast<double>(histogram.count());
  return bins;
}

std::string format_ms(std::uint64_t ns) { return significant(static_cast<double>(ns) / 1e6, 3); }

std::string latency_chart_svg(const std::string& title, const std::vector<ChartSeries>& series) {
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                    fixed(kWidth, 0) + "\" height=\"" + fixed(kHeight, 0) + "\" viewBox=\"0 0 " + fixed(kWidth, 0) +
                    " " + fixed(kHeight, 0) + "\" font-family=\"sans-serif\" font-size=\"12\">\n" +
                    "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  add_text(out, kLeft, 30, title, R"(font-size="16" font-weight="bold")");
  draw_legend(out, series);

  std::vector<std::vector<ChartBin>> bins;
  for (const auto& s : series) {
    bins.push_back(s.histogram ? latency_bins(*s.histogram, kBinsPerDecade) : std::vector<ChartBin>{});
  }
  if (const auto plot = make_plot(series, bins)) {
    draw_axes(out, *plot);
    for (std::size_t i = 0; i < series.size(); ++i) {
      if (!bins[i].empty()) draw_series(out, *plot, bins[i], colour_of(i));
    }
    if (!bins.front().empty()) draw_markers(out, *plot, *series.front().histogram);
  } else {
    add_text(out, (kLeft + kRight) / 2, (kTop + kBottom) / 2, "no samples",
             R"(text-anchor="middle" font-size="16" fill="#666666")");
  }
  out += "<rect x=\"" + fixed(kLeft) + "\" y=\"" + fixed(kTop) + "\" width=\"" + fixed(kRight - kLeft) +
         "\" height=\"" + fixed(kBottom - kTop) + "\" fill=\"none\" stroke=\"#666666\"/>\n";
  out += "</svg>\n";
  return out;
}

}  // namespace chatorbit::bench
