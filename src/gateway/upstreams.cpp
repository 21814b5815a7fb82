#include "gateway/upstreams.hpp"

#include <algorithm>
#include <charconv>

#include "core/config.hpp"

namespace chatorbit::gateway {

Endpoint parse_endpoint(std::string_view text, std::string_view setting) {
  const auto bad = [&](std::string_view why) {
    return ConfigError(std::string(setting) + ": '" + std::string(text) + "' " + std::string(why) +
                       " (expected host:port or http://host:port)");
  };
  std::string_view rest = text;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.find("://") != std::string_view::npos) {
    throw bad("has a scheme other than http");
  }
  if (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.find_first_of("/@?# ") != std::string_view::npos) throw bad("has a path, user info or spaces");
  Endpoint e;
  std::string_view port;
  if (rest.starts_with('[')) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      throw bad("is not [address]:port");
    }
    e.host = std::string(rest.substr(1, close - 1));
    port = rest.substr(close + 2);
  } else {
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0) throw bad("names no port");
    e.host = std::string(rest.substr(0, colon));
    port = rest.substr(colon + 1);
    if (e.host.find(':') != std::string::npos) throw bad("is an IPv6 address without brackets");
  }
  int n = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  if (ec != std::errc{} || end != port.data() + port.size() || n < 1 || n > 65535 || e.host.empty()) {
    throw bad("has no valid port");
  }
  e.port = std::to_string(n);
  return e;
}

ChatNodes::ChatNodes(const std::vector<Endpoint>& endpoints) {
  for (const auto& e : endpoints) nodes_.push_back(std::make_unique<Upstream>("chat", e));
}

namespace {
bool was_tried(const Upstream* u, const std::vector<const Upstream*>& tried) {
  return std::find(tried.begin(), tried.end(), u) != tried.end();
}
}  // namespace

std::vector<Upstream*> ChatNodes::candidates(const std::vector<const Upstream*>& tried) const {
  std::vector<Upstream*> out;
  for (const auto& u : nodes_) {
    if (u->healthy() && !was_tried(u.get(), tried)) out.push_back(u.get());
  }
  return out;
}

Upstream* ChatNodes::next(const std::vector<const Upstream*>& tried) {
  const auto c = candidates(tried);
  if (c.empty()) return nullptr;
  return c[turn_.fetch_add(1, std::memory_order_relaxed) % c.size()];
}

Upstream* ChatNodes::least_loaded(const std::vector<const Upstream*>& tried) {
  auto c = candidates(tried);
  if (c.empty()) return nullptr;
  std::int64_t fewest = c.front()->tunnels();
  for (const auto* u : c) fewest = std::min(fewest, u->tunnels());
  std::erase_if(c, [fewest](const Upstream* u) { return u->tunnels() != fewest; });
  return c[turn_.fetch_add(1, std::memory_order_relaxed) % c.size()];
}

std::size_t ChatNodes::healthy_count() const {
  return static_cast<std::size_t>(
      std::count_if(nodes_.begin(), nodes_.end(), [](const auto& u) { return u->healthy(); }));
}

}  // namespace chatorbit::gateway
