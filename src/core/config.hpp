#pragma once
// Start-up configuration. Every setting has one row in a table (config.cpp) that
// gives its environment variable, its flag, its default and its help text; --help
// and the README's table come from that row, so they cannot drift apart.
// Precedence: defaults < environment < flags. Bad values fail start-up with a
// message naming the variable.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace chatorbit {

/// A sliding-window limit such as "20/30s": at most `count` events per `window`.
struct RateSpec {
  int count = 0;
  std::chrono::seconds window{0};
};

/// How the Redis engine talks to its servers (engine/redis/). Every field is a setting.
struct RedisSettings {
  std::chrono::milliseconds connect_timeout{2000};  ///< TCP connect + handshake
  /// A request (command or probe) unanswered this long means the server is gone.
  std::chrono::milliseconds command_timeout{2000};
  std::chrono::milliseconds probe_interval{1000};  ///< PING after this long without traffic
  std::chrono::milliseconds backoff_min{50};       ///< first reconnect delay, doubled each failure
  std::chrono::milliseconds backoff_max{2000};
  std::size_t pipeline_depth = 65536;  ///< commands in flight per connection; more wait their turn
  std::string key_prefix;              ///< before every key and channel (several deployments on one Redis)
};

/// How the MongoDB store writes and waits (store/mongo/). Every field is a setting;
/// options in MONGO_URL itself (w=, journal=, serverSelectionTimeoutMS=, ...) win.
struct MongoSettings {
  std::string write_concern = "majority";  ///< "majority" or a number of members (0 = unacknowledged)
  bool journal = true;                     ///< acknowledged only once in the journal
  /// Server selection and TCP connect: how long a call waits for a server that is gone.
  std::chrono::milliseconds timeout{2000};
  /// A reply not read this long means the server stalled: the call fails.
  std::chrono::milliseconds socket_timeout{10000};
};

struct Config {
  // process
  std::string roles = "all";  ///< comma-separated: all, auth, user, chat, gateway
  std::string bind = "0.0.0.0";
  int port = 8080;
  int threads = 0;  ///< event loops; 0 = one per core
  std::string data_dir = "./data";
  std::string log_level = "info";
  std::string environment;
  std::string swagger_ui_dir;  ///< empty = <directory of the binary>/swagger-ui

  // security
  std::string jwt_secret;  ///< empty: generated and kept in data_dir (role all only)
  std::chrono::seconds token_ttl{std::chrono::hours{24}};
  /// Also accept the original Go service's tokens (no iss, aud, jti), for the day of the
  /// switch from it (auth::JwtConfig::accept_legacy). Warned at start.
  bool accept_legacy_tokens = false;
  std::vector<std::string> admins;           ///< lower-cased emails
  std::vector<std::string> cors_origins;     ///< exact origins; empty = loopback origins (local development)
  int login_max_failures = 5;                ///< per account and address (lock), per account (delays)
  std::chrono::seconds login_max_delay{30};  ///< cap of the per-account delay after failures
  int login_ip_max_failures = 20;            ///< per client address, within login_window
  std::chrono::seconds login_window{900};
  /// Addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client
  /// (net/client_address.hpp); validated when parsed. Empty = nobody is believed.
  std::vector<std::string> trusted_proxies;

  // HTTP limits
  std::size_t max_body_bytes = 64 * 1024;
  std::chrono::seconds http_idle_timeout{60};
  std::chrono::seconds http_read_timeout{10};

  // chat
  bool anonymous_viewers = true;
  RateSpec rate_limit{20, std::chrono::seconds{30}};       ///< per user per room
  RateSpec mod_rate_limit{100, std::chrono::seconds{30}};  ///< moderators and admins
  int max_message_chars = 500;
  std::size_t ws_max_frame_bytes = 64 * 1024;
  std::size_t ws_max_queue_bytes = 1024 * 1024;  ///< per viewer; beyond it the viewer is dropped (4008)
  int max_connections_per_ip = 1000;             ///< WebSocket sessions per client address
  int max_http_connections_per_ip = 256;         ///< HTTP connections per client address
  std::int64_t max_connections = 0;              ///< 0: derived from the open-file limit (core/fd_limit.hpp)
  RateSpec connect_rate_per_ip{200, std::chrono::seconds{1}};
  int presence_events_max = 100;  ///< rooms larger than this get coalesced counts only
  std::chrono::seconds ping_interval{10};
  std::chrono::seconds idle_drop{25};
  std::chrono::seconds presence_ttl{30};
  std::chrono::milliseconds fanout_flush{20};  ///< delay fan-out writes to coalesce frames
  bool io_uring = true;                        ///< fan-out writes batched through io_uring
  /// How long a node holds a room's message for the numbers before it (another node's,
  /// still on their way) before it gives them up (chat/room_sequencer.hpp).
  std::chrono::milliseconds order_wait{300};

  /// WebSocket sessions a chat node closes per second (code 1012) when told to stop, so
  /// that its viewers reconnect elsewhere without arriving all at once.
  int drain_rate = 2000;

  // gateway (gateway/): where the services are, how they are watched, edge limits
  std::string auth_url;                ///< http://host:port of the auth service
  std::string user_url;                ///< http://host:port of the user service
  std::vector<std::string> chat_urls;  ///< host:port of each chat node
  std::chrono::seconds upstream_timeout{10};
  std::chrono::milliseconds health_interval{1000};
  int gateway_links = 2;  ///< links per event loop and chat node (0: a tunnel per viewer)
  RateSpec edge_request_rate{100, std::chrono::seconds{1}};  ///< per client address; count 0 = no limit

  // backends (selected by presence; parsed and chosen in engine/engine_factory.cpp and
  // store/store_factory.cpp)
  std::string mongo_url;
  MongoSettings mongo;
  std::string redis_addr;     ///< one Redis node: host:port or redis://[:password@]host:port[/db]
  std::string redis_cluster;  ///< Redis Cluster seed nodes: host:port,host:port,...
  RedisSettings redis;

  /// True if `role` ("auth", "user", "chat", "gateway") runs in this process.
  bool has_role(const std::string& role) const;
  /// True if the process runs every role (the embedded default).
  bool all_roles() const;
};

/// A configuration problem; the message says what to set.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Result of parsing the command line: either a config, or a request for help text.
struct ParsedArgs {
  Config config;
  bool help = false;
};

/// Builds the configuration from `env` (name → value) and `args` (argv without argv[0]).
/// Throws ConfigError on unknown flags or bad values.
ParsedArgs parse_config(const std::map<std::string, std::string>& env, const std::vector<std::string>& args);

/// The process environment as a map.
std::map<std::string, std::string> environment_map();

/// Help text listing every setting (flag, variable, default, meaning).
std::string config_help();
/// The same table as Markdown, for the README.
std::string config_markdown_table();

/// Parses "20/30s", "100/1m", "5/1h" or "20/30" (seconds). Throws ConfigError.
RateSpec parse_rate(const std::string& text, const std::string& name);
/// Parses "30", "30s", "5m", "1h", "500ms" (rounded up to seconds). Throws ConfigError.
std::chrono::seconds parse_duration(const std::string& text, const std::string& name);

}  // namespace chatorbit
