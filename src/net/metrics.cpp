#include "net/metrics.hpp"

#include <cstdio>

namespace chatorbit::http {
namespace {

// Label values are escaped as the exposition format requires (backslash, quote, newline).
void append_label(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

void Metrics::observe_request(std::string_view route, std::string_view method, unsigned status, double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{std::string(route), std::string(method), status}];
  auto& h = latency_[std::string(route)];
  for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

void Metrics::add_gauge(std::string name, std::string help, std::function<double()> read) {
  std::lock_guard lock(mu_);
  callbacks_.push_back({std::move(name), std::move(help), "gauge", std::move(read)});
}

void Metrics::add_counter(std::string name, std::string help, std::function<double()> read) {
  std::lock_guard lock(mu_);
  callbacks_.push_back({std::move(name), std::move(help), "counter", std::move(read)});
}

std::string Metrics::render() const {
  std::string out;
  out.reserve(4096);
  std::lock_guard lock(mu_);
  out += "# HELP chatorbit_http_requests_total HTTP requests by route, method and status.\n";
  out += "# TYPE chatorbit_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [route, method, status] = key;
    out += "chatorbit_http_requests_total{route=\"";
    append_label(out, route);
    out += "\",method=\"";
    append_label(out, method);
    out += "\",status=\"" + std::to_string(status) + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP chatorbit_http_request_duration_seconds HTTP request latency by route.\n";
  out += "# TYPE chatorbit_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    std::string label;
    append_label(label, route);
    for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      out += "chatorbit_http_request_duration_seconds_bucket{route=\"" + label + "\",le=\"" +
             number(kLatencyBuckets[i]) + "\"} " + std::to_string(h.buckets[i]) + "\n";
    }
    out += "chatorbit_http_request_duration_seconds_bucket{route=\"" + label + "\",le=\"+Inf\"} " +
           std::to_string(h.count) + "\n";
    out += "chatorbit_http_request_duration_seconds_sum{route=\"" + label + "\"} " + number(h.sum) + "\n";
    out += "chatorbit_http_request_duration_seconds_count{route=\"" + label + "\"} " + std::to_string(h.count) + "\n";
  }
  out += "# HELP chatorbit_http_open_connections Open HTTP (and WebSocket) connections.\n";
  out += "# TYPE chatorbit_http_open_connections gauge\n";
  out += "chatorbit_http_open_connections " + std::to_string(open_connections()) + "\n";
  for (const auto& c : callbacks_) {
    out += "# HELP " + c.name + " " + c.help + "\n# TYPE " + c.name + " " + c.type + "\n";
    out += c.name + " " + number(c.read()) + "\n";
  }
  return out;
}

}  // namespace chatorbit::http
