// The Engine conformance suite (see engine_conformance.hpp), continued: the state kept as
// keys with a TTL and as counters (token revocations, counting slots, sequences). The
// fixture and the other cases are in engine_conformance_test.cpp.

#include "engine/engine_conformance.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace chatorbit::engine {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// --- token revocations ---------------------------------------------------------------------

std::vector<std::string> jtis(const TokenRevocations& r) {
  std::vector<std::string> out;
  for (const auto& t : r.tokens) out.push_back(t.jti);
  std::sort(out.begin(), out.end());
  return out;
}

TEST_P(EngineConformance, ARevokedTokenIsReportedUntilItsTtlThenGone) {
  const auto t0 = clock().unix_millis();
  run(engine().revoke_token("j1", seconds{60}));
  run(engine().revoke_token("j2", seconds{120}));
  EXPECT_TRUE(run(engine().is_token_revoked("j1", "u1", 0)));
  EXPECT_FALSE(run(engine().is_token_revoked("j3", "u1", 0)));
  auto held = run(engine().token_revocations());
  EXPECT_EQ(jtis(held), (std::vector<std::string>{"j1", "j2"}));
  EXPECT_TRUE(held.floors.empty());
  for (const auto& t : held.tokens) EXPECT_EQ(t.expires_at_ms, t0 + (t.jti == "j1" ? 60'000 : 120'000)) << t.jti;

  clock().advance(seconds{60} - milliseconds{1});
  EXPECT_TRUE(run(engine().is_token_revoked("j1", "u1", 0)));
  clock().advance(milliseconds{1});
  EXPECT_FALSE(run(engine().is_token_revoked("j1", "u1", 0))) << "gone when the token has expired";
  EXPECT_EQ(jtis(run(engine().token_revocations())), (std::vector<std::string>{"j2"}));
  clock().advance(seconds{60});
  EXPECT_TRUE(run(engine().token_revocations()).tokens.empty());
}

TEST_P(EngineConformance, RevokingATokenAgainKeepsTheLaterExpiry) {
  run(engine().revoke_token("j1", seconds{60}));
  run(engine().revoke_token("j1", seconds{10}));  // a refill with less time left
  clock().advance(seconds{30});
  EXPECT_TRUE(run(engine().is_token_revoked("j1", "", 0)));
  run(engine().revoke_token("j1", seconds{60}));
  clock().advance(seconds{59});
  EXPECT_TRUE(run(engine().is_token_revoked("j1", "", 0)));
  EXPECT_EQ(run(engine().token_revocations()).tokens.size(), 1u);

  run(engine().revoke_token("j2", seconds{0}));  // already expired: nothing to hold
  EXPECT_FALSE(run(engine().is_token_revoked("j2", "", 0)));
  EXPECT_EQ(run(engine().token_revocations()).tokens.size(), 1u);
}

TEST_P(EngineConformance, AFloorRevokesOnlyOlderTokensOfItsUser) {
  const std::int64_t nbf = clock().unix_seconds() + 1;
  run(engine().put_token_floor("u1", nbf, seconds{3600}));
  EXPECT_TRUE(run(engine().is_token_revoked("j1", "u1", nbf - 1)));
  EXPECT_TRUE(run(engine().is_token_revoked("", "u1", 0))) << "a token without iat predates every floor";
  EXPECT_FALSE(run(engine().is_token_revoked("j1", "u1", nbf))) << "issued at the floor: valid";
  EXPECT_FALSE(run(engine().is_token_revoked("j1", "u2", nbf - 1))) << "another user";
  const auto held = run(engine().token_revocations());
  EXPECT_TRUE(held.tokens.empty());
  ASSERT_EQ(held.floors.size(), 1u);
  EXPECT_EQ(held.floors[0], (TokenFloor{"u1", nbf, clock().unix_millis() + 3'600'000}));

  clock().advance(seconds{3600});
  EXPECT_FALSE(run(engine().is_token_revoked("j1", "u1", nbf - 1))) << "the floor expires with its ttl";
  EXPECT_TRUE(run(engine().token_revocations()).floors.empty());
}

