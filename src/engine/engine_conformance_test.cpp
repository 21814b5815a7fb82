// The Engine conformance suite (see engine_conformance.hpp): what every engine must do.
// This file: the fixture, the broker, presence, bans and admission; the state kept as
// keys and counters (revocations, slots, sequences) is in engine_conformance_keys_test.cpp.

#include "engine/engine_conformance.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <future>
#include <iterator>
#include <thread>
#include <tuple>

namespace chatorbit::engine {

namespace {

// Probe and marker payloads start with this, to tell them from the
// publications a test is about: the helpers filter them out.
const std::string kProbePrefix = std::string("\x01probe:", 7);

bool is_probe(const std::string& payload) { return payload.rfind(kProbePrefix, 0) == 0; }

}  // namespace

// --- fixture ------------------------------------------------------------------------------

void EngineConformance::SetUp() {
  engine_ = GetParam().make(clock_);
  ASSERT_NE(engine_, nullptr) << "factory " << GetParam().name << " returned no engine";
  Subscriber record = [this](const std::string& channel, std::shared_ptr<const std::string> payload) {
    std::lock_guard lock(mu_);
    deliveries_.push_back(Delivery{channel, *payload});
  };
  engine_->set_subscriber(std::move(record));
}

void EngineConformance::TearDown() { engine_.reset(); }

std::uint64_t EngineConformance::reserve(const std::string& room, std::uint32_t count,
                                         std::optional<std::uint64_t> floor) {
  std::vector<SequenceRequest> one{{room, count, floor}};
  return run(engine().reserve_sequences(std::move(one))).at(0);
}

void EngineConformance::poll_once() {
  io_.restart();
  if (io_.poll() == 0) std::this_thread::sleep_for(std::chrono::milliseconds{1});
}

void EngineConformance::publish(const std::string& channel, const std::string& payload) {
  engine_->publish(channel, std::make_shared<const std::string>(payload));
}

bool EngineConformance::poll_until(const std::function<bool()>& done, std::chrono::steady_clock::duration limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    poll_once();
  }
  return true;
}

bool EngineConformance::recorded(const Delivery& wanted, std::chrono::steady_clock::duration limit) {
  return poll_until(
      [&] {
        std::lock_guard lock(mu_);
        return std::find(deliveries_.begin(), deliveries_.end(), wanted) != deliveries_.end();
      },
      limit);
}

bool EngineConformance::wait_for_deliveries(std::size_t n) {
  return poll_until(
      [&] {
        std::lock_guard lock(mu_);
        return std::count_if(deliveries_.begin(), deliveries_.end(),
                             [](const Delivery& d) { return !is_probe(d.payload); }) >= static_cast<std::ptrdiff_t>(n);
      },
      std::chrono::seconds{2});
}

void EngineConformance::subscribe_and_sync(const std::string& channel) {
  engine_->subscribe(channel);
  run(engine_->subscribed(channel));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{2};
  while (std::chrono::steady_clock::now() < deadline) {
    const Delivery probe{channel, kProbePrefix + std::to_string(++probes_)};
    publish(probe.channel, probe.payload);
    if (recorded(probe, std::chrono::milliseconds{20})) return;
  }
  ADD_FAILURE() << "subscription to " << channel << " never took effect";
}

std::vector<Delivery> EngineConformance::deliveries_until_markers(const std::vector<std::string>& channels) {
  std::vector<Delivery> markers;
  for (const auto& channel : channels) {
    markers.push_back(Delivery{channel, kProbePrefix + std::to_string(++probes_)});
    publish(markers.back().channel, markers.back().payload);
  }
  for (const auto& marker : markers) {
    EXPECT_TRUE(recorded(marker, std::chrono::seconds{2})) << "marker on " << marker.channel << " never arrived";
  }
  auto out = deliveries();
  clear_deliveries();
  return out;
}

