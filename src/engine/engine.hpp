#pragma once
// The engine seam: state that chat nodes must share in real time. Implementations:
// memory/ (one process, the embedded default) and redis/ (many nodes, on one Redis or a
// Redis Cluster: pub/sub for fan-out, keys with TTL for bans, sorted sets with per-member
// expiry for presence, revocations, slots and failures, Lua over sorted sets for sliding
// windows; docs/redis.md). Both pass the same conformance suites (engine_conformance.hpp,
// multi_node_conformance.hpp).
//
// Threading: every method is thread-safe. Awaitable methods complete on the caller's
// executor. Time comes from the injected Clock, so TTLs can be tested without sleeping.
//
// Failure: an awaitable method throws EngineUnavailable when the backend cannot be
// reached (the memory engine never does, except subscribed() while its broker is marked
// down). State is not durable: an engine may come back empty (a memory engine after a
// restart, a Redis restarted without persistence), so whatever the store keeps a durable
// record of (bans, token revocations) is put back by the caller when the broker is back
// (set_resubscribed()) and at start.

#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/callback_slot.hpp"
#include "core/config.hpp"

namespace chatorbit::engine {

/// One connection's presence in a room. user_id empty = an anonymous viewer.
struct PresenceEntry {
  std::string room_id;
  std::string conn_id;  ///< unique per connection across nodes
  std::string user_id;
};

struct PresenceCounts {
  std::int64_t chatters = 0;  ///< distinct signed-in users with at least one live connection
  std::int64_t viewers = 0;   ///< anonymous connections
  std::int64_t online() const { return chatters + viewers; }
};

/// A ban in force. scope "" = global, else a room id.
struct BanState {
  std::string scope;
  std::string reason;
  std::int64_t expires_at_ms = 0;  ///< 0 = permanent

  /// How long until the ban ends, for a client's retry_after_ms; nullopt if permanent.
  std::optional<std::int64_t> retry_after_ms(std::int64_t now_ms) const {
    if (expires_at_ms == 0) return std::nullopt;
    return std::max<std::int64_t>(0, expires_at_ms - now_ms);
  }
};

/// What may happen to a message a user wants to post.
struct AdmitRequest {
  std::string room_id;
  std::string user_id;
  RateSpec rate;              ///< the sender's sliding-window limit
  int slow_mode_seconds = 0;  ///< 0 = off (moderators are passed 0)
};

/// One room's share of a batch reservation (Engine::reserve_sequences).
struct SequenceRequest {
  std::string room_id;
  std::uint32_t count = 1;  ///< numbers wanted, at least 1
  /// The highest seq the store holds for the room, when the caller has read it: the
  /// counter is first raised to at least this. nullopt: reserve only if the engine still
  /// has the room's counter.
  std::optional<std::uint64_t> floor;
};

struct Admission {
  enum class Verdict { ok, banned, slow_mode, rate_limited };
  Verdict verdict = Verdict::ok;
  std::chrono::milliseconds retry_after{0};  ///< slow_mode / rate_limited / timed-out ban
  std::optional<BanState> ban;               ///< when banned
};

/// A token revoked by its id (logout), as the engine holds it.
struct RevokedToken {
  std::string jti;
  std::int64_t expires_at_ms = 0;  ///< when the engine drops it (the token's exp)
  bool operator==(const RevokedToken&) const = default;
};

/// A user's token floor (password change): tokens of the user with an iat below
/// not_before_s are revoked.
struct TokenFloor {
  std::string user_id;
  std::int64_t not_before_s = 0;   ///< Unix seconds, compared with a token's iat
  std::int64_t expires_at_ms = 0;  ///< when the engine drops it (the last covered token's exp)
  bool operator==(const TokenFloor&) const = default;
};

/// Every token revocation in force, for a node's cache (auth::RevocationList). Order
/// unspecified.
struct TokenRevocations {
  std::vector<RevokedToken> tokens;
  std::vector<TokenFloor> floors;
};

/// One member of a counting slot set (Engine::claim_slot), for refresh_slots().
struct SlotRef {
  std::string key;
  std::string member;
};

/// Receives every publication on the channels this node subscribed to, in publish order
/// per channel. Called on an engine-owned thread (or inline in publish() for memory):
/// it must not block, and must hand work to the event loops itself.
using Subscriber = std::function<void(const std::string& channel, std::shared_ptr<const std::string> payload)>;
/// Where an engine keeps its subscriber (see set_subscriber()).
using SubscriberSlot = CallbackSlot<const std::string&, std::shared_ptr<const std::string>>;

/// What became of one publish(): called once, on an engine thread (or inline), with an
/// empty string when the broker took the publication and with the reason when it did
/// not (then no node receives it). Must not block.
using PublishDone = std::function<void(std::string_view error)>;

/// The broker as this node sees it: for /readyz and the logs.
struct BrokerHealth {
  bool up = true;
  std::string detail;  ///< why not, when down
};

/// The engine's backend cannot be reached: the operation did nothing. Callers answer
/// `unavailable` (503), never as if it had succeeded.
class EngineUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Engine {
 public:
  virtual ~Engine() = default;

