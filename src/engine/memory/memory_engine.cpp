#include "engine/memory/memory_engine.hpp"

#include "core/log.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace chatorbit::engine {
namespace {

using std::chrono::milliseconds;

constexpr std::size_t kShards = 16;
// Stale keys examined per call in the shard the call touches: enough to outpace the
// rate at which keys are created, small enough to keep every call cheap.
constexpr std::size_t kSweepBudget = 4;
constexpr std::size_t kDeliveryLocks = 64;

std::size_t shard_of(std::string_view key) { return std::hash<std::string_view>{}(key) % kShards; }

std::size_t shard_of(std::string_view a, std::string_view b) {
  // Combined so that ("ab", "c") and ("a", "bc") usually differ.
  const std::size_t h = std::hash<std::string_view>{}(a);
  return (h ^ (std::hash<std::string_view>{}(b) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2))) % kShards;
}

std::int64_t to_ms(std::chrono::seconds s) { return std::chrono::duration_cast<milliseconds>(s).count(); }

bool unlimited(const RateSpec& spec) { return spec.count <= 0 || spec.window.count() <= 0; }

// Visits up to kSweepBudget entries of an ordered map, resuming where the previous call
// stopped, and erases those `stale` reports as stale. Ordered maps are used for swept
// keys because the cursor must survive inserts and erases between calls.
template <class Map, class Stale>
void sweep(Map& map, typename Map::key_type& cursor, Stale stale) {
  auto it = map.lower_bound(cursor);
  for (std::size_t i = 0; i < kSweepBudget && !map.empty(); ++i) {
    if (it == map.end()) it = map.begin();
    if (stale(it->second)) {
      it = map.erase(it);
    } else {
      ++it;
    }
  }
  cursor = it == map.end() ? typename Map::key_type{} : it->first;
}

// --- sliding window: a log of accepted timestamps (a Redis sorted set's ZREMRANGEBYSCORE,
// ZCARD, ZADD) rather than fixed buckets, so a burst at a bucket edge cannot double the limit.
struct Window {
  std::deque<std::int64_t> accepted;  // ascending
  std::int64_t window_ms = 0;

  void slide(std::int64_t now) {
    while (!accepted.empty() && accepted.front() + window_ms <= now) accepted.pop_front();
  }
  bool stale(std::int64_t now) {
    slide(now);
    return accepted.empty();
  }
  /// Time until a slot frees, or 0 if one is free now.
  std::int64_t wait(const RateSpec& spec, std::int64_t now) {
    if (unlimited(spec)) return 0;
    window_ms = to_ms(spec.window);  // the current spec wins if it changed
    slide(now);
    const auto count = static_cast<std::size_t>(spec.count);
    if (accepted.size() < count) return 0;
    // The entry that must leave the window for the log to drop below `count`.
    const std::int64_t leaves_at = accepted[accepted.size() - count] + window_ms;
    return std::max<std::int64_t>(leaves_at - now, 1);
  }
  void record(const RateSpec& spec, std::int64_t now) {
    if (!unlimited(spec)) accepted.push_back(now);
  }
};

Admission refused(Admission::Verdict verdict, std::int64_t retry_after_ms) {
  Admission a;
  a.verdict = verdict;
  a.retry_after = milliseconds{retry_after_ms};
  return a;
}

// The engine that re-entrant publications on this thread belong to, with their payloads.
struct Pending {
  MemoryEngine* engine;
  std::string channel;
  std::shared_ptr<const std::string> payload;
};

struct DeliveryState {
  bool delivering = false;
  std::deque<Pending> queue;
};

DeliveryState& this_thread_delivery() {
  thread_local DeliveryState state;
  return state;
}

}  // namespace

// --- state, by concern -------------------------------------------------------------------

struct MemoryEngine::Broker {
  std::mutex mu;  // channels; never held while the subscriber runs
  std::unordered_set<std::string> channels;
  SubscriberSlot subscriber;
  CallbackSlot<> resubscribed;
  std::atomic<bool> down{false};  // set_broker_down(): a test's stand-in for a lost connection
  // Held while the subscriber runs, so deliveries on a channel are serialised in lock order.
  std::array<std::mutex, kDeliveryLocks> delivery;
};