std::vector<Delivery> EngineConformance::deliveries() {
  std::lock_guard lock(mu_);
  std::vector<Delivery> out;
  std::copy_if(deliveries_.begin(), deliveries_.end(), std::back_inserter(out),
               [](const Delivery& d) { return !is_probe(d.payload); });
  return out;
}

void EngineConformance::clear_deliveries() {
  std::lock_guard lock(mu_);
  deliveries_.clear();
}

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Deliveries = std::vector<Delivery>;
using Verdict = Admission::Verdict;

Deliveries sorted(Deliveries v) {
  std::sort(v.begin(), v.end(), [](const Delivery& a, const Delivery& b) {
    return std::tie(a.channel, a.payload) < std::tie(b.channel, b.payload);
  });
  return v;
}

PresenceEntry entry(std::string room, std::string conn, std::string user = "") {
  return PresenceEntry{std::move(room), std::move(conn), std::move(user)};
}

AdmitRequest post(std::string room, std::string user, RateSpec rate = {100, seconds{60}}, int slow_mode_seconds = 0) {
  return AdmitRequest{std::move(room), std::move(user), rate, slow_mode_seconds};
}

// --- broker ------------------------------------------------------------------------------

TEST_P(EngineConformance, DeliversOnlySubscribedChannels) {
  subscribe_and_sync("room.a");
  subscribe_and_sync("room.b");
  publish("room.a", "1");
  publish("room.c", "2");
  publish("room.b", "3");
  EXPECT_EQ(sorted(deliveries_until_markers({"room.a", "room.b"})), (Deliveries{{"room.a", "1"}, {"room.b", "3"}}));
}

TEST_P(EngineConformance, DeliversInPublishOrder) {
  subscribe_and_sync("room.a");
  Deliveries expected;
  for (int i = 0; i < 1000; ++i) {
    expected.push_back({"room.a", "message " + std::to_string(i)});
    publish("room.a", expected.back().payload);
  }
  ASSERT_TRUE(wait_for_deliveries(expected.size()));
  EXPECT_EQ(deliveries(), expected);
}

TEST_P(EngineConformance, PayloadArrivesIntact) {
  subscribe_and_sync("room.a");
  std::string payload(64 * 1024, 'x');
  payload[10] = '\0';
  payload[11] = '\xff';
  publish("room.a", payload);
  ASSERT_TRUE(wait_for_deliveries(1));
  EXPECT_EQ(deliveries().at(0).payload, payload);
}

TEST_P(EngineConformance, UnsubscribeStopsDelivery) {
  subscribe_and_sync("room.a");
  subscribe_and_sync("room.b");
  publish("room.a", "before");
  engine().unsubscribe("room.a");
  publish("room.a", "after");
  publish("room.b", "other");
  // Published before the unsubscribe: delivered; another channel: not affected.
  EXPECT_TRUE(wait_for_deliveries(2));

  // Subscribed again at once (before any leave has completed) and later.
  subscribe_and_sync("room.a");
  publish("room.a", "again");
  // A marker on room.a proves that "after", published on it earlier, is not in flight.
  EXPECT_EQ(sorted(deliveries_until_markers({"room.a"})),
            (Deliveries{{"room.a", "again"}, {"room.a", "before"}, {"room.b", "other"}}));
  engine().unsubscribe("room.a");
  publish("room.a", "while away");
  subscribe_and_sync("room.a");
  EXPECT_TRUE(deliveries_until_markers({"room.a"}).empty());
}

TEST_P(EngineConformance, ResubscribingAtOnceDropsWhatWasPublishedWhileAway) {
  subscribe_and_sync("room.a");
  Deliveries expected;
  for (int round = 0; round < 20; ++round) {
    const std::string n = std::to_string(round);
    publish("room.a", "kept " + n);
    engine().unsubscribe("room.a");
    publish("room.a", "dropped " + n);
    engine().subscribe("room.a");
    run(engine().subscribed("room.a"));
    publish("room.a", "kept again " + n);
    expected.push_back({"room.a", "kept " + n});
    expected.push_back({"room.a", "kept again " + n});
  }
  EXPECT_EQ(deliveries_until_markers({"room.a"}), expected);
}

