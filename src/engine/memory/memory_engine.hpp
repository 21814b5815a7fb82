#pragma once
// MemoryEngine: the Engine for a single process (the embedded default). All state lives
// in this object; nothing is shared with other processes, so it is only correct when
// one node serves every room.
//
// Time: every TTL and window is measured against the injected Clock and evaluated
// lazily, when a key is touched. Memory stays bounded because each call also sweeps a
// few other keys of the shard it touches (round-robin), dropping those whose TTL or
// window has passed; a key nobody touches again is reclaimed by later traffic.
//
// Threading: every method may be called from any thread. State is split by concern
// (broker, presence, bans, posting limits, token revocations, slots, sequences) and, within a concern, into
// shards by key, each behind its own mutex; no engine mutex is held while the
// subscriber runs except the channel's delivery lock (see publish()).
//
// Awaitable methods do their work synchronously and complete without suspending.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "engine/engine.hpp"

namespace chatorbit::engine {

class MemoryEngine final : public Engine {
 public:
  /// `clock` must outlive the engine.
  explicit MemoryEngine(const Clock& clock);
  ~MemoryEngine() override;
  MemoryEngine(const MemoryEngine&) = delete;
  MemoryEngine& operator=(const MemoryEngine&) = delete;

  // --- broker ----------------------------------------------------------------------
  void set_subscriber(Subscriber subscriber) override;
  /// In force at once.
  void subscribe(const std::string& channel) override;
  /// Completes at once, or throws while set_broker_down(true).
  boost::asio::awaitable<void> subscribed(const std::string& channel) override;
  void unsubscribe(const std::string& channel) override;
  /// Delivers inline: the subscriber has been called (or the publication dropped, if
  /// `channel` is not subscribed) by the time publish() returns.
  ///
  /// Order: deliveries on one channel never overlap and happen in the order the
  /// publishing threads took the channel's delivery lock, so publications from one
  /// thread arrive in the order published. (Channels are hashed onto a fixed set of
  /// delivery locks, so a few unrelated channels also share a lock; the subscriber
  /// must not block anyway.)
  ///
  /// Re-entrancy: the subscriber may call publish() (any channel, any MemoryEngine);
  /// such a publication is queued on the calling thread and delivered right after the
  /// current delivery returns, before the outermost publish() returns. It may also
  /// call subscribe(), unsubscribe() and set_subscriber().
  ///
  /// An exception thrown by the subscriber propagates out of the outermost publish();
  /// publications queued re-entrantly on that thread are then dropped.
  ///
  /// `done` runs inline, after the delivery.
  void publish(const std::string& channel, std::shared_ptr<const std::string> payload, PublishDone done = {}) override;
  BrokerHealth broker_health() const override;
  void set_resubscribed(std::function<void()> f) override;
  /// For tests of what callers do when a networked broker is lost: while down, publish()
  /// delivers nothing and reports the failure, subscribe() throws EngineUnavailable
  /// (the channel stays wanted). Coming back up runs the resubscribed callback.
  void set_broker_down(bool down);

  // --- presence ----------------------------------------------------------------------
  /// An entry expires when the clock reaches last refresh + ttl; refreshing an entry
  /// with another user_id moves the connection to that user.
  boost::asio::awaitable<void> presence_refresh(std::vector<PresenceEntry> entries, std::chrono::seconds ttl) override;
  /// Removing an entry that is not present is a no-op; only room_id and conn_id matter.
  boost::asio::awaitable<void> presence_remove(std::vector<PresenceEntry> entries) override;
  boost::asio::awaitable<std::vector<PresenceCounts>> presence_counts(std::vector<std::string> rooms) override;

  // --- bans --------------------------------------------------------------------------
  /// A ttl of zero or less replaces any earlier ban in the scope with one that has
  /// already expired, i.e. it lifts the ban.
  boost::asio::awaitable<void> ban(std::string scope, std::string user_id, std::string reason,
                                   std::optional<std::chrono::seconds> ttl) override;
  boost::asio::awaitable<bool> unban(std::string scope, std::string user_id) override;
  /// Of a room ban and a global ban lasting equally long, the room ban is returned.
  boost::asio::awaitable<std::optional<BanState>> ban_state(std::string room_id, std::string user_id) override;