struct MemoryEngine::Presence {
  struct Conn {
    std::string user_id;
    std::int64_t expires_at = 0;
  };
  // Counts are maintained incrementally and entries kept ordered by expiry, so a count is
  // O(expired entries) rather than O(room size).
  struct Room {
    std::unordered_map<std::string, Conn> conns;
    std::set<std::pair<std::int64_t, std::string>> by_expiry;
    std::unordered_map<std::string, std::int64_t> conns_per_user;
    std::int64_t viewers = 0;

    void erase(std::unordered_map<std::string, Conn>::iterator it) {
      by_expiry.erase({it->second.expires_at, it->first});
      if (it->second.user_id.empty()) {
        --viewers;
      } else if (auto u = conns_per_user.find(it->second.user_id); --u->second == 0) {
        conns_per_user.erase(u);
      }
      conns.erase(it);
    }
    void upsert(const std::string& conn_id, const std::string& user_id, std::int64_t expires_at) {
      if (auto it = conns.find(conn_id); it != conns.end()) erase(it);
      conns.emplace(conn_id, Conn{user_id, expires_at});
      by_expiry.emplace(expires_at, conn_id);
      if (user_id.empty()) {
        ++viewers;
      } else {
        ++conns_per_user[user_id];
      }
    }
    void prune(std::int64_t now) {
      while (!by_expiry.empty() && by_expiry.begin()->first <= now) erase(conns.find(by_expiry.begin()->second));
    }
    bool stale(std::int64_t now) {
      prune(now);
      return conns.empty();
    }
  };
  struct Shard {
    std::mutex mu;
    std::map<std::string, Room> rooms;
    std::string cursor;

    void remove(const std::string& room_id, const std::string& conn_id) {
      auto room = rooms.find(room_id);
      if (room == rooms.end()) return;
      if (auto c = room->second.conns.find(conn_id); c != room->second.conns.end()) room->second.erase(c);
      if (room->second.conns.empty()) rooms.erase(room);
    }
  };
  std::array<Shard, kShards> shards;
};

struct MemoryEngine::Bans {
  struct Ban {
    std::string reason;
    std::int64_t expires_at = 0;  // 0 = permanent
    bool live(std::int64_t now) const { return expires_at == 0 || expires_at > now; }
  };
  using Key = std::pair<std::string, std::string>;  // (user_id, scope)
  // Sharded by user, so a room ban and a global ban of one user are read together.
  struct Shard {
    std::mutex mu;
    std::map<Key, Ban> bans;
    Key cursor;
  };
  std::array<Shard, kShards> shards;
};

struct MemoryEngine::Limits {
  struct Poster {
    std::optional<std::int64_t> last_post;  // of the last accepted post
    std::int64_t slow_until = 0;            // last_post + the slow-mode interval in force then
    Window window;
    bool stale(std::int64_t now) { return window.stale(now) && slow_until <= now; }
  };
  using PosterKey = std::pair<std::string, std::string>;  // (room_id, user_id)
  struct Shard {
    std::mutex mu;
    std::map<PosterKey, Poster> posters;
    PosterKey poster_cursor;
    std::map<std::string, Window> keys;
    std::string key_cursor;
  };
  std::array<Shard, kShards> shards;
};

struct MemoryEngine::Tokens {
  struct Floor {
    std::int64_t not_before_s = 0;
    std::int64_t expires_at = 0;
  };
  struct Shard {
    std::mutex mu;
    std::map<std::string, std::int64_t> revoked;  // jti -> expires_at (ms)
    std::string revoked_cursor;
    std::map<std::string, Floor> floors;  // user id -> floor
    std::string floor_cursor;

    void sweep_stale(std::int64_t now) {
      sweep(revoked, revoked_cursor, [now](std::int64_t expires_at) { return expires_at <= now; });
      sweep(floors, floor_cursor, [now](const Floor& f) { return f.expires_at <= now; });
    }
  };
  std::array<Shard, kShards> shards;
};

struct MemoryEngine::Slots {
  // One key's members, ordered by expiry as well (the sorted set Redis would keep), so
  // pruning costs only the expired members.
  struct Set {
    std::unordered_map<std::string, std::int64_t> members;  // member -> expires_at (ms)
    std::set<std::pair<std::int64_t, std::string>> by_expiry;