// What a node relies on at shutdown: once set_subscriber({}) returns, no engine thread is
// inside the old subscriber, so what it points at (the hub) may be destroyed.
TEST_P(EngineConformance, ReplacingTheSubscriberWaitsForADeliveryInFlight) {
  subscribe_and_sync("room.slow");
  std::promise<void> started;
  std::atomic<bool> entered{false};
  std::atomic<bool> finished{false};
  engine().set_subscriber([&](const std::string& channel, std::shared_ptr<const std::string> payload) {
    if (channel != "room.slow" || *payload != "slow" || entered.exchange(true)) return;
    started.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
    finished = true;
  });
  // From a thread of its own: the memory engine delivers inline, in publish().
  std::jthread publisher([this] { publish("room.slow", "slow"); });
  ASSERT_EQ(started.get_future().wait_for(std::chrono::seconds{5}), std::future_status::ready);
  engine().set_subscriber({});
  EXPECT_TRUE(finished.load()) << "set_subscriber() returned while the old subscriber was still running";
}

TEST_P(EngineConformance, SubscribeAndUnsubscribeAreIdempotent) {
  subscribe_and_sync("room.a");
  subscribe_and_sync("room.a");
  subscribe_and_sync("room.b");
  publish("room.a", "once");
  EXPECT_EQ(deliveries_until_markers({"room.a"}), (Deliveries{{"room.a", "once"}}));

  engine().unsubscribe("room.a");  // one unsubscribe undoes any number of subscribes
  engine().unsubscribe("room.a");
  engine().unsubscribe("never.subscribed");
  publish("room.a", "dropped");
  subscribe_and_sync("room.a");  // a marker on room.a proves "dropped" is not in flight
  EXPECT_TRUE(deliveries_until_markers({"room.a", "room.b"}).empty());
}

// --- presence -----------------------------------------------------------------------------

TEST_P(EngineConformance, TwoConnectionsOfOneUserCountAsOneChatter) {
  run(engine().presence_refresh({entry("r1", "c1", "alice"), entry("r1", "c2", "alice"), entry("r1", "c3", "bob")},
                                seconds{30}));
  const auto counts = run(engine().presence_counts({"r1"}));
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0].chatters, 2);
  EXPECT_EQ(counts[0].viewers, 0);
  EXPECT_EQ(counts[0].online(), 2);
}

TEST_P(EngineConformance, ClosingOneConnectionKeepsTheUserOnline) {
  run(engine().presence_refresh({entry("r1", "c1", "alice"), entry("r1", "c2", "alice")}, seconds{30}));
  run(engine().presence_remove({entry("r1", "c1", "alice")}));
  EXPECT_EQ(run(engine().presence_counts({"r1"})).at(0).chatters, 1);
  run(engine().presence_remove({entry("r1", "c2", "alice")}));
  EXPECT_EQ(run(engine().presence_counts({"r1"})).at(0).online(), 0);
}

TEST_P(EngineConformance, AnonymousViewersAreCountedSeparately) {
  run(engine().presence_refresh({entry("r1", "v1"), entry("r1", "v2"), entry("r1", "c1", "alice")}, seconds{30}));
  const auto counts = run(engine().presence_counts({"r1"})).at(0);
  EXPECT_EQ(counts.chatters, 1);
  EXPECT_EQ(counts.viewers, 2);
  EXPECT_EQ(counts.online(), 3);
}

TEST_P(EngineConformance, PresenceExpiresTtlAfterLastRefresh) {
  run(engine().presence_refresh({entry("r1", "c1", "alice"), entry("r1", "v1")}, seconds{30}));
  clock().advance(seconds{10});
  run(engine().presence_refresh({entry("r1", "c2", "bob")}, seconds{30}));
  clock().advance(seconds{20} - milliseconds{1});
  auto counts = run(engine().presence_counts({"r1"})).at(0);
  EXPECT_EQ(counts.chatters, 2);
  EXPECT_EQ(counts.viewers, 1);

  clock().advance(milliseconds{1});  // 30 s after c1 and v1 were refreshed
  counts = run(engine().presence_counts({"r1"})).at(0);
  EXPECT_EQ(counts.chatters, 1);
  EXPECT_EQ(counts.viewers, 0);
  clock().advance(seconds{10});
  EXPECT_EQ(run(engine().presence_counts({"r1"})).at(0).online(), 0);
}

