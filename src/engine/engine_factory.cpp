#include "engine/engine_factory.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "engine/memory/memory_engine.hpp"
#include "engine/redis/redis_engine.hpp"

namespace chatorbit::engine {
namespace {

constexpr std::string_view kAddrForms = "expected host:port or redis://[:password@]host:port[/db]";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool starts_with_icase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), s.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         });
}

// The value as it may appear in an error message: a password is never echoed.
std::string shown(std::string_view text) {
  const auto at = text.rfind('@');
  if (at == std::string_view::npos) return std::string(text);
  const auto scheme = text.find("://");
  const auto keep = scheme == std::string_view::npos || scheme > at ? 0 : scheme + 3;
  return std::string(text.substr(0, keep)) + "***" + std::string(text.substr(at));
}

[[noreturn]] void malformed(const std::string& setting, std::string_view text, std::string_view why) {
  throw ConfigError(setting + ": malformed Redis address '" + shown(text) + "': " + std::string(why));
}

bool parse_number(std::string_view s, int lo, int hi, int& out) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  int v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v < lo || v > hi) return false;
  out = v;
  return true;
}

bool valid_host_name(std::string_view host) {
  return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

bool valid_ipv6_literal(std::string_view host) {
  return host.find(':') != std::string_view::npos && std::all_of(host.begin(), host.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
         });
}

// "host:port" or "[v6]:port" into `ep`; the port may be left out only if `port_optional`.
void parse_host_port(std::string_view hp, bool port_optional, RedisEndpoint& ep, const std::string& setting,
                     std::string_view text) {
  std::string_view host;
  std::string_view port;
  bool has_port = false;
  if (!hp.empty() && hp.front() == '[') {
    const auto close = hp.find(']');
    if (close == std::string_view::npos) malformed(setting, text, "an IPv6 address opened with '[' is not closed");
    host = hp.substr(1, close - 1);
    if (!valid_ipv6_literal(host)) malformed(setting, text, "not an IPv6 address inside the brackets");
    const auto rest = hp.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') malformed(setting, text, "expected ':port' after the IPv6 address");
      port = rest.substr(1);
      has_port = true;
    }
  } else {
    const auto colon = hp.rfind(':');
    if (colon != std::string_view::npos) {
      host = hp.substr(0, colon);
      port = hp.substr(colon + 1);
      has_port = true;
      if (host.find(':') != std::string_view::npos) {
        malformed(setting, text, "write an IPv6 address in brackets, as [::1]:6379");
      }
    } else {
      host = hp;
    }
    if (!valid_host_name(host)) malformed(setting, text, "missing or invalid host; " + std::string(kAddrForms));
  }
  if (!has_port && !port_optional) malformed(setting, text, "no port; " + std::string(kAddrForms));
  if (has_port && !parse_number(port, 1, 65535, ep.port)) {
    malformed(setting, text, "the port must be a number from 1 to 65535");
  }
  ep.host = std::string(host);
}

}  // namespace

RedisEndpoint parse_redis_endpoint(std::string_view text, const std::string& setting) {
  text = trim(text);
  RedisEndpoint ep;
  if (text.empty()) malformed(setting, text, "empty; " + std::string(kAddrForms));
  if (starts_with_icase(text, "rediss://")) malformed(setting, text, "TLS (rediss://) is not supported");
  if (!starts_with_icase(text, "redis://")) {
    if (text.find("://") != std::string_view::npos) {
      malformed(setting, text, "unknown scheme; " + std::string(kAddrForms));
    }
    parse_host_port(text, false, ep, setting, text);
    return ep;
  }
  std::string_view rest = text.substr(8);
  // A password may itself hold '@' or '/': the host starts after the last '@'.
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const auto userinfo = rest.substr(0, at);
    const auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) malformed(setting, text, "write the password as redis://:password@host");
    ep.username = std::string(userinfo.substr(0, colon));
    ep.password = std::string(userinfo.substr(colon + 1));
    rest = rest.substr(at + 1);
  }
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    const auto db = rest.substr(slash + 1);
    if (!db.empty() && !parse_number(db, 0, 1'000'000, ep.db)) {
      malformed(setting, text, "the database after '/' must be a number");
    }
    rest = rest.substr(0, slash);
  }
  parse_host_port(rest, true, ep, setting, text);
  return ep;
}

std::vector<RedisEndpoint> parse_redis_cluster(std::string_view text, const std::string& setting) {
  std::vector<RedisEndpoint> nodes;
  std::string_view rest = text;
  for (;;) {
    const auto comma = rest.find(',');
    const auto entry = trim(rest.substr(0, comma));
    if (entry.empty()) {
      throw ConfigError(setting + ": malformed node list '" + shown(text) + "': expected host:port,host:port,...");
    }
    auto node = parse_redis_endpoint(entry, setting);
    if (node.db != 0) malformed(setting, entry, "a Redis Cluster has only database 0");
    nodes.push_back(std::move(node));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return nodes;
}

EngineKind select_engine(const Config& config) {
  const bool single = !trim(config.redis_addr).empty();
  const bool cluster = !trim(config.redis_cluster).empty();
  if (single) parse_redis_endpoint(config.redis_addr, "REDIS_ADDR");
  if (cluster) parse_redis_cluster(config.redis_cluster, "CHATORBIT_REDIS_CLUSTER");
  if (single && cluster) {
    throw ConfigError(
        "REDIS_ADDR and CHATORBIT_REDIS_CLUSTER are both set; set REDIS_ADDR for one Redis node or "
        "CHATORBIT_REDIS_CLUSTER for a cluster, not both");
  }
  if (single) return EngineKind::redis;
  if (cluster) return EngineKind::redis_cluster;
  return EngineKind::memory;
}

std::unique_ptr<Engine> make_engine(const Config& config, const Clock& clock) {
  switch (select_engine(config)) {
    case EngineKind::redis: {
      redis::RedisTopology topology;
      topology.nodes.push_back(parse_redis_endpoint(config.redis_addr, "REDIS_ADDR"));
      return std::make_unique<redis::RedisEngine>(std::move(topology), config.redis, clock);
    }
    case EngineKind::redis_cluster: {
      redis::RedisTopology topology;
      topology.cluster = true;
      topology.nodes = parse_redis_cluster(config.redis_cluster, "CHATORBIT_REDIS_CLUSTER");
      return std::make_unique<redis::RedisEngine>(std::move(topology), config.redis, clock);
    }
    case EngineKind::memory: break;
  }
  return std::make_unique<MemoryEngine>(clock);
}

}  // namespace chatorbit::engine
