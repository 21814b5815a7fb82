#pragma once
// Process metrics in the Prometheus text format (version 0.0.4), served at /metrics.
// Thread-safe: event loops record into it concurrently; a scrape takes the lock once.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace chatorbit::http {

class Metrics {
 public:
  /// Upper bounds (seconds) of the request latency histogram's buckets.
  static constexpr std::array<double, 12> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                             0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

  /// Counts one finished HTTP request. `route` is the matched pattern ("unmatched" if none).
  void observe_request(std::string_view route, std::string_view method, unsigned status, double seconds);
  void connection_opened() { open_connections_.fetch_add(1, std::memory_order_relaxed); }
  void connection_closed() { open_connections_.fetch_sub(1, std::memory_order_relaxed); }
  std::int64_t open_connections() const { return open_connections_.load(std::memory_order_relaxed); }

  /// Registers a value read at scrape time (e.g. WebSocket sessions). Call before serving.
  void add_gauge(std::string name, std::string help, std::function<double()> read);
  /// Registers a monotonically increasing value read at scrape time. Call before serving.
  void add_counter(std::string name, std::string help, std::function<double()> read);

  /// The whole exposition, ready to serve.
  std::string render() const;

 private:
  struct Histogram {
    std::array<std::uint64_t, kLatencyBuckets.size()> buckets{};
    std::uint64_t count = 0;
    double sum = 0;
  };
  struct Callback {
    std::string name, help, type;
    std::function<double()> read;
  };

  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, unsigned>, std::uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  std::vector<Callback> callbacks_;
  std::atomic<std::int64_t> open_connections_{0};
};

}  // namespace chatorbit::http