    void put(const std::string& member, std::int64_t expires_at) {
      auto [it, fresh] = members.try_emplace(member, expires_at);
      if (!fresh) {
        by_expiry.erase({it->second, member});
        it->second = expires_at;
      }
      by_expiry.emplace(expires_at, member);
    }
    void erase(const std::string& member) {
      if (auto it = members.find(member); it != members.end()) {
        by_expiry.erase({it->second, member});
        members.erase(it);
      }
    }
    void prune(std::int64_t now) {
      while (!by_expiry.empty() && by_expiry.begin()->first <= now) {
        members.erase(by_expiry.begin()->second);
        by_expiry.erase(by_expiry.begin());
      }
    }
    bool stale(std::int64_t now) {
      prune(now);
      return members.empty();
    }
  };
  struct Shard {
    std::mutex mu;
    std::map<std::string, Set> sets;
    std::string cursor;
  };
  std::array<Shard, kShards> shards;
};

struct MemoryEngine::Failures {
  struct Shard {
    std::mutex mu;
    std::map<std::string, Window> keys;  // a failure's window is the one recorded with it
    std::string cursor;
  };
  std::array<Shard, kShards> shards;
};

struct MemoryEngine::Sequences {
  std::mutex mu;
  std::unordered_map<std::string, std::uint64_t> last;  // highest number handed out or floor
};

MemoryEngine::MemoryEngine(const Clock& clock)
    : clock_(clock),
      broker_(std::make_unique<Broker>()),
      presence_(std::make_unique<Presence>()),
      bans_(std::make_unique<Bans>()),
      limits_(std::make_unique<Limits>()),
      tokens_(std::make_unique<Tokens>()),
      slots_(std::make_unique<Slots>()),
      failures_(std::make_unique<Failures>()),
      sequences_(std::make_unique<Sequences>()) {}

MemoryEngine::~MemoryEngine() = default;

std::int64_t MemoryEngine::now_ms() const { return clock_.unix_millis(); }

// --- broker --------------------------------------------------------------------------------

void MemoryEngine::set_subscriber(Subscriber subscriber) { broker_->subscriber.set(std::move(subscriber)); }

void MemoryEngine::subscribe(const std::string& channel) {
  std::lock_guard lock(broker_->mu);
  broker_->channels.insert(channel);  // wanted even while down: in force when it is back
}

boost::asio::awaitable<void> MemoryEngine::subscribed(const std::string&) {
  if (broker_->down.load()) throw EngineUnavailable("memory engine: broker marked down");
  co_return;
}

BrokerHealth MemoryEngine::broker_health() const {
  if (broker_->down.load()) return {false, "broker marked down"};
  return {};
}

void MemoryEngine::set_resubscribed(std::function<void()> f) { broker_->resubscribed.set(std::move(f)); }

void MemoryEngine::set_broker_down(bool down) {
  const bool was = broker_->down.exchange(down);
  if (was && !down) broker_->resubscribed();
}

void MemoryEngine::unsubscribe(const std::string& channel) {
  std::lock_guard lock(broker_->mu);
  broker_->channels.erase(channel);
}

void MemoryEngine::publish(const std::string& channel, std::shared_ptr<const std::string> payload, PublishDone done) {
  if (broker_->down.load()) {
    if (done) {
      done("memory engine: broker marked down");
    } else {
      log::warn("publish_failed", {{"channel", channel}, {"error", "broker marked down"}});
    }
    return;
  }
  struct Report {  // after the delivery, also when the subscriber throws
    PublishDone& done;
    ~Report() {
      if (done) done({});
    }
  } report{done};
  auto& state = this_thread_delivery();
  if (state.delivering) {
    // Called from a subscriber: delivering now would take a delivery lock this thread
    // may already hold, so the outer publish() delivers it next.
    state.queue.push_back(Pending{this, channel, std::move(payload)});
    return;
  }
  struct Reset {
    DeliveryState& s;
    ~Reset() {
      s.delivering = false;
      s.queue.clear();
    }
  } reset{state};
  state.delivering = true;
  deliver(channel, payload);
  while (!state.queue.empty()) {
    Pending next = std::move(state.queue.front());
    state.queue.pop_front();
    next.engine->deliver(next.channel, next.payload);
  }
}

