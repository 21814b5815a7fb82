#pragma once
// The one place that knows which Engine implementations exist and which one a
// configuration selects. Callers (App) ask make_engine() and name no implementation.
//
// Selection, by presence of settings:
//   REDIS_ADDR              -> the Redis engine on one node
//   CHATORBIT_REDIS_CLUSTER -> the Redis engine on a Redis Cluster
//   neither                 -> the memory engine (one process, the embedded default)
// Setting both is an error: which one was meant cannot be guessed.
//
// The Redis settings are parsed here even though the engine is not built yet, so a typo
// is reported as "malformed" at once and not mistaken for "not built yet" (or, later,
// for a connection failure).
//
// Thread-safety: every function is pure apart from the engine it builds; call them at
// start-up.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "engine/engine.hpp"

namespace chatorbit::engine {

/// One Redis node's address as REDIS_ADDR or a CHATORBIT_REDIS_CLUSTER entry gives it.
struct RedisEndpoint {
  std::string host;  ///< host name or IPv4; IPv6 without the brackets
  int port = 6379;
  std::string username;  ///< Redis 6 ACL user (redis://user:password@...), empty = default
  std::string password;  ///< empty = no AUTH
  int db = 0;            ///< SELECT index (standalone only; a cluster has only db 0)

  bool operator==(const RedisEndpoint&) const = default;
};

/// Parses "host:port", "[v6]:port" or "redis://[[user]:password@]host[:port][/db]"
/// (the URL's port defaults to 6379). Throws ConfigError("<setting>: malformed ...")
/// saying what was expected.
RedisEndpoint parse_redis_endpoint(std::string_view text, const std::string& setting);

/// Parses CHATORBIT_REDIS_CLUSTER: "host:port,host:port,..." (seed nodes; spaces around
/// entries ignored; at least one). Throws ConfigError("<setting>: malformed ...").
std::vector<RedisEndpoint> parse_redis_cluster(std::string_view text, const std::string& setting);

enum class EngineKind { memory, redis, redis_cluster };

/// Which engine `config` selects, after validating the Redis settings. Throws ConfigError
/// if a setting is malformed or both Redis settings are set.
EngineKind select_engine(const Config& config);

/// Builds the engine `config` selects; `clock` must outlive it. Throws ConfigError if a
/// setting is malformed, or if the selected engine is not in this build (the message
/// says which setting to unset).
std::unique_ptr<Engine> make_engine(const Config& config, const Clock& clock);

}  // namespace chatorbit::engine
