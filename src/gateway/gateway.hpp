#pragma once
// The gateway role: one entry point in front of auth, user and the chat nodes.
//
// - REST: the contract's routes (gateway/routes.hpp) are forwarded to their service over
//   kept-alive connections (a pool per event loop and upstream); a chat request goes to
//   the next healthy node in turn, and to another if the first cannot be reached.
//   Answers: the service's own, or 503 (nobody to send it to), 502 (the service broke
//   off) or 504 (no answer within CHATORBIT_UPSTREAM_TIMEOUT), each with a JSON body.
// - WebSocket: the upgrade goes to the healthy chat node with the fewest viewers. Where
//   this loop has a link up to that node (gateway/chat_links.hpp), the viewer becomes a
//   session of the link: many viewers' bytes share each system call, and credits bound
//   what the gateway holds per viewer. Otherwise it gets a tunnel: after the 101, bytes
//   are relayed both ways through one bounded buffer per direction. A direction reads
//   only once its last bytes are written, so a slow viewer holds the chat node's writes
//   back (where its own bounded queue applies) instead of filling the gateway's memory.
// - The edge: a route that needs a caller, and any WebSocket that presents a token, is
//   refused here unless the token is valid and not revoked; requests and new tunnels are
//   limited per client address (through the engine, so that several gateways on one
//   Redis share the count; if Redis is away, the edge lets requests through and the
//   services' own limits still hold). Every forwarded request carries X-Forwarded-For
//   (the client) and X-Request-Id (passed through or created here).
// - Health: every chat node's /readyz is asked every CHATORBIT_HEALTH_INTERVAL_MS; a
//   node that fails the check, or refuses a connection, is out until it passes one. A
//   node that is shutting down fails its check and refuses connections at once, so its
//   viewers' reconnections land on the others.
//
// Threading: handlers run on the event loop of their connection; a tunnel and its two
// relays live on that loop. The health checks run on the loops too.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "auth/authenticator.hpp"
#include "core/config.hpp"
#include "engine/engine.hpp"
#include "gateway/upstreams.hpp"
#include "net/event_loops.hpp"
#include "net/metrics.hpp"
#include "net/router.hpp"

namespace chatorbit::gateway {

struct GatewayOptions {
  Endpoint auth;
  Endpoint user;
  std::vector<Endpoint> chat;
  std::chrono::seconds upstream_timeout{10};
  std::chrono::milliseconds health_interval{1000};
  std::chrono::milliseconds connect_timeout{2000};
  /// A tunnel in which neither side has sent anything for this long is closed (chat
  /// nodes ping every CHATORBIT_PING_INTERVAL, so only a dead path is this quiet).
  std::chrono::seconds tunnel_idle{60};
  /// Longest a write to one side of a tunnel may wait (a viewer that stopped reading).
  std::chrono::seconds write_timeout{30};
  RateSpec request_rate;  ///< REST requests per client address; count 0 = none
  RateSpec connect_rate;  ///< new tunnels per client address
  int max_tunnels_per_address = 1000;
  /// Links each event loop keeps to each chat node (gateway/chat_links.hpp); 0: every
  /// viewer gets a tunnel of its own.
  int links_per_node = 2;
  std::size_t max_response_bytes = 16 * 1024 * 1024;

  /// From the gateway's settings; throws ConfigError if a service's address is missing
  /// or malformed.
  static GatewayOptions from(const Config& config);
};

struct GatewayDeps {
  net::EventLoops& loops;
  engine::Engine& engine;
  const auth::Authenticator& authenticator;
  http::Metrics& metrics;
};

class GatewayService {
 public:
  GatewayService(GatewayOptions options, GatewayDeps deps);
  /// Call once the loops have stopped, before they are destroyed.
  ~GatewayService();
  GatewayService(const GatewayService&) = delete;
  GatewayService& operator=(const GatewayService&) = delete;

  /// The forwarded routes. Call before the server starts.
  void register_routes(http::Router& router);
  /// The UpgradeHandler for /ws/chat.
  void upgrade(boost::beast::tcp_stream stream, boost::beast::flat_buffer buffer, http::Request req,
               http::Context& ctx);
  /// Starts the health checks. Call once the loops run (or before: they start with them).
  void start();
  /// Stops the health checks and closes every tunnel (their viewers reconnect, to
  /// another gateway). Thread-safe; returns at once; tunnels() falls to 0 soon after.
  void stop();
  /// Open tunnels and viewers on links (they count against CHATORBIT_MAX_CONNECTIONS).
  /// Thread-safe.
  std::int64_t tunnels() const;

  const ChatNodes& chat_nodes() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace chatorbit::gateway