void MemoryEngine::deliver(const std::string& channel, const std::shared_ptr<const std::string>& payload) {
  std::lock_guard order(broker_->delivery[std::hash<std::string>{}(channel) % kDeliveryLocks]);
  {
    std::lock_guard lock(broker_->mu);
    if (!broker_->channels.contains(channel)) return;
  }
  broker_->subscriber(channel, payload);
}

// --- presence ------------------------------------------------------------------------------

boost::asio::awaitable<void> MemoryEngine::presence_refresh(std::vector<PresenceEntry> entries,
                                                            std::chrono::seconds ttl) {
  const std::int64_t now = now_ms();
  const std::int64_t expires_at = now + to_ms(ttl);
  for (auto& e : entries) {
    auto& shard = presence_->shards[shard_of(e.room_id)];
    std::lock_guard lock(shard.mu);
    sweep(shard.rooms, shard.cursor, [now](Presence::Room& r) { return r.stale(now); });
    if (expires_at <= now) {
      shard.remove(e.room_id, e.conn_id);  // already expired
    } else {
      shard.rooms[e.room_id].upsert(e.conn_id, e.user_id, expires_at);
    }
  }
  co_return;
}

boost::asio::awaitable<void> MemoryEngine::presence_remove(std::vector<PresenceEntry> entries) {
  const std::int64_t now = now_ms();
  for (const auto& e : entries) {
    auto& shard = presence_->shards[shard_of(e.room_id)];
    std::lock_guard lock(shard.mu);
    sweep(shard.rooms, shard.cursor, [now](Presence::Room& r) { return r.stale(now); });
    shard.remove(e.room_id, e.conn_id);
  }
  co_return;
}

boost::asio::awaitable<std::vector<PresenceCounts>> MemoryEngine::presence_counts(std::vector<std::string> rooms) {
  const std::int64_t now = now_ms();
  std::vector<PresenceCounts> out;
  out.reserve(rooms.size());
  for (const auto& room_id : rooms) {
    auto& shard = presence_->shards[shard_of(room_id)];
    std::lock_guard lock(shard.mu);
    sweep(shard.rooms, shard.cursor, [now](Presence::Room& r) { return r.stale(now); });
    PresenceCounts counts;
    if (auto room = shard.rooms.find(room_id); room != shard.rooms.end()) {
      if (room->second.stale(now)) {
        shard.rooms.erase(room);
      } else {
        counts.chatters = static_cast<std::int64_t>(room->second.conns_per_user.size());
        counts.viewers = room->second.viewers;
      }
    }
    out.push_back(counts);
  }
  co_return out;
}

// --- bans ----------------------------------------------------------------------------------

boost::asio::awaitable<void> MemoryEngine::ban(std::string scope, std::string user_id, std::string reason,
                                               std::optional<std::chrono::seconds> ttl) {
  const std::int64_t now = now_ms();
  auto& shard = bans_->shards[shard_of(user_id)];
  std::lock_guard lock(shard.mu);
  sweep(shard.bans, shard.cursor, [now](const Bans::Ban& b) { return !b.live(now); });
  Bans::Key key{std::move(user_id), std::move(scope)};
  if (ttl && ttl->count() <= 0) {
    shard.bans.erase(key);
    co_return;
  }
  shard.bans.insert_or_assign(std::move(key), Bans::Ban{std::move(reason), ttl ? now + to_ms(*ttl) : 0});
  co_return;
}

boost::asio::awaitable<bool> MemoryEngine::unban(std::string scope, std::string user_id) {
  const std::int64_t now = now_ms();
  auto& shard = bans_->shards[shard_of(user_id)];
  std::lock_guard lock(shard.mu);
  sweep(shard.bans, shard.cursor, [now](const Bans::Ban& b) { return !b.live(now); });
  auto it = shard.bans.find(Bans::Key{std::move(user_id), std::move(scope)});
  if (it == shard.bans.end()) co_return false;
  const bool was_live = it->second.live(now);
  shard.bans.erase(it);
  co_return was_live;
}