  // --- broker ----------------------------------------------------------------------
  /// Sets the receiver of publications, before subscribe(). Replacing it (with `{}` at
  /// shutdown) returns only once no engine thread is still running the old one, so what
  /// it pointed at may be destroyed then.
  virtual void set_subscriber(Subscriber subscriber) = 0;
  /// Starts receiving `channel` on this node (idempotent). Non-blocking: the request is
  /// made at once and is in force a little later (a round trip for Redis), see
  /// subscribed(). While the broker is down the channel stays wanted, and it is
  /// subscribed again when the broker is back (see set_resubscribed()).
  virtual void subscribe(const std::string& channel) = 0;
  /// Completes once `channel`, subscribed before, is in force: everything published
  /// after that is delivered, so a node may read history then without missing what
  /// comes next. Throws EngineUnavailable while the broker is down.
  virtual boost::asio::awaitable<void> subscribed(const std::string& channel) = 0;
  /// Stops receiving `channel` on this node (idempotent).
  virtual void unsubscribe(const std::string& channel) = 0;
  /// Publishes to every node subscribed to `channel`, this one included. Non-blocking;
  /// publications from one thread to one channel are delivered in that order. `done`,
  /// if given, learns whether the broker took it (a failure is never silent: without
  /// `done` the engine logs it).
  virtual void publish(const std::string& channel, std::shared_ptr<const std::string> payload,
                       PublishDone done = {}) = 0;
  /// Whether the broker is reachable now.
  virtual BrokerHealth broker_health() const = 0;
  /// `f` runs (on an engine thread) each time the broker came back after being lost,
  /// once every wanted channel is subscribed again. Publications made meanwhile were
  /// not received: `f` is where a node makes up for them. Call before subscribe().
  /// Replacing it waits for a call in flight, as set_subscriber() does.
  virtual void set_resubscribed(std::function<void()> f) = 0;

  // --- presence (per connection, TTL) ------------------------------------------------
  /// Adds or refreshes entries; each expires `ttl` after its last refresh.
  virtual boost::asio::awaitable<void> presence_refresh(std::vector<PresenceEntry> entries,
                                                        std::chrono::seconds ttl) = 0;
  /// Removes entries (connection closed or left the room).
  virtual boost::asio::awaitable<void> presence_remove(std::vector<PresenceEntry> entries) = 0;
  /// Live counts for each room, in the order given.
  virtual boost::asio::awaitable<std::vector<PresenceCounts>> presence_counts(std::vector<std::string> rooms) = 0;

  // --- bans (keys with TTL) ----------------------------------------------------------
  /// Bans `user_id` in `scope` ("" = everywhere); ttl nullopt = permanent. Replaces any
  /// earlier ban in the same scope.
  virtual boost::asio::awaitable<void> ban(std::string scope, std::string user_id, std::string reason,
                                           std::optional<std::chrono::seconds> ttl) = 0;
  /// Lifts a ban; false if there was none in force.
  virtual boost::asio::awaitable<bool> unban(std::string scope, std::string user_id) = 0;
  /// The ban that keeps `user_id` out of `room_id` (room or global), if any; of two, the
  /// one lasting longer.
  virtual boost::asio::awaitable<std::optional<BanState>> ban_state(std::string room_id, std::string user_id) = 0;

  // --- admission: bans, slow mode and the sliding-window rate limit, in one step -------
  /// Decides whether the user may post now and, if so, records the post against the
  /// slow-mode interval and the rate window. A refused post is not counted.
  virtual boost::asio::awaitable<Admission> admit(AdmitRequest request) = 0;
  /// A bare sliding-window limiter over `key` (also used for connection-rate limits).
  virtual boost::asio::awaitable<Admission> rate_hit(std::string key, RateSpec rate) = 0;

  // --- token revocations (keys with TTL) ----------------------------------------------
  // The shared copy of what logout and password changes revoke, so that every node can
  // refill its cache from one place. The store keeps the durable record; the engine copy
  // lives only until the tokens it covers expire, and a fresh or restarted engine knows
  // nothing: the caller puts the store's records back (with their remaining TTL) before
  // it reads them here.
  //
  // Redis: sorted sets scored by expiry, `revoked:{rv}` (jti) and `token_floors:{rv}`
  // (user), and a hash `token_floors:{rv}:nb` (user -> not_before_s); one hash tag so that
  // one Lua script touches them all. Each call is one script that first sweeps what has
  // expired.

