#include "engine/redis/redis_cluster.hpp"

#include <boost/asio/post.hpp>

#include "core/log.hpp"
#include "engine/engine.hpp"

namespace chatorbit::engine::redis {

namespace {

constexpr std::size_t kSlots = 16384;
constexpr std::chrono::milliseconds kMapRefresh{10'000};

std::uint16_t crc16(std::string_view data) {
  std::uint16_t crc = 0;
  for (unsigned char c : data) {
    crc ^= static_cast<std::uint16_t>(c) << 8;
    for (int i = 0; i < 8; ++i) crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021) : crc << 1;
  }
  return crc;
}

std::exception_ptr unavailable(const std::string& why) {
  return std::make_exception_ptr(EngineUnavailable("redis cluster unavailable: " + why));
}

// "MOVED 3999 127.0.0.1:6381" -> the endpoint.
std::optional<RedisEndpoint> redirect_target(const std::string& error) {
  const auto space = error.rfind(' ');
  const auto colon = error.rfind(':');
  if (space == std::string::npos || colon == std::string::npos || colon < space) return std::nullopt;
  RedisEndpoint ep;
  ep.host = error.substr(space + 1, colon - space - 1);
  try {
    ep.port = std::stoi(error.substr(colon + 1));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return ep;
}

}  // namespace

std::uint16_t hash_slot(std::string_view key) {
  const auto open = key.find('{');
  if (open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return crc16(key) % kSlots;
}

ClusterRouter::ClusterRouter(boost::asio::io_context& io, std::vector<RedisEndpoint> seeds,
                             const RedisSettings& settings, std::string role, Route route)
    : io_(io),
      seeds_(std::move(seeds)),
      settings_(settings),
      role_(std::move(role)),
      route_(std::move(route)),
      slot_owner_(kSlots),
      refresh_timer_(io) {}

ClusterRouter::~ClusterRouter() = default;

void ClusterRouter::start() {
  boost::asio::post(io_, [this] { refresh_map(); });
}

void ClusterRouter::stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  for (auto& [name, node] : nodes_) node.connection->stop();
  boost::asio::post(io_, [this] { refresh_timer_.cancel(); });
}

ClusterRouter::Node& ClusterRouter::node_locked(const RedisEndpoint& endpoint) {
  const std::string name = describe(endpoint);
  auto [it, inserted] = nodes_.try_emplace(name);
  if (inserted) {
    it->second.endpoint = endpoint;
    // A master's credentials are the seeds' (a cluster has one ACL set-up).
    it->second.endpoint.username = seeds_.front().username;
    it->second.endpoint.password = seeds_.front().password;
    it->second.endpoint.db = 0;
    Connection::Events events;
    events.state = [this](bool up, const std::string&) {
      if (!up) schedule_refresh(settings_.backoff_min);
    };
    it->second.connection =
        std::make_shared<Connection>(io_, routed(route_, it->second.endpoint), settings_, Connection::Mode::commands,
                                     role_ + " " + name, std::move(events));
    if (!stopped_) it->second.connection->start();
  }
  return it->second;
}

void ClusterRouter::send(std::string_view slot_key, std::string encoded, ReplyCallback done) {
  std::string owner;
  std::string why;
  {
    std::lock_guard lock(mu_);
    if (map_loaded_) owner = slot_owner_[hash_slot(slot_key)];
    if (owner.empty() && map_loaded_ && !nodes_.empty()) owner = nodes_.begin()->first;
    why = map_error_;
  }
  if (owner.empty()) {
    // No map yet (or the slot has no owner): nothing to send to.
    boost::asio::post(io_, [done = std::move(done), why]() {
      done(unavailable(why.empty() ? "slot map not loaded yet" : why), Reply{});
    });
    return;
  }
  send_to(owner, std::make_shared<const std::string>(std::move(encoded)), std::move(done), 0, false);
}

void ClusterRouter::send_to(const std::string& node, std::shared_ptr<const std::string> encoded, ReplyCallback done,
                            int hops, bool asking) {
  std::shared_ptr<Connection> connection;
  {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(node);
    if (it != nodes_.end()) connection = it->second.connection;
  }
  if (!connection) {
    boost::asio::post(io_,
                      [done = std::move(done), node]() { done(unavailable("no connection to " + node), Reply{}); });
    return;
  }
  auto on_done = [this, encoded, done = std::move(done), hops](std::exception_ptr e, Reply r) mutable {
    on_reply(std::move(encoded), std::move(done), hops, e, std::move(r));
  };
  if (!asking) {
    connection->send(*encoded, std::move(on_done));
    return;
  }
  std::string asking_cmd;
  encode_command(asking_cmd, {"ASKING"});
  std::vector<std::pair<std::string, ReplyCallback>> both;
  both.emplace_back(std::move(asking_cmd), [](std::exception_ptr, Reply) {});
  both.emplace_back(*encoded, std::move(on_done));
  connection->send_all(std::move(both));
}

void ClusterRouter::on_reply(std::shared_ptr<const std::string> encoded, ReplyCallback done, int hops,
                             std::exception_ptr e, Reply r) {
  if (e || !r.is_error()) return done(e, std::move(r));
  const bool moved = r.str.rfind("MOVED ", 0) == 0;
  const bool ask = r.str.rfind("ASK ", 0) == 0;
  if (!moved && !ask) return done(nullptr, std::move(r));
  auto target = redirect_target(r.str);
  if (!target || hops >= kMaxRedirects) return done(nullptr, std::move(r));
  std::string name;
  {
    std::lock_guard lock(mu_);
    name = describe(node_locked(*target).endpoint);
    if (moved) {
      // Learn the one slot at once; the full reload below catches the rest.
      const auto slot_start = r.str.find(' ') + 1;
      try {
        const auto slot = static_cast<std::size_t>(std::stoul(r.str.substr(slot_start)));
        if (slot < kSlots) slot_owner_[slot] = name;
      } catch (const std::exception&) {
      }
    }
  }
  if (moved) schedule_refresh(std::chrono::milliseconds{0});
  send_to(name, std::move(encoded), std::move(done), hops + 1, ask);
}

void ClusterRouter::schedule_refresh(std::chrono::milliseconds after) {
  boost::asio::post(io_, [this, after] {
    {
      std::lock_guard lock(mu_);
      if (stopped_ || refreshing_) return;
    }
    refresh_timer_.expires_after(after);
    refresh_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) refresh_map();
    });
  });
}