std::optional<BanState> MemoryEngine::find_ban(const std::string& room_id, const std::string& user_id) {
  const std::int64_t now = now_ms();
  auto& shard = bans_->shards[shard_of(user_id)];
  std::lock_guard lock(shard.mu);
  sweep(shard.bans, shard.cursor, [now](const Bans::Ban& b) { return !b.live(now); });
  std::optional<BanState> best;
  const auto consider = [&](const std::string& scope) {
    auto it = shard.bans.find(Bans::Key{user_id, scope});
    if (it == shard.bans.end()) return;
    if (!it->second.live(now)) {
      shard.bans.erase(it);
      return;
    }
    const std::int64_t expires = it->second.expires_at;
    if (!best || (best->expires_at_ms != 0 && (expires == 0 || expires > best->expires_at_ms))) {
      best = BanState{scope, it->second.reason, expires};
    }
  };
  consider(room_id);  // first, so that it wins a tie
  if (!room_id.empty()) consider(std::string{});
  return best;
}

boost::asio::awaitable<std::optional<BanState>> MemoryEngine::ban_state(std::string room_id, std::string user_id) {
  co_return find_ban(room_id, user_id);
}

// --- admission -----------------------------------------------------------------------------

boost::asio::awaitable<Admission> MemoryEngine::admit(AdmitRequest request) {
  if (auto ban = find_ban(request.room_id, request.user_id)) {
    // Read the clock after the ban lookup so retry_after is never negative. At least
    // 1 ms for a timed ban: 0 is a permanent one.
    const auto left = ban->retry_after_ms(now_ms());
    Admission a = refused(Admission::Verdict::banned, left ? std::max<std::int64_t>(*left, 1) : 0);
    a.ban = std::move(ban);
    co_return a;
  }
  const std::int64_t now = now_ms();
  auto& shard = limits_->shards[shard_of(request.room_id, request.user_id)];
  std::lock_guard lock(shard.mu);
  sweep(shard.posters, shard.poster_cursor, [now](Limits::Poster& p) { return p.stale(now); });
  auto& poster = shard.posters[Limits::PosterKey{request.room_id, request.user_id}];
  const std::int64_t slow_ms =
      request.slow_mode_seconds > 0 ? to_ms(std::chrono::seconds{request.slow_mode_seconds}) : 0;
  if (slow_ms > 0 && poster.last_post && *poster.last_post + slow_ms > now) {
    co_return refused(Admission::Verdict::slow_mode, *poster.last_post + slow_ms - now);
  }
  if (const std::int64_t wait = poster.window.wait(request.rate, now); wait > 0) {
    co_return refused(Admission::Verdict::rate_limited, wait);
  }
  poster.window.record(request.rate, now);
  poster.last_post = now;
  poster.slow_until = now + slow_ms;
  co_return Admission{};
}

boost::asio::awaitable<Admission> MemoryEngine::rate_hit(std::string key, RateSpec rate) {
  const std::int64_t now = now_ms();
  auto& shard = limits_->shards[shard_of(key)];
  std::lock_guard lock(shard.mu);
  sweep(shard.keys, shard.key_cursor, [now](Window& w) { return w.stale(now); });
  if (unlimited(rate)) co_return Admission{};
  auto& window = shard.keys[std::move(key)];
  if (const std::int64_t wait = window.wait(rate, now); wait > 0) {
    co_return refused(Admission::Verdict::rate_limited, wait);
  }
  window.record(rate, now);
  co_return Admission{};
}

// --- token revocations -----------------------------------------------------------------------

boost::asio::awaitable<void> MemoryEngine::revoke_token(std::string jti, std::chrono::seconds ttl) {
  if (ttl.count() <= 0) co_return;
  const std::int64_t now = now_ms();
  auto& shard = tokens_->shards[shard_of(jti)];
  std::lock_guard lock(shard.mu);
  shard.sweep_stale(now);
  auto& expires_at = shard.revoked[std::move(jti)];
  expires_at = std::max(expires_at, now + to_ms(ttl));
  co_return;
}

boost::asio::awaitable<void> MemoryEngine::put_token_floor(std::string user_id, std::int64_t not_before_s,
                                                           std::chrono::seconds ttl) {
  if (ttl.count() <= 0) co_return;
  const std::int64_t now = now_ms();
  auto& shard = tokens_->shards[shard_of(user_id)];
  std::lock_guard lock(shard.mu);
  shard.sweep_stale(now);
  const Tokens::Floor wanted{not_before_s, now + to_ms(ttl)};
  auto [it, fresh] = shard.floors.try_emplace(std::move(user_id), wanted);
  if (!fresh) {
    auto& f = it->second;
    if (f.expires_at <= now) {
      f = wanted;  // the old one had expired: nothing to keep of it
    } else {
      f.not_before_s = std::max(f.not_before_s, wanted.not_before_s);
      f.expires_at = std::max(f.expires_at, wanted.expires_at);
    }
  }
  co_return;
}

