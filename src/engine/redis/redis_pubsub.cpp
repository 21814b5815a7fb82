#include "engine/redis/redis_pubsub.hpp"

#include <boost/asio/post.hpp>

#include "core/log.hpp"
#include "core/random.hpp"

namespace chatorbit::engine::redis {

namespace {

// Channels per SUBSCRIBE when a connection comes back: keeps each command small.
constexpr std::size_t kResubscribeChunk = 256;
// A leave or join marker's payload starts with this (a NUL: no chat payload, which is
// JSON, does). Nodes ignore the markers of others.
const std::string kMarkerPrefix = std::string("\0chatorbit-leave:", 17);
// How often a cluster's subscriptions are checked against the slot map.
constexpr std::chrono::milliseconds kRelocateEvery{1000};

std::exception_ptr unavailable(const std::string& why) {
  return std::make_exception_ptr(EngineUnavailable("redis broker unavailable: " + why));
}

}  // namespace

PubSub::PubSub(boost::asio::io_context& io, Router& publisher, const Router& locator, RedisSettings settings,
               bool sharded, std::string prefix, Route route)
    : io_(io),
      publisher_(publisher),
      locator_(locator),
      settings_(std::move(settings)),
      sharded_(sharded),
      prefix_(std::move(prefix)),
      route_(std::move(route)),
      marker_tag_(OsRandom::instance().hex(8) + ":"),
      relocate_timer_(io) {}

PubSub::~PubSub() = default;

void PubSub::start() {
  std::lock_guard lock(mu_);
  // A standalone server's one subscriber connection exists from the start, so that the
  // broker's health means something before the first room is followed.
  if (!sharded_) shard_for_locked(prefix_, nullptr);
  started_ = true;
  for (auto& [key, shard] : shards_) shard.connection->start();
  if (sharded_) boost::asio::post(io_, [this] { arm_relocation(); });
}

void PubSub::stop() {
  std::lock_guard lock(mu_);
  started_ = false;
  for (auto& [key, shard] : shards_) shard.connection->stop();
  boost::asio::post(io_, [this] { relocate_timer_.cancel(); });
}

void PubSub::arm_relocation() {
  relocate_timer_.expires_after(kRelocateEvery);
  relocate_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    relocate();
    arm_relocation();
  });
}

void PubSub::relocate() {
  std::lock_guard lock(mu_);
  if (!started_) return;
  for (auto& [name, ch] : channels_) {
    if (!ch.wanted) continue;
    const std::string now_at = describe(locator_.endpoint_for(name));
    if (now_at == ch.shard) continue;
    // The channel's slot has another master now: leave the old one, join the new one.
    auto old = shards_.find(ch.shard);
    if (old != shards_.end() && old->second.up) send_locked(old->second, "SUNSUBSCRIBE", name);
    ch.pending = 0;
    ch.on_server = false;
    ch.cuts.clear();  // their markers come back on the old master, unread
    Shard& shard = shard_for_locked(name, &ch.shard);
    if (shard.up) {
      ++ch.pending;
      send_locked(shard, "SSUBSCRIBE", name);
    }
  }
}

void PubSub::set_subscriber(Subscriber subscriber) { subscriber_.set(std::move(subscriber)); }

void PubSub::set_resubscribed(std::function<void()> f) { resubscribed_.set(std::move(f)); }

PubSub::Shard& PubSub::shard_for_locked(const std::string& channel, std::string* shard_key) {
  const RedisEndpoint endpoint = locator_.endpoint_for(channel);
  std::string key = describe(endpoint);
  auto [it, inserted] = shards_.try_emplace(key);
  if (inserted) {
    Connection::Events events;
    events.state = [this, key](bool up, const std::string& detail) { on_state(key, up, detail); };
    events.push = [this, key](Reply&& push) { on_push(key, std::move(push)); };
    it->second.connection = std::make_shared<Connection>(
        io_, routed(route_, endpoint), settings_, Connection::Mode::pubsub, "subscriber " + key, std::move(events));
    if (started_) it->second.connection->start();
  }
  if (shard_key) *shard_key = std::move(key);
  return it->second;
}

void PubSub::send_locked(Shard& shard, const char* verb, const std::string& channel) {
  std::string cmd;
  encode_command(cmd, {verb, channel});
  shard.connection->send(std::move(cmd), {});
}

std::string PubSub::cut_locked(Channel& ch, bool deliver_after) {
  if (ch.cuts.empty()) ch.delivering = !deliver_after;
  ch.cuts.push_back(Cut{kMarkerPrefix + marker_tag_ + std::to_string(++markers_), deliver_after});
  return ch.cuts.back().marker;
}

