#include "net/metrics.hpp"

#include <gtest/gtest.h>

namespace chatorbit::http {
namespace {

TEST(Metrics, RendersCountersHistogramAndGauges) {
  Metrics m;
  m.observe_request("/user/{id}", "GET", 200, 0.0007);
  m.observe_request("/user/{id}", "GET", 200, 0.3);
  m.observe_request("/user/{id}", "GET", 404, 0.002);
  m.connection_opened();
  m.add_gauge("chatorbit_test_gauge", "A test gauge.", [] { return 42.0; });
  const auto text = m.render();
  EXPECT_NE(text.find("chatorbit_http_requests_total{route=\"/user/{id}\",method=\"GET\",status=\"200\"} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("status=\"404\"} 1"), std::string::npos);
  EXPECT_NE(text.find("chatorbit_http_request_duration_seconds_bucket{route=\"/user/{id}\",le=\"0.001\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("le=\"+Inf\"} 3"), std::string::npos);
  EXPECT_NE(text.find("chatorbit_http_request_duration_seconds_count{route=\"/user/{id}\"} 3"), std::string::npos);
  EXPECT_NE(text.find("chatorbit_http_open_connections 1"), std::string::npos);
  EXPECT_NE(text.find("# TYPE chatorbit_test_gauge gauge\nchatorbit_test_gauge 42"), std::string::npos);
}

TEST(Metrics, EscapesLabelValues) {
  Metrics m;
  m.observe_request("a\"b\\c", "GET", 200, 0.1);
  EXPECT_NE(m.render().find("route=\"a\\\"b\\\\c\""), std::string::npos);
}

}  // namespace
}  // namespace chatorbit::http