boost::asio::awaitable<TokenRevocations> MemoryEngine::token_revocations() {
  const std::int64_t now = now_ms();
  TokenRevocations out;
  for (auto& shard : tokens_->shards) {
    std::lock_guard lock(shard.mu);
    std::erase_if(shard.revoked, [now](const auto& kv) { return kv.second <= now; });
    std::erase_if(shard.floors, [now](const auto& kv) { return kv.second.expires_at <= now; });
    for (const auto& [jti, expires_at] : shard.revoked) out.tokens.push_back(RevokedToken{jti, expires_at});
    for (const auto& [user, f] : shard.floors) out.floors.push_back(TokenFloor{user, f.not_before_s, f.expires_at});
  }
  co_return out;
}

boost::asio::awaitable<bool> MemoryEngine::is_token_revoked(std::string jti, std::string user_id, std::int64_t iat) {
  const std::int64_t now = now_ms();
  if (!jti.empty()) {
    auto& shard = tokens_->shards[shard_of(jti)];
    std::lock_guard lock(shard.mu);
    if (auto it = shard.revoked.find(jti); it != shard.revoked.end() && it->second > now) co_return true;
  }
  auto& shard = tokens_->shards[shard_of(user_id)];
  std::lock_guard lock(shard.mu);
  const auto it = shard.floors.find(user_id);
  co_return it != shard.floors.end() && it->second.expires_at > now&& iat < it->second.not_before_s;
}

void MemoryEngine::forget_token_revocations() {
  for (auto& shard : tokens_->shards) {
    std::lock_guard lock(shard.mu);
    shard.revoked.clear();
    shard.floors.clear();
    shard.revoked_cursor.clear();
    shard.floor_cursor.clear();
  }
}

// --- counting slots --------------------------------------------------------------------------

boost::asio::awaitable<bool> MemoryEngine::claim_slot(std::string key, std::string member, std::int64_t limit,
                                                      std::chrono::seconds ttl) {
  const std::int64_t now = now_ms();
  auto& shard = slots_->shards[shard_of(key)];
  std::lock_guard lock(shard.mu);
  sweep(shard.sets, shard.cursor, [now](Slots::Set& set) { return set.stale(now); });
  auto it = shard.sets.find(key);
  if (it != shard.sets.end()) it->second.prune(now);
  const bool holds = it != shard.sets.end() && it->second.members.contains(member);
  const auto in_use = it == shard.sets.end() ? 0 : static_cast<std::int64_t>(it->second.members.size());
  if (!holds && in_use >= limit) co_return false;
  // A ttl of zero or less gives a slot that has expired already: pruned at the next touch.
  if (it == shard.sets.end()) it = shard.sets.emplace(std::move(key), Slots::Set{}).first;
  it->second.put(member, now + to_ms(ttl));
  co_return true;
}

boost::asio::awaitable<void> MemoryEngine::release_slot(std::string key, std::string member) {
  const std::int64_t now = now_ms();
  auto& shard = slots_->shards[shard_of(key)];
  std::lock_guard lock(shard.mu);
  sweep(shard.sets, shard.cursor, [now](Slots::Set& set) { return set.stale(now); });
  if (auto it = shard.sets.find(key); it != shard.sets.end()) {
    it->second.erase(member);
    if (it->second.stale(now)) shard.sets.erase(it);
  }
  co_return;
}

boost::asio::awaitable<void> MemoryEngine::refresh_slots(std::vector<SlotRef> slots, std::chrono::seconds ttl) {
  const std::int64_t now = now_ms();
  const std::int64_t expires_at = now + to_ms(ttl);
  for (const auto& ref : slots) {
    auto& shard = slots_->shards[shard_of(ref.key)];
    std::lock_guard lock(shard.mu);
    sweep(shard.sets, shard.cursor, [now](Slots::Set& set) { return set.stale(now); });
    auto it = shard.sets.find(ref.key);
    if (it == shard.sets.end()) continue;
    it->second.prune(now);
    if (it->second.members.contains(ref.member)) it->second.put(ref.member, expires_at);
    if (it->second.stale(now)) shard.sets.erase(it);
  }
  co_return;
}