void ClusterRouter::refresh_map() {
  // Ask a master that is up, else the next seed.
  RedisEndpoint target;
  std::shared_ptr<Connection> connection;
  {
    std::lock_guard lock(mu_);
    if (stopped_ || refreshing_) return;
    refreshing_ = true;
    for (auto& [name, node] : nodes_) {
      if (node.connection->up()) {
        connection = node.connection;
        target = node.endpoint;
        break;
      }
    }
    if (!connection) {
      target = seeds_[next_seed_++ % seeds_.size()];
      connection = node_locked(target).connection;
    }
  }
  std::string cmd;
  encode_command(cmd, {"CLUSTER", "SLOTS"});
  connection->send(std::move(cmd), [this, target](std::exception_ptr e, Reply r) {
    bool ok = false;
    {
      std::lock_guard lock(mu_);
      refreshing_ = false;
    }
    if (!e && r.type == Reply::Type::array && !r.elements.empty()) {
      apply_map(r, target);
      ok = true;
    } else {
      std::lock_guard lock(mu_);
      map_error_ = "CLUSTER SLOTS from " + describe(target) + " failed: " + (e ? "no connection" : r.describe());
    }
    schedule_refresh(ok ? kMapRefresh : settings_.backoff_min * 4);
  });
}

void ClusterRouter::apply_map(const Reply& slots, const RedisEndpoint& asked) {
  std::vector<std::string> owner(kSlots);
  std::lock_guard lock(mu_);
  for (const auto& range : slots.elements) {
    if (range.type != Reply::Type::array || range.elements.size() < 3) continue;
    const auto& master = range.elements[2];
    if (master.type != Reply::Type::array || master.elements.size() < 2) continue;
    RedisEndpoint ep;
    ep.host = master.elements[0].str.empty() ? asked.host : master.elements[0].str;
    ep.port = static_cast<int>(master.elements[1].as_int());
    const std::string name = describe(node_locked(ep).endpoint);
    const auto first = static_cast<std::size_t>(range.elements[0].as_int());
    const auto last = static_cast<std::size_t>(range.elements[1].as_int());
    for (std::size_t s = first; s <= last && s < kSlots; ++s) owner[s] = name;
  }
  masters_.clear();
  map_complete_ = true;
  for (const auto& o : owner) {
    if (o.empty()) map_complete_ = false;
    masters_.insert(o);
  }
  masters_.erase(std::string{});
  slot_owner_.swap(owner);
  map_loaded_ = true;
  map_error_.clear();
}

bool ClusterRouter::map_loaded() const {
  std::lock_guard lock(mu_);
  return map_loaded_;
}

bool ClusterRouter::up(std::string* detail) const {
  std::lock_guard lock(mu_);
  if (!map_loaded_) {
    if (detail) *detail = map_error_.empty() ? "slot map not loaded yet" : map_error_;
    return false;
  }
  if (!map_complete_) {
    if (detail) *detail = "a hash slot has no master";
    return false;
  }
  for (const auto& name : masters_) {
    auto it = nodes_.find(name);
    if (it == nodes_.end() || !it->second.connection->up()) {
      if (detail) *detail = role_ + " " + name + " is not connected";
      return false;
    }
  }
  return true;
}

RedisEndpoint ClusterRouter::endpoint_for(std::string_view slot_key) const {
  std::lock_guard lock(mu_);
  auto it = map_loaded_ ? nodes_.find(slot_owner_[hash_slot(slot_key)]) : nodes_.end();
  if (it != nodes_.end()) return it->second.endpoint;
  return seeds_.front();
}

std::vector<RedisEndpoint> ClusterRouter::endpoints() const {
  std::lock_guard lock(mu_);
  std::vector<RedisEndpoint> out;
  for (const auto& [name, node] : nodes_) out.push_back(node.endpoint);
  return out;
}

}  // namespace chatorbit::engine::redis
