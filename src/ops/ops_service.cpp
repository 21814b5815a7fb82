#include "ops/ops_service.hpp"

#include <fstream>
#include <sstream>

#include "core/log.hpp"

namespace chatorbit::ops {

using http::Status;
namespace asio = boost::asio;

namespace {

constexpr std::string_view kSwaggerIndex = R"(<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>ChatOrbit API</title>
  <link rel="stylesheet" href="swagger-ui.css">
  <link rel="icon" type="image/png" href="favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="swagger-ui-bundle.js"></script>
  <script src="swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "doc.json",
      dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  </script>
</body>
</html>
)";

struct StaticFile {
  std::string_view name;
  std::string_view content_type;
};
// Only these names are ever served: no path from the request reaches the file system.
constexpr StaticFile kSwaggerFiles[] = {
    {"swagger-ui.css", "text/css"},
    {"swagger-ui-bundle.js", "application/javascript"},
    {"swagger-ui-standalone-preset.js", "application/javascript"},
    {"favicon-32x32.png", "image/png"},
};

http::Response text_response(Status status, std::string_view content_type, std::string body) {
  http::Response res{status, 11};
  res.set(http::bhttp::field::content_type, content_type);
  res.body() = std::move(body);
  return res;
}

}  // namespace

void OpsService::register_routes(http::Router& router) {
  using verb = http::bhttp::verb;
  router.add(verb::get, "/healthz", [](http::Context&) -> asio::awaitable<http::Response> {
    co_return http::json_response(Status::ok, {{"status", "ok"}});
  });
  router.add(verb::get, "/readyz", [this](http::Context& c) { return ready(c); });
  router.add(verb::get, "/metrics", [this](http::Context&) -> asio::awaitable<http::Response> {
    co_return text_response(Status::ok, "text/plain; version=0.0.4; charset=utf-8", d_.metrics.render());
  });
  router.add(verb::get, "/swagger/doc.json", [](http::Context&) -> asio::awaitable<http::Response> {
    co_return text_response(Status::ok, "application/json; charset=utf-8", std::string(openapi_document()));
  });
  router.add(verb::get, "/swagger/index.html", [](http::Context&) -> asio::awaitable<http::Response> {
    co_return text_response(Status::ok, "text/html; charset=utf-8", std::string(kSwaggerIndex));
  });
  router.add(verb::get, "/swagger", [](http::Context&) -> asio::awaitable<http::Response> {
    auto res = text_response(Status::moved_permanently, "text/plain", "");
    res.set(http::bhttp::field::location, "/swagger/index.html");
    co_return res;
  });
  router.add(verb::get, "/swagger/{file}",
             [this](http::Context& c) -> asio::awaitable<http::Response> { co_return swagger_file(c); });
}

asio::awaitable<http::Response> OpsService::ready(http::Context&) {
  if (d_.draining && d_.draining()) co_return http::error_response(Status::service_unavailable, "shutting down");
  if (d_.store) {
    try {
      auto probe = [](store::Store& s) { return s.find_room("").has_value(); };
      co_await d_.store->run(std::move(probe));
    } catch (const std::exception& e) {
      log::warn("readiness_store_failed", {{"what", e.what()}});
      co_return http::error_response(Status::service_unavailable, "storage unavailable");
    }
  }
  if (d_.broker) {
    if (const auto health = d_.broker(); !health.up) {
      co_return http::error_response(Status::service_unavailable, "broker unavailable", {{"detail", health.detail}});
    }
  }
  co_return http::json_response(Status::ok, {{"status", "ready"}});
}

http::Response OpsService::swagger_file(http::Context& ctx) const {
  const auto name = ctx.param("file");
  for (const auto& f : kSwaggerFiles) {
    if (f.name != name) continue;
    std::ifstream in(d_.swagger_ui_dir + "/" + std::string(f.name), std::ios::binary);
    if (!in) {
      return http::error_response(Status::service_unavailable, "Swagger UI files are not installed",
                                  {{"detail", "expected in " + d_.swagger_ui_dir + "; run ./dev setup and rebuild"}});
    }
    std::ostringstream body;
    body << in.rdbuf();
    auto res = text_response(Status::ok, f.content_type, body.str());
    res.set(http::bhttp::field::cache_control, "public, max-age=3600");
    return res;
  }
  return http::error_response(Status::not_found, "not found");
}

}  // namespace chatorbit::ops