TEST_P(EngineConformance, RefreshExtendsPresence) {
  run(engine().presence_refresh({entry("r1", "c1", "alice")}, seconds{30}));
  clock().advance(seconds{20});
  run(engine().presence_refresh({entry("r1", "c1", "alice")}, seconds{30}));
  clock().advance(seconds{20});
  EXPECT_EQ(run(engine().presence_counts({"r1"})).at(0).chatters, 1);
  clock().advance(seconds{10});
  EXPECT_EQ(run(engine().presence_counts({"r1"})).at(0).chatters, 0);
}

TEST_P(EngineConformance, RemoveRemovesOnlyTheGivenEntries) {
  run(engine().presence_refresh({entry("r1", "c1", "alice"), entry("r2", "c1", "alice"), entry("r1", "v1")},
                                seconds{30}));
  run(engine().presence_remove({entry("r1", "c1", "alice"), entry("r1", "unknown"), entry("r9", "c1")}));
  const auto counts = run(engine().presence_counts({"r1", "r2"}));
  EXPECT_EQ(counts.at(0).chatters, 0);
  EXPECT_EQ(counts.at(0).viewers, 1);
  EXPECT_EQ(counts.at(1).chatters, 1);
}

TEST_P(EngineConformance, CountsForSeveralRoomsComeInOrder) {
  run(engine().presence_refresh({entry("r1", "c1", "alice"), entry("r2", "v1"), entry("r2", "v2"),
                                 entry("r3", "c2", "bob"), entry("r3", "c3", "carol"), entry("r3", "v3")},
                                seconds{30}));
  const auto counts = run(engine().presence_counts({"r3", "unknown", "r1", "r2"}));
  ASSERT_EQ(counts.size(), 4u);
  EXPECT_EQ(std::make_pair(counts[0].chatters, counts[0].viewers), std::make_pair(std::int64_t{2}, std::int64_t{1}));
  EXPECT_EQ(std::make_pair(counts[1].chatters, counts[1].viewers), std::make_pair(std::int64_t{0}, std::int64_t{0}));
  EXPECT_EQ(std::make_pair(counts[2].chatters, counts[2].viewers), std::make_pair(std::int64_t{1}, std::int64_t{0}));
  EXPECT_EQ(std::make_pair(counts[3].chatters, counts[3].viewers), std::make_pair(std::int64_t{0}, std::int64_t{2}));
  EXPECT_TRUE(run(engine().presence_counts({})).empty());
}

TEST_P(EngineConformance, UnknownRoomCountsZero) {
  const auto counts = run(engine().presence_counts({"nobody-here"}));
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0].chatters, 0);
  EXPECT_EQ(counts[0].viewers, 0);
}

// --- bans ---------------------------------------------------------------------------------

TEST_P(EngineConformance, PermanentBanLastsForever) {
  run(engine().ban("r1", "u1", "spam", std::nullopt));
  clock().advance(std::chrono::hours{24 * 365});
  const auto ban = run(engine().ban_state("r1", "u1"));
  ASSERT_TRUE(ban.has_value());
  EXPECT_EQ(ban->scope, "r1");
  EXPECT_EQ(ban->reason, "spam");
  EXPECT_EQ(ban->expires_at_ms, 0);
}

