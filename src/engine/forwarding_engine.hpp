#pragma once
// ForwardingEngine: an Engine that hands every call to another engine. A decorator
// derives from it and overrides only what it changes: a node's own broker link over a
// shared backend (memory/memory_nodes.hpp), a test's counting of subscriptions. The
// inner engine must outlive it; thread-safety and completion are the inner engine's.

#include "engine/engine.hpp"

namespace chatorbit::engine {

class ForwardingEngine : public Engine {
 public:
  explicit ForwardingEngine(Engine& inner) : inner_(inner) {}

  void set_subscriber(Subscriber subscriber) override { inner_.set_subscriber(std::move(subscriber)); }
  void subscribe(const std::string& channel) override { inner_.subscribe(channel); }
  boost::asio::awaitable<void> subscribed(const std::string& channel) override { return inner_.subscribed(channel); }
  void unsubscribe(const std::string& channel) override { inner_.unsubscribe(channel); }
  void publish(const std::string& channel, std::shared_ptr<const std::string> payload, PublishDone done = {}) override {
    inner_.publish(channel, std::move(payload), std::move(done));
  }
  BrokerHealth broker_health() const override { return inner_.broker_health(); }
  void set_resubscribed(std::function<void()> f) override { inner_.set_resubscribed(std::move(f)); }

  boost::asio::awaitable<void> presence_refresh(std::vector<PresenceEntry> entries, std::chrono::seconds ttl) override {
    return inner_.presence_refresh(std::move(entries), ttl);
  }
  boost::asio::awaitable<void> presence_remove(std::vector<PresenceEntry> entries) override {
    return inner_.presence_remove(std::move(entries));
  }
  boost::asio::awaitable<std::vector<PresenceCounts>> presence_counts(std::vector<std::string> rooms) override {
    return inner_.presence_counts(std::move(rooms));
  }

  boost::asio::awaitable<void> ban(std::string scope, std::string user_id, std::string reason,
                                   std::optional<std::chrono::seconds> ttl) override {
    return inner_.ban(std::move(scope), std::move(user_id), std::move(reason), ttl);
  }
  boost::asio::awaitable<bool> unban(std::string scope, std::string user_id) override {
    return inner_.unban(std::move(scope), std::move(user_id));
  }
  boost::asio::awaitable<std::optional<BanState>> ban_state(std::string room_id, std::string user_id) override {
    return inner_.ban_state(std::move(room_id), std::move(user_id));
  }

  boost::asio::awaitable<Admission> admit(AdmitRequest request) override { return inner_.admit(std::move(request)); }
  boost::asio::awaitable<Admission> rate_hit(std::string key, RateSpec rate) override {
    return inner_.rate_hit(std::move(key), rate);
  }

  boost::asio::awaitable<void> revoke_token(std::string jti, std::chrono::seconds ttl) override {
    return inner_.revoke_token(std::move(jti), ttl);
  }
  boost::asio::awaitable<void> put_token_floor(std::string user_id, std::int64_t not_before_s,
                                               std::chrono::seconds ttl) override {
    return inner_.put_token_floor(std::move(user_id), not_before_s, ttl);
  }
  boost::asio::awaitable<TokenRevocations> token_revocations() override { return inner_.token_revocations(); }
  boost::asio::awaitable<bool> is_token_revoked(std::string jti, std::string user_id, std::int64_t iat) override {
    return inner_.is_token_revoked(std::move(jti), std::move(user_id), iat);
  }

  boost::asio::awaitable<bool> claim_slot(std::string key, std::string member, std::int64_t limit,
                                          std::chrono::seconds ttl) override {
    return inner_.claim_slot(std::move(key), std::move(member), limit, ttl);
  }
  boost::asio::awaitable<void> release_slot(std::string key, std::string member) override {
    return inner_.release_slot(std::move(key), std::move(member));
  }
  boost::asio::awaitable<void> refresh_slots(std::vector<SlotRef> slots, std::chrono::seconds ttl) override {
    return inner_.refresh_slots(std::move(slots), ttl);
  }
  boost::asio::awaitable<std::int64_t> slots_in_use(std::string key) override {
    return inner_.slots_in_use(std::move(key));
  }
  boost::asio::awaitable<void> record_failure(std::string key, std::chrono::seconds window) override {
    return inner_.record_failure(std::move(key), window);
  }
  boost::asio::awaitable<std::vector<std::int64_t>> recent_failures(std::string key, std::chrono::seconds window,
                                                                    std::size_t limit) override {
    return inner_.recent_failures(std::move(key), window, limit);
  }
  boost::asio::awaitable<void> clear_failures(std::string key) override {
    return inner_.clear_failures(std::move(key));
  }

  boost::asio::awaitable<std::vector<std::uint64_t>> reserve_sequences(std::vector<SequenceRequest> requests) override {
    return inner_.reserve_sequences(std::move(requests));
  }

 protected:
  Engine& inner() { return inner_; }

 private:
  Engine& inner_;
};

}  // namespace chatorbit::engine
