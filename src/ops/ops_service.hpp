#pragma once
// Operational routes served by every role: /healthz (the process is up), /readyz (it
// can serve: store reachable, not draining), /metrics (Prometheus), and the API docs
// (/swagger/doc.json, /swagger/index.html and Swagger UI's static files).

#include <functional>
#include <string>

#include "engine/engine.hpp"
#include "net/metrics.hpp"
#include "net/router.hpp"
#include "store/store_worker.hpp"

namespace chatorbit::ops {

struct OpsDeps {
  store::StoreWorker* store;  ///< null if this process has no store
  http::Metrics& metrics;
  std::function<bool()> draining;
  /// The engine's broker, as /readyz reports it; null: not asked.
  std::function<engine::BrokerHealth()> broker;
  std::string swagger_ui_dir;
};

class OpsService {
 public:
  explicit OpsService(OpsDeps deps) : d_(std::move(deps)) {}
  void register_routes(http::Router& router);

 private:
  boost::asio::awaitable<http::Response> ready(http::Context& ctx);
  http::Response swagger_file(http::Context& ctx) const;

  OpsDeps d_;
};

/// The OpenAPI 3 document (docs/openapi.json, embedded at build time).
std::string_view openapi_document();

}  // namespace chatorbit::ops