std::vector<std::function<void(std::exception_ptr)>> PubSub::on_marker_locked(const std::string& shard_key,
                                                                              const std::string& channel, Channel& ch,
                                                                              const std::string& marker) {
  std::vector<std::function<void(std::exception_ptr)>> ready;
  if (ch.cuts.empty() || ch.cuts.front().marker != marker) return ready;  // another node's
  ch.delivering = ch.cuts.front().deliver_after;
  ch.cuts.pop_front();
  if (!ch.cuts.empty()) return ready;
  if (!ch.wanted) {
    ++ch.pending;
    send_locked(shards_.at(shard_key), sharded_ ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", channel);
  } else if (ch.in_force()) {
    ready.swap(ch.waiters);
  }
  return ready;
}

void PubSub::subscribe(const std::string& channel) {
  std::string marker;
  {
    std::lock_guard lock(mu_);
    auto& ch = channels_[channel];
    if (ch.wanted) return;
    ch.wanted = true;
    if (ch.on_server && ch.pending == 0) {
      // Back before its leave marker returned: it never left the server. What arrives
      // between the leave marker and this join marker was published while unwanted.
      if (!ch.cuts.empty()) marker = cut_locked(ch, true);
    } else if (Shard& shard = shard_for_locked(channel, &ch.shard); shard.up) {
      ++ch.pending;
      send_locked(shard, sharded_ ? "SSUBSCRIBE" : "SUBSCRIBE", channel);
    }
  }
  if (!marker.empty()) publish(channel, std::make_shared<const std::string>(marker), [](std::string_view) {});
}

void PubSub::unsubscribe(const std::string& channel) {
  std::vector<std::function<void(std::exception_ptr)>> orphans;
  std::string marker;
  {
    std::lock_guard lock(mu_);
    auto it = channels_.find(channel);
    if (it == channels_.end() || !it->second.wanted) return;
    auto& ch = it->second;
    ch.wanted = false;
    orphans.swap(ch.waiters);
    auto& shard = shards_.at(ch.shard);
    if (shard.up && ch.on_server && ch.pending == 0) {
      // Leave at a cut that publish order defines (see the header): the marker goes out
      // on the publisher connection, behind everything published before this call.
      marker = cut_locked(ch, false);
    } else if (shard.up && ch.pending > 0) {
      ++ch.pending;
      send_locked(shard, sharded_ ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", channel);
    } else if (ch.pending == 0) {
      channels_.erase(it);
    }
  }
  if (!marker.empty()) publish(channel, std::make_shared<const std::string>(marker), [](std::string_view) {});
  for (auto& w : orphans) w(unavailable("unsubscribed before the subscription was in force"));
}

void PubSub::when_subscribed(const std::string& channel, std::function<void(std::exception_ptr)> done) {
  std::exception_ptr now;  // stays empty: in force already
  {
    std::lock_guard lock(mu_);
    auto it = channels_.find(channel);
    if (it == channels_.end() || !it->second.wanted) {
      now = unavailable("not subscribed to " + channel);
    } else if (it->second.in_force()) {
      // done below
    } else if (const auto& shard = shards_.at(it->second.shard);
               !shard.up && !shard.connection->connecting() && !shard.connection->up()) {
      // (A connection already up whose news has not reached on_state() yet is coming:
      // on_state() subscribes the channel and serves the waiters.)
      now = unavailable("subscriber " + it->second.shard + " is not connected");
    } else {
      it->second.waiters.push_back(std::move(done));
      return;
    }
  }
  done(now);
}

void PubSub::on_state(const std::string& shard_key, bool up, const std::string& detail) {
  std::vector<std::function<void(std::exception_ptr)>> failed;
  bool resubscribed = false;
  {
    std::lock_guard lock(mu_);
    Shard& shard = shards_.at(shard_key);
    const bool was_up = shard.up;
    shard.up = up;
    std::vector<std::string> wanted;
    for (auto it = channels_.begin(); it != channels_.end();) {
      auto& ch = it->second;
      if (ch.shard != shard_key) {
        ++it;
        continue;
      }
      ch.on_server = false;
      ch.pending = 0;
      ch.cuts.clear();
      if (!up) {  // coming up, they wait for the confirmations of the SUBSCRIBE below
        for (auto& w : ch.waiters) failed.push_back(std::move(w));
        ch.waiters.clear();
      }
      if (!ch.wanted) {
        it = channels_.erase(it);
        continue;
      }
      if (up) {
        ch.pending = 1;
        wanted.push_back(it->first);
      }
      ++it;
    }
    if (!up) {
      if (was_up) shard.was_lost = true;
      shard.resyncing = false;
    } else {
      shard.resyncing = true;
      // A cluster refuses SSUBSCRIBE for channels of different slots in one command.
      const std::size_t chunk = sharded_ ? 1 : kResubscribeChunk;
      for (std::size_t i = 0; i < wanted.size(); i += chunk) {
        std::vector<std::string> cmd{sharded_ ? "SSUBSCRIBE" : "SUBSCRIBE"};
        for (std::size_t j = i; j < std::min(wanted.size(), i + chunk); ++j) cmd.push_back(wanted[j]);
        std::string encoded;
        encode_command(encoded, cmd);
        shard.connection->send(std::move(encoded), {});
      }
      resubscribed = finish_resync_locked(shard_key, shard);
    }
  }
  const auto why = unavailable(detail.empty() ? "subscriber connection lost" : detail);
  for (auto& w : failed) w(why);
  if (resubscribed) resubscribed_();
}

bool PubSub::finish_resync_locked(const std::string& shard_key, Shard& shard) {
  if (!shard.resyncing) return false;
  for (const auto& [name, ch] : channels_) {
    if (ch.shard == shard_key && ch.wanted && (ch.pending > 0 || !ch.on_server)) return false;
  }
  shard.resyncing = false;
  const bool owed = shard.was_lost;
  shard.was_lost = false;
  if (owed) log::info("redis_resubscribed", {{"subscriber", shard_key}});
  return owed;
}

void PubSub::on_push(const std::string& shard_key, Reply&& push) {
  if (push.type != Reply::Type::array || push.elements.size() < 3) {
    if (push.is_error()) log::warn("redis_subscriber_error", {{"subscriber", shard_key}, {"error", push.str}});
    return;
  }
  const std::string& kind = push.elements[0].str;
  std::string& channel = push.elements[1].str;
  if (kind == "message" || kind == "smessage") {
    bool deliver = false;
    std::vector<std::function<void(std::exception_ptr)>> ready;
    {
      std::lock_guard lock(mu_);
      auto it = channels_.find(channel);
      if (it == channels_.end() || !it->second.on_server || it->second.shard != shard_key) return;
      auto& ch = it->second;
      if (push.elements[2].str.rfind(kMarkerPrefix, 0) == 0) {  // never delivered
        ready = on_marker_locked(shard_key, channel, ch, push.elements[2].str);
      } else if (ch.delivers()) {
        deliver = true;
      }
    }
    for (auto& w : ready) w(nullptr);
    if (!deliver) return;
    auto payload = std::make_shared<const std::string>(std::move(push.elements[2].str));
    subscriber_(channel.substr(std::min(prefix_.size(), channel.size())), std::move(payload));
    return;
  }
  const bool subscribed = kind == "subscribe" || kind == "ssubscribe";
  if (!subscribed && kind != "unsubscribe" && kind != "sunsubscribe") return;
  std::vector<std::function<void(std::exception_ptr)>> ready;
  bool resubscribed = false;
  {
    std::lock_guard lock(mu_);
    auto it = channels_.find(channel);
    if (it == channels_.end() || it->second.shard != shard_key) return;  // from a shard it left
    auto& ch = it->second;
    const bool unsolicited = ch.pending == 0;
    if (ch.pending > 0) --ch.pending;
    ch.on_server = subscribed;
    if (!subscribed) ch.cuts.clear();  // dropped by the server: no marker comes back
    if (ch.pending == 0) {
      if (ch.in_force()) {
        ready.swap(ch.waiters);
      } else if (!ch.wanted && !ch.on_server) {
        channels_.erase(it);
      } else if (ch.wanted && unsolicited) {
        // The server dropped a wanted channel on its own (a cluster slot moved): subscribe
        // again where it lives now.
        Shard& shard = shard_for_locked(channel, &ch.shard);
        if (shard.up) {
          ++ch.pending;
          send_locked(shard, sharded_ ? "SSUBSCRIBE" : "SUBSCRIBE", channel);
        }
      }
    }
    Shard& shard = shards_.at(shard_key);
    resubscribed = finish_resync_locked(shard_key, shard);
  }
  for (auto& w : ready) w(nullptr);
  if (resubscribed) resubscribed_();
}

void PubSub::publish(const std::string& channel, std::shared_ptr<const std::string> payload, PublishDone done) {
  std::string cmd;
  encode_command(cmd, {sharded_ ? "SPUBLISH" : "PUBLISH", channel, *payload});
  publisher_.send(channel, std::move(cmd), [done = std::move(done), channel](std::exception_ptr e, Reply r) {
    std::string error;
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        error = ex.what();
      }
    } else if (r.is_error()) {
      error = "redis refused the publication: " + r.str;
    }
    if (done) {
      done(error);
    } else if (!error.empty()) {
      log::warn("publication_failed", {{"channel", channel}, {"why", error}});
    }
  });
}

BrokerHealth PubSub::health() const {
  std::string detail;
  if (!publisher_.up(&detail)) return {false, "publisher: " + detail};
  std::lock_guard lock(mu_);
  for (const auto& [key, shard] : shards_) {
    if (!shard.up) return {false, "subscriber " + key + " is not connected"};
    if (shard.resyncing) return {false, "subscriber " + key + " is subscribing its channels again"};
  }
  return {};
}

}  // namespace chatorbit::engine::redis