  // --- admission ---------------------------------------------------------------------
  /// Checks, in order: ban (retry_after = time left of a timed ban, 0 if permanent),
  /// slow mode (the user's last accepted post in the room is younger than
  /// slow_mode_seconds; retry_after = time until it is not), then the sliding window
  /// keyed by (room, user) (retry_after = time until a slot frees, at least 1 ms).
  /// The ban check and the slow-mode/window check-and-record are each atomic; the two
  /// together are not, as with a networked engine. A RateSpec with count <= 0 or
  /// window <= 0 means "no limit". The last-post time is kept only as long as the
  /// slow-mode interval in force when it was recorded.
  boost::asio::awaitable<Admission> admit(AdmitRequest request) override;
  /// The same sliding window over `key`; keys share nothing with admit()'s windows.
  boost::asio::awaitable<Admission> rate_hit(std::string key, RateSpec rate) override;

  // --- token revocations ---------------------------------------------------------------
  boost::asio::awaitable<void> revoke_token(std::string jti, std::chrono::seconds ttl) override;
  boost::asio::awaitable<void> put_token_floor(std::string user_id, std::int64_t not_before_s,
                                               std::chrono::seconds ttl) override;
  boost::asio::awaitable<TokenRevocations> token_revocations() override;
  boost::asio::awaitable<bool> is_token_revoked(std::string jti, std::string user_id, std::int64_t iat) override;
  /// Forgets every token revocation, as a restart would: for tests of the refill.
  void forget_token_revocations();

  // --- counting slots ------------------------------------------------------------------
  /// Each claim is atomic per key (one shard mutex), as the Redis script is.
  boost::asio::awaitable<bool> claim_slot(std::string key, std::string member, std::int64_t limit,
                                          std::chrono::seconds ttl) override;
  boost::asio::awaitable<void> release_slot(std::string key, std::string member) override;
  boost::asio::awaitable<void> refresh_slots(std::vector<SlotRef> slots, std::chrono::seconds ttl) override;
  boost::asio::awaitable<std::int64_t> slots_in_use(std::string key) override;
  boost::asio::awaitable<void> record_failure(std::string key, std::chrono::seconds window) override;
  boost::asio::awaitable<std::vector<std::int64_t>> recent_failures(std::string key, std::chrono::seconds window,
                                                                    std::size_t limit) override;
  boost::asio::awaitable<void> clear_failures(std::string key) override;

  // --- sequences ---------------------------------------------------------------------
  /// Completes at once; never blocks beyond a short mutex.
  boost::asio::awaitable<std::vector<std::uint64_t>> reserve_sequences(std::vector<SequenceRequest> requests) override;
  /// Forgets every sequence counter, as a restart would: for tests of what callers do
  /// when an engine loses its state.
  void forget_sequences();

  // --- diagnostics -------------------------------------------------------------------
  /// How many keys the engine holds: presence rooms, bans, per-(room, user) posting
  /// records, rate_hit keys, revoked tokens, token floors, slot sets, sequence counters
  /// and subscribed channels. Keys whose TTL
  /// has passed count until they are swept; meant for tests and metrics.
  std::size_t tracked_keys() const;

 private:
  struct Broker;
  struct Presence;
  struct Bans;
  struct Limits;
  struct Tokens;
  struct Slots;
  struct Failures;
  struct Sequences;

  // Delivers one publication on this thread, holding the channel's delivery lock.
  void deliver(const std::string& channel, const std::shared_ptr<const std::string>& payload);
  std::int64_t now_ms() const;
  std::optional<BanState> find_ban(const std::string& room_id, const std::string& user_id);

  const Clock& clock_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<Presence> presence_;
  std::unique_ptr<Bans> bans_;
  std::unique_ptr<Limits> limits_;
  std::unique_ptr<Tokens> tokens_;
  std::unique_ptr<Slots> slots_;
  std::unique_ptr<Failures> failures_;
  std::unique_ptr<Sequences> sequences_;
};

}  // namespace chatorbit::engine
