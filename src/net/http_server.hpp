#pragma once
// The HTTP front door: one acceptor per event loop (SO_REUSEPORT, so the kernel spreads
// connections across loops), a coroutine per connection reading requests with Beast,
// routing them, and writing responses with keep-alive, CORS, request ids and metrics.
// WebSocket upgrades are handed to a registered UpgradeHandler with the socket.
// Connections are served as their loop's background work (net/background.hpp): requests
// and handshakes yield to the live traffic of the WebSocket sessions already open.

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/client_address.hpp"
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
  std::vector<std::string> cors_origins;  ///< exact origins; empty = loopback ones (http::cors_origin_allowed())
  /// The cookie that carries a session. A state-changing request authenticated by it
  /// (and not by a bearer token) must send JSON and, with an allowlist, come from a listed
  /// Origin: see refuse_cookie_write(). Empty: no such cookie.
  std::string session_cookie = "token";
  /// Open connections (HTTP here plus those counted by set_external_connections()) past
  /// which new ones are refused with 503; 0 = no cap. Keep it below the open-file limit,
  /// so that accept() itself never fails for want of a descriptor.
  std::int64_t max_connections = 0;
  /// Open HTTP connections per client address past which new ones are refused with 429
  /// at once; 0 = no cap. (WebSocket sessions have their own cap, in the chat service.)
  /// Counted per socket peer, since no header has been read yet; a peer in
  /// trusted_proxies (a gateway, whose connections carry many clients) is not capped.
  int max_connections_per_ip = 0;
  /// Peers whose X-Forwarded-For is believed: Context::client_ip is then the client it
  /// names (net::client_address), for handlers, per-address limits and logs.
  net::AddressSet trusted_proxies;
  /// Connections accepted beyond max_connections that may only ask for /healthz, /readyz
  /// or /metrics (one request each, within probe_timeout): monitoring keeps answering
  /// under a flood.
  int probe_slots = 32;
  std::chrono::seconds probe_timeout{2};
};

/// Called on the connection's loop for a GET with a registered path and "Upgrade"
/// protocol. It takes over the stream (and any bytes already read, in `buffer`).
using UpgradeHandler =
    std::function<void(boost::beast::tcp_stream stream, boost::beast::flat_buffer buffer, Request req, Context& ctx)>;

/// Writes `res` with "Connection: close", then closes the connection gracefully: what
/// the peer still sends is read (a bounded amount, for a bounded time) and dropped, so
/// that the close cannot reset the connection before the response is read.
boost::asio::awaitable<void> write_and_close(boost::beast::tcp_stream& stream, Response res);

class HttpServer {
 public:
  HttpServer(ServerOptions options, net::EventLoops& loops, const Router& router, Metrics& metrics);
  ~HttpServer();

  /// Routes upgrade requests for `path` with "Upgrade: <protocol>" to `handler`. Call
  /// before start().
  void add_upgrade(std::string path, UpgradeHandler handler, std::string protocol = "websocket");

  /// Binds and starts accepting on every loop. Returns the bound port (useful with 0).
  /// Throws std::system_error if the address cannot be bound.
  int start();
  /// Stops accepting, closes idle keep-alive connections, and lets requests in flight
  /// finish; connections close after their current response. Thread-safe.
  void begin_drain();
  /// True once begin_drain() was called.
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

  /// Connections that count against max_connections but live elsewhere (the WebSocket
  /// sessions, once upgraded). Call before start(); `f` must be thread-safe.
  void set_external_connections(std::function<std::int64_t()> f) { external_connections_ = std::move(f); }

 private:
  struct LoopState;
  /// How a new connection is let in (see admit()).
  enum class Admission : std::uint8_t { full, probe, refused_capacity, refused_address };
  /// Counts a new connection from `ip` in, or says why not. Thread-safe.
  Admission admit(const std::string& ip);
  /// Undoes admit() when the connection closes or is handed to a WebSocket session.
  void release(const std::string& ip, Admission how);
  boost::asio::awaitable<void> accept_loop(LoopState& state);
  boost::asio::awaitable<void> session(LoopState& state, boost::asio::ip::tcp::socket socket, std::string client_ip,
                                       Admission how);
  boost::asio::awaitable<Response> dispatch(Context& ctx);
  Response preflight(Context& ctx, const std::vector<bhttp::verb>& allowed) const;
  /// Cross-site request forgery: a page on another site can make the browser send a
  /// form or a "simple" fetch (text/plain, no preflight) with the session cookie. Such
  /// requests are refused: 403 unless the Origin is allowed, 415 unless the body is
  /// declared JSON (which a page can only send after a CORS preflight).
  std::optional<Response> refuse_cookie_write(const Context& ctx) const;
  void finish_response(Context& ctx, Response& res, bool keep_alive) const;

  ServerOptions options_;
  net::EventLoops& loops_;
  const Router& router_;
  Metrics& metrics_;
  struct Upgrade {
    std::string path;
    std::string protocol;
    UpgradeHandler handler;
  };
  std::vector<Upgrade> upgrades_;
  std::vector<std::unique_ptr<LoopState>> states_;
  std::atomic<bool> draining_{false};
  std::function<std::int64_t()> external_connections_;
  std::mutex admit_mu_;
  std::int64_t open_ = 0;                             ///< admitted as full connections (guarded by admit_mu_)
  int probes_open_ = 0;                               ///< admitted as probes (guarded by admit_mu_)
  std::unordered_map<std::string, int> open_per_ip_;  ///< guarded by admit_mu_
  std::atomic<std::uint64_t> request_counter_{0};
};

}  // namespace chatorbit::http