  /// Revokes token `jti` for `ttl` (the token's exp + leeway - now). Idempotent; a
  /// second call keeps the later expiry. A ttl of zero or less does nothing (the token
  /// is dead anyway).
  virtual boost::asio::awaitable<void> revoke_token(std::string jti, std::chrono::seconds ttl) = 0;
  /// Revokes every token of `user_id` with an iat below `not_before_s`, for `ttl`.
  /// A floor never moves down: the floor in force becomes the higher of the two
  /// not_before_s and it expires at the later of the two expiries, so a replayed older
  /// record (a refill from the store, a late write) cannot lower a newer floor. A ttl of
  /// zero or less does nothing.
  virtual boost::asio::awaitable<void> put_token_floor(std::string user_id, std::int64_t not_before_s,
                                                       std::chrono::seconds ttl) = 0;
  /// Every revocation and floor whose TTL has not passed.
  virtual boost::asio::awaitable<TokenRevocations> token_revocations() = 0;
  /// Whether a token (its jti, user and iat; iat 0 if it has none) is revoked now, by
  /// its jti or by its user's floor: for a one-off check without a cache.
  virtual boost::asio::awaitable<bool> is_token_revoked(std::string jti, std::string user_id, std::int64_t iat) = 0;

  // --- counting slots (cross-node caps, e.g. connections per client address) ----------
  // A slot set `key` holds at most `limit` live members. Each member expires `ttl` after
  // its last claim or refresh, so the slots of a node that died free themselves; a live
  // node refreshes its members well within the ttl.
  //
  // Redis: one sorted set per key, member -> expiry (ms); claim_slot() is a Lua script
  // (ZREMRANGEBYSCORE key -inf now; if ZSCORE member or ZCARD < limit then ZADD member
  // now+ttl, return 1; else return 0). release_slot() is ZREM; refresh_slots() is one
  // script per key, renewing only members whose slot is live, all pipelined.

  /// Claims a slot of `key` for `member`; false, and nothing changes, if `key` already
  /// has `limit` live members (a limit of zero or less refuses everyone). Idempotent: a
  /// member that holds a slot gets true again (its expiry is renewed), whatever the count.
  virtual boost::asio::awaitable<bool> claim_slot(std::string key, std::string member, std::int64_t limit,
                                                  std::chrono::seconds ttl) = 0;
  /// Frees `member`'s slot of `key` (a no-op if it holds none).
  virtual boost::asio::awaitable<void> release_slot(std::string key, std::string member) = 0;
  /// Renews each listed member's slot to expire `ttl` from now; members that no longer
  /// hold one (expired or released) are not given one.
  virtual boost::asio::awaitable<void> refresh_slots(std::vector<SlotRef> slots, std::chrono::seconds ttl) = 0;
  /// Live members of `key` (for metrics and tests).
  virtual boost::asio::awaitable<std::int64_t> slots_in_use(std::string key) = 0;

  // --- failure counters (failed-login throttling across nodes) ------------------------
  // A key's failures, each kept for a window, so that a throttle (auth::LoginThrottle)
  // decides from every node's failures, not its own alone.
  //
  // Redis: one sorted set per key, scored by time (`fails:{<key>}`).

  /// Records one failure of `key` now; it counts for `window`.
  virtual boost::asio::awaitable<void> record_failure(std::string key, std::chrono::seconds window) = 0;
  /// The times (Unix ms, ascending) of `key`'s failures within the last `window`: the
  /// newest `limit` of them.
  virtual boost::asio::awaitable<std::vector<std::int64_t>> recent_failures(std::string key,
                                                                            std::chrono::seconds window,
                                                                            std::size_t limit) = 0;
  /// Forgets `key`'s failures (a successful login).
  virtual boost::asio::awaitable<void> clear_failures(std::string key) = 0;

  // --- per-room sequence numbers -------------------------------------------------------
  /// Reserves a block of consecutive numbers for each request, in one step for the whole
  /// batch (one round trip for Redis), and returns the first number of each block, in
  /// request order. Numbers are never handed out twice while the engine keeps its state.
  ///
  /// A counter the engine does not have (a room never numbered, or one it forgot: a
  /// memory engine after a restart, a Redis restarted without persistence) is not
  /// invented from zero, which could hand out a seq the store already holds: without a
  /// `floor` the answer for that request is 0 and nothing is reserved, and the caller
  /// asks again with the store's highest seq as the floor. With a floor, the counter is
  /// raised to at least it first, so the block starts above everything stored. This is
  /// the one mechanism for both first use and lost state.
  virtual boost::asio::awaitable<std::vector<std::uint64_t>> reserve_sequences(
      std::vector<SequenceRequest> requests) = 0;
};

}  // namespace chatorbit::engine
