#pragma once
// The HTTP front door: one acceptor per event loop (SO_REUSEPORT, so the kernel spreads
// connections across loops), a coroutine per connection reading requests with Beast,
// routing them, and writing responses with keep-alive, CORS, request ids and metrics.
// WebSocket upgrades are handed to a registered UpgradeHandler with the socket.

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/event_loops.hpp"
#include "net/metrics.hpp"
#include "net/router.hpp"

namespace chatorbit::http {

struct ServerOptions {
  std::string bind = "0.0.0.0";
  int port = 8080;
  std::size_t max_body_bytes = 64 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::chrono::seconds idle_timeout{60};
  std::chrono::seconds read_timeout{10};
  std::vector<std::string> cors_origins;  ///< exact origins; empty = "*" without credentials
};

/// Called on the connection's loop for a GET with "Upgrade: websocket" on a registered
/// path. It takes over the stream (and any bytes already read, in `buffer`).
using UpgradeHandler =
    std::function<void(boost::beast::tcp_stream stream, boost::beast::flat_buffer buffer, Request req, Context& ctx)>;

class HttpServer {
 public:
  HttpServer(ServerOptions options, net::EventLoops& loops, const Router& router, Metrics& metrics);
  ~HttpServer();

  /// Routes WebSocket upgrade requests for `path` to `handler`. Call before start().
  void add_upgrade(std::string path, UpgradeHandler handler);

  /// Binds and starts accepting on every loop. Returns the bound port (useful with 0).
  /// Throws std::system_error if the address cannot be bound.
  int start();
  /// Stops accepting, closes idle keep-alive connections, and lets requests in flight
  /// finish; connections close after their current response. Thread-safe.
  void begin_drain();
  /// True once begin_drain() was called.
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

  /// Whether `origin` may make credentialed requests (exact match against the allowlist).
  bool origin_allowed(std::string_view origin) const;

 private:
  struct LoopState;
  boost::asio::awaitable<void> accept_loop(LoopState& state);
  boost::asio::awaitable<void> session(LoopState& state, boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<Response> dispatch(Context& ctx);
  Response preflight(Context& ctx, const std::vector<bhttp::verb>& allowed) const;
  void finish_response(Context& ctx, Response& res, bool keep_alive) const;

  ServerOptions options_;
  net::EventLoops& loops_;
  const Router& router_;
  Metrics& metrics_;
  std::vector<std::pair<std::string, UpgradeHandler>> upgrades_;
  std::vector<std::unique_ptr<LoopState>> states_;
  std::atomic<bool> draining_{false};
  std::atomic<std::uint64_t> request_counter_{0};
};

}  // namespace chatorbit::http
