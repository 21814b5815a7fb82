// Revocations between nodes: two nodes share one engine; the test plays what App does
// (refill at start and when the broker is back) and what AuthService does on a logout
// or a password change (store, engine, event).

#include "auth/shared_revocations.hpp"

#include <gtest/gtest.h>

#include <memory>

#include "chat/account_notifier.hpp"
#include "chat/hub.hpp"
#include "chat/publication.hpp"
#include "core/run_blocking.hpp"
#include "engine/memory/memory_engine.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace chatorbit::auth {
namespace {

using namespace std::chrono_literals;

Claims token(std::string user, std::int64_t iat, std::string jti) {
  Claims c;
  c.user_id = std::move(user);
  c.iat = iat;
  c.jti = std::move(jti);
  return c;
}

// One node: its own store connection and cache; account events from the shared broker
// reach its cache only while it is subscribed to them.
struct Node {
  Node(const Clock& clock, engine::Engine& engine, store::Store& store) : clock(clock), engine(engine), store(store) {
    refill_revocations(store, engine, cache, clock);  // as App does at start
  }

  /// What a logout does on this node (AuthService::logout).
  void logout(const std::string& user_id, const std::string& jti, std::int64_t until_s) {
    const AccountEvents::Revocation r{user_id, jti, until_s, 0};
    cache.add(jti, until_s);
    store.revoke_token(jti, until_s);
    run_blocking(share_revocation(engine, r, clock));
    chat::AccountNotifier(engine).tokens_revoked(r);
  }

  /// What a password change does on this node (AuthService::change_password).
  void change_password(const std::string& user_id, std::int64_t not_before_s, std::int64_t until_s) {
    const AccountEvents::Revocation r{user_id, "", until_s, not_before_s};
    cache.add_floor(user_id, not_before_s, until_s);
    store.put_token_floor({user_id, not_before_s, until_s});
    run_blocking(share_revocation(engine, r, clock));
    chat::AccountNotifier(engine).tokens_revoked(r);
  }

  /// The account observer of a chat node (App wires chat::apply_revocation).
  void on_publication(const std::string& payload) {
    const auto d = chat::decode_publication(payload);
    ASSERT_TRUE(d.publication);
    if (const auto event = chat::parse_account_event(d.publication->json)) chat::apply_revocation(*event, cache);
  }

  const Clock& clock;
  engine::Engine& engine;
  store::Store& store;
  RevocationList cache{clock};
};

class SharedRevocations : public ::testing::Test {
 protected:
  ManualClock clock_;
  engine::MemoryEngine engine_{clock_};
  // Each node with a store of its own, so that only the engine can carry a revocation
  // from one to the other (with a shared store the refill would find it there too).
  std::unique_ptr<store::Store> store_a_ = store::SqliteStore::open(":memory:");
  std::unique_ptr<store::Store> store_b_ = store::SqliteStore::open(":memory:");
};

TEST_F(SharedRevocations, ALogoutReachesANodeThatMissedTheEventOnceItsBrokerIsBack) {
  Node a(clock_, engine_, *store_a_);
  Node b(clock_, engine_, *store_b_);
  // Node B receives account events on the control channel, and refills when the
  // broker is back, as App::refill_after_broker_loss() does.
  engine_.set_subscriber([&](const std::string&, std::shared_ptr<const std::string> p) { b.on_publication(*p); });
  engine_.set_resubscribed([&] { refill_revocations(b.store, engine_, b.cache, clock_); });
  engine_.subscribe(chat::kControlChannel);
  const auto now = clock_.unix_seconds();

  a.logout("u1", "seen", now + 3600);
  EXPECT_TRUE(b.cache.is_revoked(token("u1", now, "seen"))) << "the event, while the broker is up";

  engine_.set_broker_down(true);  // B's broker connection is lost: the next event never arrives
  a.logout("u1", "missed", now + 3600);
  a.change_password("u2", now + 1, now + 7200);
  EXPECT_FALSE(b.cache.is_revoked(token("u1", now, "missed")));
  EXPECT_FALSE(b.cache.is_revoked(token("u2", now, "old")));

  engine_.set_broker_down(false);  // resubscribed: B refills its cache from the engine
  EXPECT_TRUE(b.cache.is_revoked(token("u1", now, "missed")));
  EXPECT_TRUE(b.cache.is_revoked(token("u2", now, "old"))) << "the floor too";
  EXPECT_FALSE(b.cache.is_revoked(token("u2", now + 1, "new")));
  EXPECT_FALSE(b.cache.is_revoked(token("u1", now, "other")));
}

TEST_F(SharedRevocations, ANodeStartedAfterTheRevocationRefusesTheToken) {
  Node a(clock_, engine_, *store_a_);
  const auto now = clock_.unix_seconds();
  a.logout("u1", "j1", now + 3600);
  Node b(clock_, engine_, *store_b_);  // started later: no event, the engine has it
  EXPECT_TRUE(b.cache.is_revoked(token("u1", now, "j1")));
}

TEST_F(SharedRevocations, AnEngineThatLostItsStateIsRefilledFromTheStoreBeforeTheCacheReadsIt) {
  Node a(clock_, engine_, *store_a_);
  const auto now = clock_.unix_seconds();
  a.logout("u1", "j1", now + 3600);
  a.change_password("u2", now + 1, now + 7200);
  engine_.forget_token_revocations();  // a Redis restarted empty

  RevocationList fresh(clock_);  // node A restarting
  refill_revocations(*store_a_, engine_, fresh, clock_);
  EXPECT_TRUE(fresh.is_revoked(token("u1", now, "j1")));
  EXPECT_TRUE(fresh.is_revoked(token("u2", now, "x")));
  const auto held = run_blocking(engine_.token_revocations());
  ASSERT_EQ(held.tokens.size(), 1u) << "the engine has the store's records again, for the other nodes";
  EXPECT_EQ(held.tokens[0].jti, "j1");
  EXPECT_GE(held.tokens[0].expires_at_ms, (now + 3600) * 1000) << "with the time they had left, not less";
  ASSERT_EQ(held.floors.size(), 1u);
  EXPECT_EQ(held.floors[0].not_before_s, now + 1);

  RevocationList other(clock_);  // node B, whose own store knows nothing, reads them there
  refill_revocations(*store_b_, engine_, other, clock_);
  EXPECT_TRUE(other.is_revoked(token("u1", now, "j1")));
}

TEST_F(SharedRevocations, EntriesLiveInTheEngineUntilTheTokensExpire) {
  Node a(clock_, engine_, *store_a_);
  const auto now = clock_.unix_seconds();
  a.logout("u1", "j1", now + 60);
  EXPECT_TRUE(run_blocking(engine_.is_token_revoked("j1", "u1", now)));
  clock_.advance(60s);
  EXPECT_FALSE(run_blocking(engine_.is_token_revoked("j1", "u1", now)));
  RevocationList later(clock_);
  refill_revocations(*store_a_, engine_, later, clock_);
  EXPECT_EQ(later.size(), 0u) << "nothing past its expiry comes back from the store either";
  EXPECT_EQ(revocation_ttl(now + 60, clock_), 0s);
  EXPECT_EQ(revocation_ttl(now + 61, clock_), 1s);
}

}  // namespace
}  // namespace chatorbit::auth