boost::asio::awaitable<std::int64_t> MemoryEngine::slots_in_use(std::string key) {
  const std::int64_t now = now_ms();
  auto& shard = slots_->shards[shard_of(key)];
  std::lock_guard lock(shard.mu);
  sweep(shard.sets, shard.cursor, [now](Slots::Set& set) { return set.stale(now); });
  auto it = shard.sets.find(key);
  if (it == shard.sets.end()) co_return 0;
  if (it->second.stale(now)) {
    shard.sets.erase(it);
    co_return 0;
  }
  co_return static_cast<std::int64_t>(it->second.members.size());
}

// --- failure counters ----------------------------------------------------------------------

boost::asio::awaitable<void> MemoryEngine::record_failure(std::string key, std::chrono::seconds window) {
  const std::int64_t now = now_ms();
  auto& shard = failures_->shards[shard_of(key)];
  std::lock_guard lock(shard.mu);
  sweep(shard.keys, shard.cursor, [now](Window& w) { return w.stale(now); });
  auto& w = shard.keys[std::move(key)];
  w.window_ms = to_ms(window);
  w.slide(now);
  w.accepted.push_back(now);
  co_return;
}

boost::asio::awaitable<std::vector<std::int64_t>> MemoryEngine::recent_failures(std::string key,
                                                                                std::chrono::seconds window,
                                                                                std::size_t limit) {
  const std::int64_t now = now_ms();
  auto& shard = failures_->shards[shard_of(key)];
  std::lock_guard lock(shard.mu);
  auto it = shard.keys.find(key);
  if (it == shard.keys.end()) co_return std::vector<std::int64_t>{};
  std::vector<std::int64_t> out;
  for (const std::int64_t t : it->second.accepted) {
    if (t + to_ms(window) > now) out.push_back(t);
  }
  if (out.size() > limit) out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(limit));
  co_return out;
}

boost::asio::awaitable<void> MemoryEngine::clear_failures(std::string key) {
  auto& shard = failures_->shards[shard_of(key)];
  std::lock_guard lock(shard.mu);
  shard.keys.erase(key);
  co_return;
}

// --- sequences -----------------------------------------------------------------------------

boost::asio::awaitable<std::vector<std::uint64_t>> MemoryEngine::reserve_sequences(
    std::vector<SequenceRequest> requests) {
  std::vector<std::uint64_t> firsts;
  firsts.reserve(requests.size());
  {
    std::lock_guard lock(sequences_->mu);
    for (const auto& r : requests) {
      auto it = sequences_->last.find(r.room_id);
      if (it == sequences_->last.end()) {
        if (!r.floor) {
          firsts.push_back(0);  // unknown counter: the caller brings the store's floor
          continue;
        }
        it = sequences_->last.emplace(r.room_id, *r.floor).first;
      } else if (r.floor) {
        it->second = std::max(it->second, *r.floor);
      }
      firsts.push_back(it->second + 1);
      it->second += std::max<std::uint32_t>(r.count, 1);
    }
  }
  co_return firsts;
}

void MemoryEngine::forget_sequences() {
  std::lock_guard lock(sequences_->mu);
  sequences_->last.clear();
}

// --- diagnostics ---------------------------------------------------------------------------

std::size_t MemoryEngine::tracked_keys() const {
  std::size_t n = 0;
  {
    std::lock_guard lock(broker_->mu);
    n += broker_->channels.size();
  }
  for (auto& shard : presence_->shards) {
    std::lock_guard lock(shard.mu);
    n += shard.rooms.size();
  }
  for (auto& shard : bans_->shards) {
    std::lock_guard lock(shard.mu);
    n += shard.bans.size();
  }
  for (auto& shard : limits_->shards) {
    std::lock_guard lock(shard.mu);
    n += shard.posters.size() + shard.keys.size();
  }
  for (auto& shard : tokens_->shards) {
    std::lock_guard lock(shard.mu);
    n += shard.revoked.size() + shard.floors.size();
  }
  for (auto& shard : slots_->shards) {
    std::lock_guard lock(shard.mu);
    n += shard.sets.size();
  }
  std::lock_guard lock(sequences_->mu);
  return n + sequences_->last.size();
}

}  // namespace chatorbit::engine