TEST_P(EngineConformance, TimedBanExpiresByItself) {
  const std::int64_t expected_expiry = clock().unix_millis() + 60'000;
  run(engine().ban("r1", "u1", "calm down", seconds{60}));
  clock().advance(seconds{60} - milliseconds{1});
  const auto ban = run(engine().ban_state("r1", "u1"));
  ASSERT_TRUE(ban.has_value());
  EXPECT_EQ(ban->expires_at_ms, expected_expiry);
  EXPECT_EQ(ban->reason, "calm down");
  clock().advance(milliseconds{1});
  EXPECT_FALSE(run(engine().ban_state("r1", "u1")).has_value());
}

TEST_P(EngineConformance, GlobalBanAppliesInEveryRoom) {
  run(engine().ban("", "u1", "abuse", std::nullopt));
  for (const char* room : {"r1", "r2", "anything"}) {
    const auto ban = run(engine().ban_state(room, "u1"));
    ASSERT_TRUE(ban.has_value()) << room;
    EXPECT_EQ(ban->scope, "");
    EXPECT_EQ(ban->reason, "abuse");
  }
  EXPECT_FALSE(run(engine().ban_state("r1", "u2")).has_value());
}

TEST_P(EngineConformance, RoomBanAppliesOnlyInThatRoom) {
  run(engine().ban("r1", "u1", "off topic", std::nullopt));
  EXPECT_TRUE(run(engine().ban_state("r1", "u1")).has_value());
  EXPECT_FALSE(run(engine().ban_state("r2", "u1")).has_value());
  EXPECT_FALSE(run(engine().ban_state("r1", "u2")).has_value());
}

TEST_P(EngineConformance, UnbanReportsWhetherABanWasInForce) {
  run(engine().ban("r1", "u1", "x", std::nullopt));
  run(engine().ban("", "u1", "y", std::nullopt));
  EXPECT_TRUE(run(engine().unban("r1", "u1")));
  EXPECT_FALSE(run(engine().unban("r1", "u1")));
  EXPECT_EQ(run(engine().ban_state("r1", "u1")).value().scope, "");  // the global ban stays
  EXPECT_TRUE(run(engine().unban("", "u1")));
  EXPECT_FALSE(run(engine().ban_state("r1", "u1")).has_value());

  run(engine().ban("r1", "u1", "x", seconds{10}));
  clock().advance(seconds{10});
  EXPECT_FALSE(run(engine().unban("r1", "u1")));  // expired: nothing was in force
  EXPECT_FALSE(run(engine().unban("r2", "nobody")));
}