TEST_P(EngineConformance, ANewerFloorReplacesAnOlderOneAndAFloorNeverMovesDown) {
  const std::int64_t first = clock().unix_seconds() + 1;
  run(engine().put_token_floor("u1", first, seconds{100}));
  clock().advance(seconds{50});
  const std::int64_t second = clock().unix_seconds() + 1;
  run(engine().put_token_floor("u1", second, seconds{100}));  // another password change
  EXPECT_TRUE(run(engine().is_token_revoked("", "u1", second - 1)));
  EXPECT_FALSE(run(engine().is_token_revoked("", "u1", second)));

  run(engine().put_token_floor("u1", first, seconds{10}));  // the older record, replayed
  auto held = run(engine().token_revocations());
  ASSERT_EQ(held.floors.size(), 1u);
  EXPECT_EQ(held.floors[0].not_before_s, second);
  EXPECT_EQ(held.floors[0].expires_at_ms, clock().unix_millis() + 100'000) << "nor does its expiry";

  clock().advance(seconds{99});
  EXPECT_TRUE(run(engine().is_token_revoked("", "u1", second - 1)));
  clock().advance(seconds{1});
  EXPECT_FALSE(run(engine().is_token_revoked("", "u1", 0)));
  run(engine().put_token_floor("u1", first, seconds{10}));  // after expiry, any floor is new
  EXPECT_EQ(run(engine().token_revocations()).floors.at(0).not_before_s, first);
}

TEST_P(EngineConformance, AFreshEngineKnowsNoRevocations) {
  EXPECT_TRUE(run(engine().token_revocations()).tokens.empty());
  EXPECT_TRUE(run(engine().token_revocations()).floors.empty());
  EXPECT_FALSE(run(engine().is_token_revoked("j1", "u1", 0)));
  if (!GetParam().forget_token_revocations) return;
  run(engine().revoke_token("j1", seconds{60}));
  run(engine().put_token_floor("u1", clock().unix_seconds() + 1, seconds{60}));
  GetParam().forget_token_revocations(engine());
  const auto held = run(engine().token_revocations());
  EXPECT_TRUE(held.tokens.empty()) << "a restarted engine has lost them: the caller refills from the store";
  EXPECT_TRUE(held.floors.empty());
  EXPECT_FALSE(run(engine().is_token_revoked("j1", "u1", 0)));
}

// --- counting slots ------------------------------------------------------------------------

TEST_P(EngineConformance, SlotsAreLimitedPerKey) {
  EXPECT_TRUE(run(engine().claim_slot("ip:a", "c1", 2, seconds{30})));
  EXPECT_TRUE(run(engine().claim_slot("ip:a", "c2", 2, seconds{30})));
  EXPECT_FALSE(run(engine().claim_slot("ip:a", "c3", 2, seconds{30})));
  EXPECT_EQ(run(engine().slots_in_use("ip:a")), 2);
  EXPECT_TRUE(run(engine().claim_slot("ip:b", "c3", 2, seconds{30}))) << "keys are independent";
  EXPECT_EQ(run(engine().slots_in_use("ip:b")), 1);
  EXPECT_EQ(run(engine().slots_in_use("ip:never")), 0);
  EXPECT_FALSE(run(engine().claim_slot("ip:c", "c1", 0, seconds{30}))) << "a limit of 0 admits nobody";
}

TEST_P(EngineConformance, ReleasingASlotFreesIt) {
  ASSERT_TRUE(run(engine().claim_slot("ip:a", "c1", 1, seconds{30})));
  ASSERT_FALSE(run(engine().claim_slot("ip:a", "c2", 1, seconds{30})));
  run(engine().release_slot("ip:a", "c1"));
  EXPECT_EQ(run(engine().slots_in_use("ip:a")), 0);
  EXPECT_TRUE(run(engine().claim_slot("ip:a", "c2", 1, seconds{30})));
  run(engine().release_slot("ip:a", "c1"));  // not a holder any more: no-op
  run(engine().release_slot("ip:none", "c1"));
  EXPECT_EQ(run(engine().slots_in_use("ip:a")), 1);
}

TEST_P(EngineConformance, ASlotExpiresTtlAfterItsLastClaim) {
  ASSERT_TRUE(run(engine().claim_slot("ip:a", "c1", 1, seconds{30})));
  clock().advance(seconds{30} - milliseconds{1});
  EXPECT_FALSE(run(engine().claim_slot("ip:a", "c2", 1, seconds{30})));
  clock().advance(milliseconds{1});  // the node holding c1 died and never refreshed it
  EXPECT_EQ(run(engine().slots_in_use("ip:a")), 0);
  EXPECT_TRUE(run(engine().claim_slot("ip:a", "c2", 1, seconds{30})));
}

TEST_P(EngineConformance, ClaimingASlotAgainIsIdempotent) {
  ASSERT_TRUE(run(engine().claim_slot("ip:a", "c1", 2, seconds{30})));
  EXPECT_TRUE(run(engine().claim_slot("ip:a", "c1", 2, seconds{30})));
  EXPECT_EQ(run(engine().slots_in_use("ip:a")), 1) << "one member, one slot";
  ASSERT_TRUE(run(engine().claim_slot("ip:a", "c2", 2, seconds{30})));
  EXPECT_TRUE(run(engine().claim_slot("ip:a", "c1", 2, seconds{30}))) << "a holder at the limit keeps its slot";
  clock().advance(seconds{20});
  EXPECT_TRUE(run(engine().claim_slot("ip:a", "c1", 2, seconds{30})));  // renews c1
  clock().advance(seconds{10});
  EXPECT_EQ(run(engine().slots_in_use("ip:a")), 1) << "c2 expired, the renewed c1 did not";
}

TEST_P(EngineConformance, RefreshingSlotsKeepsThemAlive) {
  ASSERT_TRUE(run(engine().claim_slot("ip:a", "c1", 2, seconds{30})));
  ASSERT_TRUE(run(engine().claim_slot("ip:b", "c2", 2, seconds{30})));
  ASSERT_TRUE(run(engine().claim_slot("ip:b", "c3", 2, seconds{30})));
  for (int i = 0; i < 5; ++i) {
    clock().advance(seconds{20});
    std::vector<SlotRef> live{{"ip:a", "c1"}, {"ip:b", "c2"}};
    run(engine().refresh_slots(std::move(live), seconds{30}));
  }
  EXPECT_EQ(run(engine().slots_in_use("ip:a")), 1);
  EXPECT_EQ(run(engine().slots_in_use("ip:b")), 1) << "c3 was not refreshed";
  EXPECT_FALSE(run(engine().claim_slot("ip:a", "c9", 1, seconds{30})));
}

TEST_P(EngineConformance, RefreshDoesNotBringBackAFreedSlot) {
  ASSERT_TRUE(run(engine().claim_slot("ip:a", "c1", 1, seconds{30})));
  ASSERT_TRUE(run(engine().claim_slot("ip:a", "c2", 5, seconds{10})));
  run(engine().release_slot("ip:a", "c1"));
  clock().advance(seconds{10});  // c2 expired
  std::vector<SlotRef> stale{{"ip:a", "c1"}, {"ip:a", "c2"}, {"ip:none", "c3"}};
  run(engine().refresh_slots(std::move(stale), seconds{30}));
  EXPECT_EQ(run(engine().slots_in_use("ip:a")), 0);
  EXPECT_EQ(run(engine().slots_in_use("ip:none")), 0);
}

TEST_P(EngineConformance, ConcurrentClaimsNeverExceedTheLimit) {
  constexpr int kThreads = 4;
  constexpr int kEach = 50;
  constexpr std::int64_t kLimit = 37;
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      boost::asio::io_context io;
      for (int i = 0; i < kEach; ++i) {
        auto claim =
            engine().claim_slot("ip:a", "c" + std::to_string(t) + "." + std::to_string(i), kLimit, seconds{30});
        auto f = boost::asio::co_spawn(io, std::move(claim), boost::asio::use_future);
        io.restart();
        io.run_for(std::chrono::seconds{5});
        if (f.get()) ++granted;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(granted.load(), kLimit);
  EXPECT_EQ(run(engine().slots_in_use("ip:a")), kLimit);
}

// --- sequences ----------------------------------------------------------------------------

TEST_P(EngineConformance, AnUnknownCounterIsNotInventedFromZero) {
  EXPECT_EQ(reserve("r1", 1), 0u) << "never numbered: the caller must bring the store's floor";
  EXPECT_EQ(reserve("r1", 1), 0u) << "and asking did not create it";
  EXPECT_EQ(reserve("r1", 1, 0), 1u) << "an empty room's floor is 0";
}

// --- failure counters ------------------------------------------------------------------------

TEST_P(EngineConformance, FailuresAreListedWhileInTheirWindow) {
  const std::chrono::seconds window{60};
  EXPECT_TRUE(run(engine().recent_failures("login:a", window, 10)).empty());
  const auto t0 = std::chrono::duration_cast<std::chrono::milliseconds>(clock().now().time_since_epoch()).count();
  run(engine().record_failure("login:a", window));
  clock().advance(std::chrono::seconds{20});
  run(engine().record_failure("login:a", window));
  run(engine().record_failure("login:b", window));
  EXPECT_EQ(run(engine().recent_failures("login:a", window, 10)), (std::vector<std::int64_t>{t0, t0 + 20'000}));
  EXPECT_EQ(run(engine().recent_failures("login:a", window, 1)), (std::vector<std::int64_t>{t0 + 20'000}))
      << "the newest `limit`";
  clock().advance(std::chrono::seconds{40});  // the first is 60 s old: out
  EXPECT_EQ(run(engine().recent_failures("login:a", window, 10)), (std::vector<std::int64_t>{t0 + 20'000}));
  EXPECT_EQ(run(engine().recent_failures("login:b", window, 10)).size(), 1u) << "keys are apart";
}

TEST_P(EngineConformance, ClearFailuresForgetsThem) {
  run(engine().record_failure("login:c", std::chrono::seconds{60}));
  run(engine().record_failure("login:c", std::chrono::seconds{60}));
  run(engine().clear_failures("login:c"));
  EXPECT_TRUE(run(engine().recent_failures("login:c", std::chrono::seconds{60}, 10)).empty());
  run(engine().clear_failures("login:never"));  // a no-op
}

TEST_P(EngineConformance, SequencesReserveContiguousBlocks) {
  EXPECT_EQ(reserve("r1", 1, 0), 1u);
  EXPECT_EQ(reserve("r1", 1), 2u);
  EXPECT_EQ(reserve("r1", 3), 3u);  // 3, 4, 5
  EXPECT_EQ(reserve("r1", 1), 6u);
}

TEST_P(EngineConformance, FloorRaisesTheNextSequence) {
  EXPECT_EQ(reserve("r1", 2, 100), 101u);  // 101, 102
  EXPECT_EQ(reserve("r1", 1, 50), 103u);   // below the counter: no effect
  EXPECT_EQ(reserve("r1", 1, 103), 104u);  // equal: no effect either
  EXPECT_EQ(reserve("r1", 1, 200), 201u);
}

TEST_P(EngineConformance, OneBatchReservesForSeveralRoomsInRequestOrder) {
  EXPECT_EQ(reserve("r1", 1, 10), 11u);
  std::vector<SequenceRequest> batch{
      {"r1", 5, std::nullopt}, {"r2", 1, std::nullopt}, {"r3", 2, 7}, {"r1", 1, std::nullopt}};
  const auto firsts = run(engine().reserve_sequences(std::move(batch)));
  EXPECT_EQ(firsts, (std::vector<std::uint64_t>{12, 0, 8, 17}));
  EXPECT_EQ(reserve("r3", 1), 10u);
}

TEST_P(EngineConformance, ABackendThatForgetsItsCountersContinuesAboveTheStoredMaximum) {
  if (!GetParam().forget_sequences) GTEST_SKIP() << "the factory cannot make this engine forget";
  EXPECT_EQ(reserve("r1", 10, 0), 1u);  // 1..10 handed out and (say) stored
  GetParam().forget_sequences(engine());
  EXPECT_EQ(reserve("r1", 1), 0u) << "a forgotten counter is unknown, not zero";
  EXPECT_EQ(reserve("r1", 1, 10), 11u) << "the store's maximum is the floor";
}

TEST_P(EngineConformance, ConcurrentReservationsAreDisjointAndGapless) {
  EXPECT_EQ(reserve("r1", 1, 0), 1u);
  constexpr int kThreads = 4;
  constexpr int kEach = 300;
  std::mutex mu;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> blocks;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      boost::asio::io_context io;  // each thread its own: reservations complete on their caller's executor
      for (int i = 0; i < kEach; ++i) {
        const auto count = static_cast<std::uint32_t>(1 + (i + t) % 3);
        std::vector<SequenceRequest> one{{"r1", count, std::nullopt}};
        auto f = boost::asio::co_spawn(io, engine().reserve_sequences(std::move(one)), boost::asio::use_future);
        io.restart();
        io.run_for(std::chrono::seconds{5});
        const auto first = f.get().at(0);
        std::lock_guard lock(mu);
        blocks.emplace_back(first, count);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::sort(blocks.begin(), blocks.end());
  std::uint64_t next = 2;
  for (const auto& [first, count] : blocks) {
    ASSERT_EQ(first, next);
    next += count;
  }
  EXPECT_EQ(reserve("r1", 1), next);
}

}  // namespace
}  // namespace chatorbit::engine
