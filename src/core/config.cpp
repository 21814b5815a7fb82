#include "core/config.hpp"

#include <unistd.h>
#include <algorithm>
#include <charconv>
#include <functional>
#include <sstream>

#include "net/client_address.hpp"

extern char** environ;

namespace chatorbit {
namespace {

using Apply = std::function<void(Config&, const std::string& value, const std::string& name)>;

struct Setting {
  const char* env;   ///< environment variable
  const char* flag;  ///< command-line flag, without the leading dashes
  const char* def;   ///< default, as shown to users
  const char* help;
  Apply apply;
};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::vector<std::string> split_list(const std::string& s, bool to_lower) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    item = trim(item);
    if (!item.empty()) out.push_back(to_lower ? lower(item) : item);
  }
  return out;
}

long long parse_int(const std::string& text, const std::string& name, long long lo, long long hi) {
  long long v = 0;
  const auto* b = text.data();
  const auto* e = text.data() + text.size();
  auto [p, ec] = std::from_chars(b, e, v);
  if (ec != std::errc{} || p != e || v < lo || v > hi) {
    throw ConfigError(name + ": expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) +
                      ", got '" + text + "'");
  }
  return v;
}

bool parse_bool(const std::string& text, const std::string& name) {
  const auto l = lower(trim(text));
  if (l == "true" || l == "1" || l == "yes" || l == "on") return true;
  if (l == "false" || l == "0" || l == "no" || l == "off") return false;
  throw ConfigError(name + ": expected true or false, got '" + text + "'");
}

Apply ms_setting(std::chrono::milliseconds RedisSettings::*field, long long lo, long long hi) {
  return [=](Config& c, const std::string& v, const std::string& n) {
    c.redis.*field = std::chrono::milliseconds{parse_int(v, n, lo, hi)};
  };
}

Apply int_setting(int Config::*field, long long lo, long long hi) {
  return [=](Config& c, const std::string& v, const std::string& n) {
    c.*field = static_cast<int>(parse_int(v, n, lo, hi));
  };
}
Apply string_setting(std::string Config::*field) {
  return [=](Config& c, const std::string& v, const std::string&) { c.*field = v; };
}
Apply seconds_setting(std::chrono::seconds Config::*field) {
  return [=](Config& c, const std::string& v, const std::string& n) { c.*field = parse_duration(v, n); };
}