TEST_P(EngineConformance, BanReplacesTheEarlierBanInTheScope) {
  run(engine().ban("r1", "u1", "first", seconds{10}));
  run(engine().ban("r1", "u1", "second", std::nullopt));
  clock().advance(seconds{20});
  auto ban = run(engine().ban_state("r1", "u1"));
  ASSERT_TRUE(ban.has_value());
  EXPECT_EQ(ban->reason, "second");
  EXPECT_EQ(ban->expires_at_ms, 0);

  run(engine().ban("r1", "u1", "third", seconds{10}));  // a permanent ban shortened
  ban = run(engine().ban_state("r1", "u1"));
  ASSERT_TRUE(ban.has_value());
  EXPECT_EQ(ban->reason, "third");
  EXPECT_EQ(ban->expires_at_ms, clock().unix_millis() + 10'000);
  clock().advance(seconds{10});
  EXPECT_FALSE(run(engine().ban_state("r1", "u1")).has_value());
}

TEST_P(EngineConformance, BanStatePicksTheLongerLastingBan) {
  run(engine().ban("r1", "u1", "room", seconds{60}));
  run(engine().ban("", "u1", "global", seconds{600}));
  EXPECT_EQ(run(engine().ban_state("r1", "u1")).value().scope, "");

  run(engine().ban("r1", "u1", "room", seconds{6000}));
  EXPECT_EQ(run(engine().ban_state("r1", "u1")).value().scope, "r1");

  run(engine().ban("", "u1", "global", std::nullopt));  // permanent beats any timed ban
  EXPECT_EQ(run(engine().ban_state("r1", "u1")).value().scope, "");

  run(engine().ban("", "u1", "global", seconds{60}));
  run(engine().ban("r1", "u1", "room", std::nullopt));
  EXPECT_EQ(run(engine().ban_state("r1", "u1")).value().scope, "r1");

  run(engine().ban("r1", "u1", "room", seconds{30}));
  clock().advance(seconds{30});  // the room ban is gone, the global one remains
  EXPECT_EQ(run(engine().ban_state("r1", "u1")).value().scope, "");
}

// --- admission ----------------------------------------------------------------------------

TEST_P(EngineConformance, AdmitsAnOrdinaryPost) {
  const auto a = run(engine().admit(post("r1", "u1")));
  EXPECT_EQ(a.verdict, Verdict::ok);
  EXPECT_EQ(a.retry_after, milliseconds{0});
  EXPECT_FALSE(a.ban.has_value());
}

TEST_P(EngineConformance, BannedUserIsRefused) {
  run(engine().ban("r1", "u1", "timeout", seconds{60}));
  clock().advance(seconds{15});
  auto a = run(engine().admit(post("r1", "u1")));
  EXPECT_EQ(a.verdict, Verdict::banned);
  EXPECT_EQ(a.retry_after, milliseconds{45'000});
  ASSERT_TRUE(a.ban.has_value());
  EXPECT_EQ(a.ban->scope, "r1");
  EXPECT_EQ(a.ban->reason, "timeout");
  EXPECT_EQ(run(engine().admit(post("r2", "u1"))).verdict, Verdict::ok);

  run(engine().ban("", "u2", "gone", std::nullopt));
  a = run(engine().admit(post("r2", "u2")));
  EXPECT_EQ(a.verdict, Verdict::banned);
  EXPECT_EQ(a.retry_after, milliseconds{0});

  clock().advance(seconds{45});
  EXPECT_EQ(run(engine().admit(post("r1", "u1"))).verdict, Verdict::ok);
}

TEST_P(EngineConformance, SlowModeEnforcesTheIntervalFromTheLastAcceptedPost) {
  const RateSpec rate{100, seconds{60}};
  EXPECT_EQ(run(engine().admit(post("r1", "u1", rate, 10))).verdict, Verdict::ok);
  clock().advance(seconds{4});
  auto a = run(engine().admit(post("r1", "u1", rate, 10)));
  EXPECT_EQ(a.verdict, Verdict::slow_mode);
  EXPECT_EQ(a.retry_after, milliseconds{6'000});
  clock().advance(milliseconds{5'999});
  a = run(engine().admit(post("r1", "u1", rate, 10)));
  EXPECT_EQ(a.verdict, Verdict::slow_mode);
  EXPECT_EQ(a.retry_after, milliseconds{1});
  clock().advance(milliseconds{1});  // 10 s after the accepted post, not after the refused ones
  EXPECT_EQ(run(engine().admit(post("r1", "u1", rate, 10))).verdict, Verdict::ok);
}

TEST_P(EngineConformance, SlowModeOffForModerators) {
  const RateSpec rate{100, seconds{60}};
  ASSERT_EQ(run(engine().admit(post("r1", "u1", rate, 10))).verdict, Verdict::ok);
  EXPECT_EQ(run(engine().admit(post("r1", "u1", rate, 10))).verdict, Verdict::slow_mode);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(run(engine().admit(post("r1", "mod", rate, 0))).verdict, Verdict::ok) << i;
}

TEST_P(EngineConformance, RateLimitAllowsNPerWindow) {
  const RateSpec rate{3, seconds{10}};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(run(engine().admit(post("r1", "u1", rate))).verdict, Verdict::ok) << i;
    clock().advance(seconds{1});
  }
  const auto a = run(engine().admit(post("r1", "u1", rate)));  // at t0 + 3 s
  EXPECT_EQ(a.verdict, Verdict::rate_limited);
  EXPECT_EQ(a.retry_after, milliseconds{7'000});  // when the post at t0 leaves the window
}

TEST_P(EngineConformance, RateWindowSlidesOneSlotAtATime) {
  const RateSpec rate{3, seconds{10}};
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(run(engine().admit(post("r1", "u1", rate))).verdict, Verdict::ok);
    clock().advance(seconds{1});
  }
  clock().advance(seconds{7});  // t0 + 10 s: only the post at t0 has left
  EXPECT_EQ(run(engine().admit(post("r1", "u1", rate))).verdict, Verdict::ok);
  auto a = run(engine().admit(post("r1", "u1", rate)));
  EXPECT_EQ(a.verdict, Verdict::rate_limited);
  EXPECT_EQ(a.retry_after, milliseconds{1'000});
  clock().advance(milliseconds{999});
  a = run(engine().admit(post("r1", "u1", rate)));
  EXPECT_EQ(a.verdict, Verdict::rate_limited);
  EXPECT_EQ(a.retry_after, milliseconds{1});
  clock().advance(milliseconds{1});
  EXPECT_EQ(run(engine().admit(post("r1", "u1", rate))).verdict, Verdict::ok);
}

TEST_P(EngineConformance, RefusedPostsAreNotCounted) {
  const RateSpec rate{2, seconds{60}};
  EXPECT_EQ(run(engine().admit(post("r1", "u1", rate, 5))).verdict, Verdict::ok);
  clock().advance(seconds{1});
  EXPECT_EQ(run(engine().admit(post("r1", "u1", rate, 5))).verdict, Verdict::slow_mode);
  clock().advance(seconds{4});  // 5 s after the accepted post
  EXPECT_EQ(run(engine().admit(post("r1", "u1", rate, 5))).verdict, Verdict::ok);
  clock().advance(seconds{5});
  for (int i = 0; i < 10; ++i) EXPECT_EQ(run(engine().admit(post("r1", "u1", rate, 5))).verdict, Verdict::rate_limited);

  run(engine().ban("r1", "u1", "x", seconds{5}));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(run(engine().admit(post("r1", "u1", rate, 5))).verdict, Verdict::banned);
  clock().advance(seconds{55});  // t0 + 65 s: both accepted posts have left the window
  EXPECT_EQ(run(engine().admit(post("r1", "u1", rate))).verdict, Verdict::ok);
  EXPECT_EQ(run(engine().admit(post("r1", "u1", rate))).verdict, Verdict::ok);
  EXPECT_EQ(run(engine().admit(post("r1", "u1", rate))).verdict, Verdict::rate_limited);
}

TEST_P(EngineConformance, ChecksBanThenSlowModeThenRate) {
  const RateSpec rate{1, seconds{60}};
  ASSERT_EQ(run(engine().admit(post("r1", "u1", rate, 10))).verdict, Verdict::ok);
  clock().advance(seconds{5});
  EXPECT_EQ(run(engine().admit(post("r1", "u1", rate, 10))).verdict, Verdict::slow_mode);
  clock().advance(seconds{15});
  const auto a = run(engine().admit(post("r1", "u1", rate, 10)));
  EXPECT_EQ(a.verdict, Verdict::rate_limited);
  EXPECT_EQ(a.retry_after, milliseconds{40'000});
  run(engine().ban("r1", "u1", "x", std::nullopt));
  EXPECT_EQ(run(engine().admit(post("r1", "u1", rate, 10))).verdict, Verdict::banned);
}

TEST_P(EngineConformance, UsersAndRoomsAreLimitedIndependently) {
  const RateSpec rate{1, seconds{60}};
  ASSERT_EQ(run(engine().admit(post("r1", "u1", rate, 30))).verdict, Verdict::ok);
  EXPECT_EQ(run(engine().admit(post("r1", "u1", rate, 30))).verdict, Verdict::slow_mode);
  EXPECT_EQ(run(engine().admit(post("r1", "u2", rate, 30))).verdict, Verdict::ok);
  EXPECT_EQ(run(engine().admit(post("r2", "u1", rate, 30))).verdict, Verdict::ok);
  EXPECT_EQ(run(engine().admit(post("r2", "u1", rate))).verdict, Verdict::rate_limited);
  EXPECT_EQ(run(engine().admit(post("r3", "u1", rate))).verdict, Verdict::ok);
}

TEST_P(EngineConformance, RateHitIsASlidingWindowPerKey) {
  const RateSpec rate{2, seconds{1}};
  EXPECT_EQ(run(engine().rate_hit("ip:10.0.0.1", rate)).verdict, Verdict::ok);
  clock().advance(milliseconds{200});
  EXPECT_EQ(run(engine().rate_hit("ip:10.0.0.1", rate)).verdict, Verdict::ok);
  auto a = run(engine().rate_hit("ip:10.0.0.1", rate));
  EXPECT_EQ(a.verdict, Verdict::rate_limited);
  EXPECT_EQ(a.retry_after, milliseconds{800});
  EXPECT_EQ(run(engine().rate_hit("ip:10.0.0.2", rate)).verdict, Verdict::ok);

  clock().advance(milliseconds{800});  // the first hit leaves; refused hits were not counted
  EXPECT_EQ(run(engine().rate_hit("ip:10.0.0.1", rate)).verdict, Verdict::ok);
  a = run(engine().rate_hit("ip:10.0.0.1", rate));
  EXPECT_EQ(a.verdict, Verdict::rate_limited);
  EXPECT_EQ(a.retry_after, milliseconds{200});
}

TEST_P(EngineConformance, APublishToABrokerThatIsDownFailsVisibly) {
  if (!GetParam().set_broker_down) GTEST_SKIP() << "the factory cannot take this engine's broker down";
  subscribe_and_sync("room:a");
  clear_deliveries();
  std::atomic<int> resubscribed{0};
  engine().set_resubscribed([&] { ++resubscribed; });
  // A new engine connects on its own time: on a cluster, the publisher's links to the
  // shards no marker went to may still be opening.
  EXPECT_TRUE(poll_until([&] { return engine().broker_health().up; }, std::chrono::seconds{5}))
      << engine().broker_health().detail;

  GetParam().set_broker_down(engine(), true);
  EXPECT_FALSE(engine().broker_health().up);
  EXPECT_FALSE(engine().broker_health().detail.empty());
  std::promise<std::string> outcome;
  engine().publish("room:a", std::make_shared<const std::string>("lost"),
                   [&](std::string_view error) { outcome.set_value(std::string(error)); });
  auto reported = outcome.get_future();
  ASSERT_EQ(reported.wait_for(std::chrono::seconds{5}), std::future_status::ready) << "the failure is reported";
  EXPECT_FALSE(reported.get().empty());
  engine().subscribe("room:b");  // wanted while down
  EXPECT_THROW(run(engine().subscribed("room:b")), EngineUnavailable);

  GetParam().set_broker_down(engine(), false);
  poll_until([&] { return resubscribed.load() > 0; }, std::chrono::seconds{5});
  EXPECT_EQ(resubscribed.load(), 1) << "told once the broker is back and the channels are subscribed again";
  EXPECT_TRUE(engine().broker_health().up);
  run(engine().subscribed("room:b"));
  const auto seen = deliveries_until_markers({"room:a"});
  EXPECT_TRUE(std::none_of(seen.begin(), seen.end(), [](const Delivery& d) { return d.payload == "lost"; }));
  std::promise<std::string> ok;
  engine().publish("room:b", std::make_shared<const std::string>("after"),
                   [&](std::string_view error) { ok.set_value(std::string(error)); });
  auto ok_future = ok.get_future();
  ASSERT_EQ(ok_future.wait_for(std::chrono::seconds{5}), std::future_status::ready);
  EXPECT_EQ(ok_future.get(), "");
  EXPECT_TRUE(wait_for_deliveries(1));
  const auto after = deliveries();
  EXPECT_TRUE(std::any_of(after.begin(), after.end(), [](const Delivery& d) { return d.payload == "after"; }))
      << "a channel subscribed while the broker was down is in force once it is back";
}

}  // namespace
}  // namespace chatorbit::engine