const std::vector<Setting>& settings() {
  static const std::vector<Setting> table = {
      {"CHATORBIT_ROLE", "role", "all", "roles this process runs: all, or a comma list of auth,user,chat,gateway",
       [](Config& c, const std::string& v, const std::string& n) {
         const auto roles = split_list(v, true);
         if (roles.empty()) throw ConfigError(n + ": no role given");
         for (const auto& r : roles) {
           if (r != "all" && r != "auth" && r != "user" && r != "chat" && r != "gateway") {
             throw ConfigError(n + ": unknown role '" + r + "' (expected all, auth, user, chat or gateway)");
           }
         }
         c.roles = lower(v);
       }},
      {"CHATORBIT_BIND", "bind", "0.0.0.0", "address to listen on", string_setting(&Config::bind)},
      {"PORT", "port", "8080", "TCP port to listen on (0 = any free port, logged at start)",
       int_setting(&Config::port, 0, 65535)},
      {"CHATORBIT_THREADS", "threads", "0", "event loops (0 = one per core)", int_setting(&Config::threads, 0, 256)},
      {"CHATORBIT_DATA_DIR", "data-dir", "./data", "directory for the SQLite database and the generated JWT secret",
       string_setting(&Config::data_dir)},
      {"LOG_LEVEL", "log-level", "info", "debug, info, warn or error",
       [](Config& c, const std::string& v, const std::string& n) {
         const auto l = lower(v);
         if (l != "debug" && l != "info" && l != "warn" && l != "warning" && l != "error") {
           throw ConfigError(n + ": expected debug, info, warn or error, got '" + v + "'");
         }
         c.log_level = l;
       }},
      {"ENVIRONMENT", "environment", "", "deployment name, logged at start (kept from the original)",
       string_setting(&Config::environment)},
      {"JWT_SECRET", "jwt-secret", "",
       "HS256 signing secret (32+ bytes advised, shorter is warned); required unless the role is all (then generated "
       "once and kept in "
       "the data directory)",
       string_setting(&Config::jwt_secret)},
      {"CHATORBIT_TOKEN_TTL", "token-ttl", "24h", "lifetime of issued tokens (1s to 100 years)",
       [](Config& c, const std::string& v, const std::string& n) {
         // auth::JwtCodec refuses a ttl outside (0, 100 years]; refused here instead, so
         // that start-up fails with a message naming the setting (found by fuzz/config).
         const auto ttl = parse_duration(v, n);
         if (ttl < std::chrono::seconds{1} || ttl > std::chrono::hours{24 * 365 * 100}) {
           throw ConfigError(n + ": expected a duration from 1s to 100 years (876000h), got '" + v + "'");
         }
         c.token_ttl = ttl;
       }},
      {"CHATORBIT_ACCEPT_LEGACY_TOKENS", "accept-legacy-tokens", "false",
       "also accept the original Go ChatOrbit's tokens (HS256 over JWT_SECRET with only user_id, email and exp), "
       "so that its signed-in users stay signed in after the switch; turn off once 24 h have passed (true or false)",
       [](Config& c, const std::string& v, const std::string& n) { c.accept_legacy_tokens = parse_bool(v, n); }},
      {"CHATORBIT_ADMINS", "admins", "", "comma-separated emails whose accounts have the admin role",
       [](Config& c, const std::string& v, const std::string&) { c.admins = split_list(v, true); }},
      {"CHATORBIT_CORS_ORIGINS", "cors-origins", "",
       "comma-separated exact origins allowed for CORS with credentials and for WebSocket Origin checks; empty = "
       "pages on localhost, 127.0.0.1 and [::1], any port (warned at start)",
       [](Config& c, const std::string& v, const std::string&) { c.cors_origins = split_list(v, false); }},
      {"CHATORBIT_TRUSTED_PROXIES", "trusted-proxies", "",
       "comma-separated addresses or CIDRs (10.0.0.0/8, ::1) of reverse proxies whose X-Forwarded-For names the "
       "client for per-address limits and logs (the rightmost address not in the list); empty = the socket's peer",
       [](Config& c, const std::string& v, const std::string& n) {
         auto list = split_list(v, false);
         std::string bad;
         if (!net::AddressSet::parse(list, &bad)) {
           throw ConfigError(n + ": '" + bad +
                             "' is not an IPv4/IPv6 address or CIDR (such as 10.0.0.0/8 or fd00::/8)");
         }
         c.trusted_proxies = std::move(list);
       }},
      {"CHATORBIT_LOGIN_MAX_FAILURES", "login-max-failures", "5",
       "failed logins per account from one address within the window, then that pair is locked; past it the account "
       "itself is slowed (see --login-max-delay)",
       int_setting(&Config::login_max_failures, 1, 1'000'000)},
      {"CHATORBIT_LOGIN_MAX_DELAY", "login-max-delay", "30s",
       "longest wait an account's failed logins impose on its next attempt from any address (1s, 2s, 4s, ...)",
       [](Config& c, const std::string& v, const std::string& n) {
         c.login_max_delay = parse_duration(v, n);
         if (c.login_max_delay.count() < 1) throw ConfigError(n + ": must be at least 1s");
       }},
      {"CHATORBIT_LOGIN_IP_MAX_FAILURES", "login-ip-max-failures", "20",
       "failed logins per client address within the window", int_setting(&Config::login_ip_max_failures, 1, 1'000'000)},
      {"CHATORBIT_LOGIN_WINDOW", "login-window", "15m", "window for the failed-login limits",
       seconds_setting(&Config::login_window)},
      {"CHATORBIT_MAX_BODY_BYTES", "max-body-bytes", "65536", "largest accepted HTTP request body",
       [](Config& c, const std::string& v, const std::string& n) {
         c.max_body_bytes = static_cast<std::size_t>(parse_int(v, n, 1, 64ll << 20));
       }},
      {"CHATORBIT_HTTP_IDLE_TIMEOUT", "http-idle-timeout", "60s", "keep-alive connection idle timeout",
       seconds_setting(&Config::http_idle_timeout)},
      {"CHATORBIT_HTTP_READ_TIMEOUT", "http-read-timeout", "10s", "time allowed to receive a request's header and body",
       seconds_setting(&Config::http_read_timeout)},
      {"CHATORBIT_SWAGGER_UI_DIR", "swagger-ui-dir", "<binary dir>/swagger-ui", "Swagger UI static files",
       string_setting(&Config::swagger_ui_dir)},
      {"CHATORBIT_ANONYMOUS_VIEWERS", "anonymous-viewers", "true",
       "let clients without a token watch rooms read-only (true or false)",
       [](Config& c, const std::string& v, const std::string& n) { c.anonymous_viewers = parse_bool(v, n); }},
      {"CHATORBIT_RATE_LIMIT", "rate-limit", "20/30s", "messages per user per room in a sliding window",
       [](Config& c, const std::string& v, const std::string& n) { c.rate_limit = parse_rate(v, n); }},
      {"CHATORBIT_MOD_RATE_LIMIT", "mod-rate-limit", "100/30s", "the same for moderators and admins",
       [](Config& c, const std::string& v, const std::string& n) { c.mod_rate_limit = parse_rate(v, n); }},
      {"CHATORBIT_MAX_MESSAGE_CHARS", "max-message-chars", "500", "longest message, in characters, after trimming",
       int_setting(&Config::max_message_chars, 1, 100'000)},
      {"CHATORBIT_WS_MAX_FRAME_BYTES", "ws-max-frame-bytes", "65536",
       "largest WebSocket message a client may send; larger closes the connection with 1009",
       [](Config& c, const std::string& v, const std::string& n) {
         c.ws_max_frame_bytes = static_cast<std::size_t>(parse_int(v, n, 128, 16ll << 20));
       }},
      {"CHATORBIT_WS_MAX_QUEUE_BYTES", "ws-max-queue-bytes", "1048576",
       "bytes that may wait for a viewer whose connection takes no more; beyond, it is dropped as too slow (close "
       "4008)",
       [](Config& c, const std::string& v, const std::string& n) {
         c.ws_max_queue_bytes = static_cast<std::size_t>(parse_int(v, n, 4096, 1ll << 30));
       }},
      {"CHATORBIT_MAX_CONNECTIONS_PER_IP", "max-connections-per-ip", "1000",
       "open WebSocket connections per client address", int_setting(&Config::max_connections_per_ip, 1, 10'000'000)},
      {"CHATORBIT_MAX_HTTP_CONNECTIONS_PER_IP", "max-http-connections-per-ip", "256",
       "open HTTP connections (before any WebSocket upgrade) per client address; more are refused with 429",
       int_setting(&Config::max_http_connections_per_ip, 1, 10'000'000)},
      {"CHATORBIT_MAX_CONNECTIONS", "max-connections", "0",
       "open connections (HTTP and WebSocket) past which new ones get 503; 0 = the open-file limit less a reserve",
       [](Config& c, const std::string& v, const std::string& n) {
         c.max_connections = parse_int(v, n, 0, 100'000'000);
       }},
      {"CHATORBIT_CONNECT_RATE_PER_IP", "connect-rate-per-ip", "200/1s", "new WebSocket connections per client address",
       [](Config& c, const std::string& v, const std::string& n) { c.connect_rate_per_ip = parse_rate(v, n); }},
      {"CHATORBIT_DRAIN_RATE", "drain-rate", "2000",
       "WebSocket sessions per second a stopping chat node (SIGTERM) tells to reconnect elsewhere (close 1012)",
       int_setting(&Config::drain_rate, 1, 1'000'000)},
      {"CHATORBIT_PRESENCE_EVENTS_MAX", "presence-events-max", "100",
       "rooms with more members get coalesced presence counts instead of join/leave events",
       int_setting(&Config::presence_events_max, 0, 10'000'000)},
      {"CHATORBIT_PING_INTERVAL", "ping-interval", "10s", "WebSocket ping interval",
       seconds_setting(&Config::ping_interval)},
      {"CHATORBIT_IDLE_DROP", "idle-drop", "25s", "drop a WebSocket connection silent for this long",
       seconds_setting(&Config::idle_drop)},
      {"CHATORBIT_PRESENCE_TTL", "presence-ttl", "30s", "presence entries expire this long after the last sign of life",
       seconds_setting(&Config::presence_ttl)},
      {"CHATORBIT_FANOUT_FLUSH_MS", "fanout-flush-ms", "20",
       "the most milliseconds chat messages wait so that several reach a viewer in one write: a quiet loop writes at "
       "once, a busy one holds frames back up to this (0 = always at the end of the loop turn)",
       [](Config& c, const std::string& v, const std::string& n) {
         c.fanout_flush = std::chrono::milliseconds{parse_int(v, n, 0, 1000)};
       }},
      {"CHATORBIT_ORDER_WAIT_MS", "order-wait-ms", "300",
       "milliseconds a node holds a room's message for earlier numbers still on their way from other nodes, before "
       "it skips them",
       [](Config& c, const std::string& v, const std::string& n) {
         c.order_wait = std::chrono::milliseconds{parse_int(v, n, 1, 60'000)};
       }},
      {"CHATORBIT_IO_URING", "io-uring", "true",
       "write fan-out through io_uring, up to 64 sockets per system call (false: one sendmsg each; also the "
       "fallback where the kernel refuses io_uring)",
       [](Config& c, const std::string& v, const std::string& n) { c.io_uring = parse_bool(v, n); }},
      {"CHATORBIT_AUTH_URL", "auth-url", "", "gateway: the auth service, http://host:port",
       string_setting(&Config::auth_url)},
      {"CHATORBIT_USER_URL", "user-url", "", "gateway: the user service, http://host:port",
       string_setting(&Config::user_url)},
      {"CHATORBIT_CHAT_URLS", "chat-urls", "", "gateway: the chat nodes, host:port,host:port,...",
       [](Config& c, const std::string& v, const std::string&) { c.chat_urls = split_list(v, false); }},
      {"CHATORBIT_UPSTREAM_TIMEOUT", "upstream-timeout", "10s",
       "gateway: longest wait for a service's response before answering 504",
       [](Config& c, const std::string& v, const std::string& n) {
         c.upstream_timeout = parse_duration(v, n);
         if (c.upstream_timeout.count() < 1) throw ConfigError(n + ": must be at least 1s");
       }},
      {"CHATORBIT_HEALTH_INTERVAL_MS", "health-interval-ms", "1000",
       "gateway: how often each chat node's /readyz is asked; a node that fails once is taken out until it answers",
       [](Config& c, const std::string& v, const std::string& n) {
         c.health_interval = std::chrono::milliseconds{parse_int(v, n, 50, 60'000)};
       }},
      {"CHATORBIT_GATEWAY_LINKS", "gateway-links", "2",
       "gateway: links each event loop keeps to each chat node, carrying many viewers each; 0 = a tunnel per "
       "viewer (nodes take links only from CHATORBIT_TRUSTED_PROXIES)",
       [](Config& c, const std::string& v, const std::string& n) { c.gateway_links = parse_int(v, n, 0, 16); }},
      {"CHATORBIT_EDGE_REQUEST_RATE", "edge-request-rate", "100/1s",
       "gateway: REST requests per client address (COUNT/WINDOW; off = no limit)",
       [](Config& c, const std::string& v, const std::string& n) {
         c.edge_request_rate = lower(trim(v)) == "off" ? RateSpec{} : parse_rate(v, n);
       }},
      {"MONGO_URL", "mongo-url", "",
       "MongoDB URL (mongodb://... or mongodb+srv://...), database chatorbit unless it names one; selects the "
       "MongoDB store",
       string_setting(&Config::mongo_url)},
      {"CHATORBIT_MONGO_WRITE_CONCERN", "mongo-write-concern", "majority",
       "write concern of message appends and every other write: majority, or a number of members",
       [](Config& c, const std::string& v, const std::string& n) {
         const auto t = trim(v);
         c.mongo.write_concern = lower(t) == "majority" ? "majority" : std::to_string(parse_int(t, n, 0, 50));
       }},
      {"CHATORBIT_MONGO_JOURNAL", "mongo-journal", "true", "a write is acknowledged only once it is in the journal",
       [](Config& c, const std::string& v, const std::string& n) { c.mongo.journal = parse_bool(v, n); }},
      {"CHATORBIT_MONGO_TIMEOUT_MS", "mongo-timeout-ms", "2000",
       "how long a store call waits to find (or connect to) a MongoDB server before it fails",
       [](Config& c, const std::string& v, const std::string& n) {
         c.mongo.timeout = std::chrono::milliseconds{parse_int(v, n, 100, 600'000)};
       }},
      {"CHATORBIT_MONGO_SOCKET_TIMEOUT_MS", "mongo-socket-timeout-ms", "10000",
       "a MongoDB reply not received this long fails the call (a stalled server)",
       [](Config& c, const std::string& v, const std::string& n) {
         c.mongo.socket_timeout = std::chrono::milliseconds{parse_int(v, n, 100, 3'600'000)};
       }},
      {"REDIS_ADDR", "redis-addr", "",
       "one Redis node, host:port or redis://[[user]:password@]host:port[/db]; selects the Redis engine (many chat "
       "nodes share one chat through it)",
       string_setting(&Config::redis_addr)},
      {"CHATORBIT_REDIS_CLUSTER", "redis-cluster", "",
       "Redis Cluster seed nodes, host:port,host:port,...; selects the Redis engine on a cluster (sharded pub/sub); "
       "not together with REDIS_ADDR",
       string_setting(&Config::redis_cluster)},
      {"CHATORBIT_REDIS_KEY_PREFIX", "redis-key-prefix", "",
       "put before every Redis key and channel, so several deployments can share one Redis",
       [](Config& c, const std::string& v, const std::string&) { c.redis.key_prefix = v; }},
      {"CHATORBIT_REDIS_CONNECT_TIMEOUT_MS", "redis-connect-timeout-ms", "2000",
       "milliseconds a connection to Redis may take to open and answer its first PING",
       ms_setting(&RedisSettings::connect_timeout, 10, 600'000)},
      {"CHATORBIT_REDIS_COMMAND_TIMEOUT_MS", "redis-command-timeout-ms", "2000",
       "milliseconds of silence from Redis, while a command or probe waits, after which the connection is dropped "
       "as dead and reopened (a stalled server or a half-open link)",
       ms_setting(&RedisSettings::command_timeout, 10, 600'000)},
      {"CHATORBIT_REDIS_PROBE_INTERVAL_MS", "redis-probe-interval-ms", "1000",
       "milliseconds without traffic after which an idle Redis connection (commands or subscriber) is sent a PING",
       ms_setting(&RedisSettings::probe_interval, 10, 600'000)},
      {"CHATORBIT_REDIS_BACKOFF_MIN_MS", "redis-backoff-min-ms", "50",
       "first delay before reconnecting to Redis; doubled on each failure up to the maximum, with jitter",
       ms_setting(&RedisSettings::backoff_min, 1, 600'000)},
      {"CHATORBIT_REDIS_BACKOFF_MAX_MS", "redis-backoff-max-ms", "2000", "longest delay between reconnect attempts",
       ms_setting(&RedisSettings::backoff_max, 1, 600'000)},
      {"CHATORBIT_REDIS_PIPELINE_DEPTH", "redis-pipeline-depth", "65536",
       "commands in flight on one Redis connection; more wait for replies",
       [](Config& c, const std::string& v, const std::string& n) {
         c.redis.pipeline_depth = static_cast<std::size_t>(parse_int(v, n, 1, 10'000'000));
       }},
  };
  return table;
}

}  // namespace

bool Config::all_roles() const {
  const auto list = split_list(roles, true);
  return std::find(list.begin(), list.end(), "all") != list.end();
}

bool Config::has_role(const std::string& role) const {
  const auto list = split_list(roles, true);
  return all_roles() || std::find(list.begin(), list.end(), role) != list.end();
}

std::chrono::seconds parse_duration(const std::string& text, const std::string& name) {
  const std::string t = trim(text);
  std::size_t digits = 0;
  while (digits < t.size() && std::isdigit(static_cast<unsigned char>(t[digits]))) ++digits;
  if (digits == 0) throw ConfigError(name + ": expected a duration such as 30s, 5m or 1h, got '" + text + "'");
  const long long n = parse_int(t.substr(0, digits), name, 0, 10'000'000);
  const std::string unit = t.substr(digits);
  if (unit.empty() || unit == "s") return std::chrono::seconds{n};
  if (unit == "ms") return std::chrono::seconds{(n + 999) / 1000};
  if (unit == "m") return std::chrono::seconds{n * 60};
  if (unit == "h") return std::chrono::seconds{n * 3600};
  throw ConfigError(name + ": unknown duration unit '" + unit + "' (use ms, s, m or h)");
}

RateSpec parse_rate(const std::string& text, const std::string& name) {
  const auto slash = text.find('/');
  if (slash == std::string::npos)
    throw ConfigError(name + ": expected COUNT/WINDOW such as 20/30s, got '" + text + "'");
  RateSpec spec;
  spec.count = static_cast<int>(parse_int(trim(text.substr(0, slash)), name, 1, 1'000'000));
  std::string window = trim(text.substr(slash + 1));
  // "20/s" and "20/m" read naturally as per-second / per-minute.
  if (!window.empty() && !std::isdigit(static_cast<unsigned char>(window[0]))) window = "1" + window;
  spec.window = parse_duration(window, name);
  if (spec.window.count() <= 0) throw ConfigError(name + ": the window must be at least one second");
  return spec;
}

std::map<std::string, std::string> environment_map() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string kv = *e;
    const auto eq = kv.find('=');
    if (eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

ParsedArgs parse_config(const std::map<std::string, std::string>& env, const std::vector<std::string>& args) {
  ParsedArgs out;
  for (const auto& s : settings()) {
    if (auto it = env.find(s.env); it != env.end() && !it->second.empty()) s.apply(out.config, it->second, s.env);
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      out.help = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) throw ConfigError("unexpected argument '" + a + "' (see --help)");
    std::string name = a.substr(2);
    std::string value;
    bool has_value = false;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const auto it =
        std::find_if(settings().begin(), settings().end(), [&](const Setting& s) { return name == s.flag; });
    if (it == settings().end()) throw ConfigError("unknown flag --" + name + " (see --help)");
    if (!has_value) {
      if (i + 1 >= args.size()) throw ConfigError("--" + name + " needs a value");
      value = args[++i];
    }
    it->apply(out.config, value, "--" + name);
  }
  return out;
}

std::string config_help() {
  std::ostringstream o;
  o << "chatorbit: real-time chat backend for live streams\n\n"
       "usage: chatorbit [--flag value | --flag=value]...\n\n"
       "Every setting can come from the environment or a flag; flags win.\n\n";
  for (const auto& s : settings()) {
    o << "  --" << s.flag << "  (" << s.env << ", default: " << (*s.def ? s.def : "unset") << ")\n      " << s.help
      << "\n";
  }
  return o.str();
}

std::string config_markdown_table() {
  std::ostringstream o;
  o << "| variable | flag | default | meaning |\n|---|---|---|---|\n";
  for (const auto& s : settings()) {
    o << "| `" << s.env << "` | `--" << s.flag << "` | " << (*s.def ? std::string("`") + s.def + "`" : "unset") << " | "
      << s.help << " |\n";
  }
  return o.str();
}

}  // namespace chatorbit
