// MemoryEngine: the conformance suite, plus what is the memory engine's own (inline and
// re-entrant delivery, behaviour under concurrent callers, bounded memory).

#include "engine/memory/memory_engine.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/engine_conformance.hpp"

namespace chatorbit::engine {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

INSTANTIATE_TEST_SUITE_P(Memory, EngineConformance,
                         ::testing::Values(EngineFactory{
                             "Memory", [](ManualClock& clock) { return std::make_unique<MemoryEngine>(clock); },
                             [](Engine& e) { static_cast<MemoryEngine&>(e).forget_sequences(); },
                             [](Engine& e) { static_cast<MemoryEngine&>(e).forget_token_revocations(); },
                             [](Engine& e, bool down) { static_cast<MemoryEngine&>(e).set_broker_down(down); }}),
                         engine_factory_name);

/// Runs one engine coroutine to completion on a private io_context.
template <class T>
T run(boost::asio::awaitable<T> op) {
  boost::asio::io_context io;
  auto result = boost::asio::co_spawn(io, std::move(op), boost::asio::use_future);
  io.run();
  return result.get();
}

std::shared_ptr<const std::string> text(std::string s) { return std::make_shared<const std::string>(std::move(s)); }

/// Runs `body(thread_index)` on `n` threads at once.
template <class F>
void on_threads(int n, F body) {
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) threads.emplace_back(body, t);
  for (auto& th : threads) th.join();
}

class MemoryEngineTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  MemoryEngine engine_{clock_};
};

// --- broker ------------------------------------------------------------------------------

TEST_F(MemoryEngineTest, PublishDeliversBeforeReturning) {
  std::vector<std::string> got;
  engine_.set_subscriber([&](const std::string&, std::shared_ptr<const std::string> p) { got.push_back(*p); });
  engine_.subscribe("a");
  engine_.publish("a", text("1"));
  EXPECT_EQ(got, (std::vector<std::string>{"1"}));
}

TEST_F(MemoryEngineTest, PublishWithoutSubscriberIsDropped) {
  engine_.subscribe("a");
  engine_.publish("a", text("1"));  // must not crash
  engine_.set_subscriber(nullptr);
  engine_.publish("a", text("2"));
}

TEST_F(MemoryEngineTest, ConcurrentPublishersKeepTheirOrderAndNeverOverlap) {
  constexpr int kThreads = 4;
  constexpr int kEach = 2000;
  std::map<std::string, std::vector<int>> got;  // channel + thread -> sequence seen
  std::atomic<int> in_flight{0};
  std::atomic<bool> overlapped{false};
  engine_.set_subscriber([&](const std::string& channel, std::shared_ptr<const std::string> p) {
    if (in_flight.fetch_add(1) != 0 && channel == "shared") overlapped = true;
    const auto colon = p->find(':');
    got[channel + "/" + p->substr(0, colon)].push_back(std::stoi(p->substr(colon + 1)));
    in_flight.fetch_sub(1);
  });
  engine_.subscribe("shared");
  on_threads(kThreads, [&](int t) {
    for (int i = 0; i < kEach; ++i) engine_.publish("shared", text(std::to_string(t) + ":" + std::to_string(i)));
  });
  EXPECT_FALSE(overlapped);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kThreads));
  for (const auto& [key, seqs] : got) {
    ASSERT_EQ(seqs.size(), static_cast<std::size_t>(kEach)) << key;
    for (int i = 0; i < kEach; ++i) ASSERT_EQ(seqs[static_cast<std::size_t>(i)], i) << key;
  }
}

TEST_F(MemoryEngineTest, SubscriberMayPublishReentrantly) {
  std::vector<std::string> got;
  engine_.set_subscriber([&](const std::string& channel, std::shared_ptr<const std::string> p) {
    got.push_back(channel + ":" + *p);
    if (*p == "ping") {
      engine_.publish("a", text("echo"));  // the channel being delivered: queued, no deadlock
      engine_.publish("b", text("relay"));
      engine_.unsubscribe("c");
      engine_.publish("c", text("dropped"));
    }
  });
  engine_.subscribe("a");
  engine_.subscribe("b");
  engine_.subscribe("c");
  engine_.publish("a", text("ping"));
  EXPECT_EQ(got, (std::vector<std::string>{"a:ping", "a:echo", "b:relay"}));
  engine_.publish("b", text("after"));
  EXPECT_EQ(got.back(), "b:after");
}

TEST_F(MemoryEngineTest, SubscriberExceptionPropagatesAndLeavesTheEngineUsable) {
  std::vector<std::string> got;
  engine_.set_subscriber([&](const std::string&, std::shared_ptr<const std::string> p) {
    if (*p == "boom") {
      engine_.publish("a", text("queued"));
      throw std::runtime_error("subscriber failed");
    }
    got.push_back(*p);
  });
  engine_.subscribe("a");
  EXPECT_THROW(engine_.publish("a", text("boom")), std::runtime_error);
  engine_.publish("a", text("fine"));
  EXPECT_EQ(got, (std::vector<std::string>{"fine"}));
}

// --- presence, bans, admission ----------------------------------------------------------------

TEST_F(MemoryEngineTest, RefreshWithAnotherUserMovesTheConnection) {
  run(engine_.presence_refresh({{"r1", "c1", ""}}, seconds{30}));
  run(engine_.presence_refresh({{"r1", "c1", "alice"}}, seconds{30}));
  auto counts = run(engine_.presence_counts({"r1"})).at(0);
  EXPECT_EQ(counts.chatters, 1);
  EXPECT_EQ(counts.viewers, 0);
  run(engine_.presence_refresh({{"r1", "c1", "bob"}}, seconds{30}));
  counts = run(engine_.presence_counts({"r1"})).at(0);
  EXPECT_EQ(counts.chatters, 1);
  run(engine_.presence_refresh({{"r1", "c1", "bob"}}, seconds{0}));  // expired at once
  EXPECT_EQ(run(engine_.presence_counts({"r1"})).at(0).online(), 0);
}

TEST_F(MemoryEngineTest, ZeroTtlBanLiftsTheBan) {
  run(engine_.ban("r1", "u1", "x", std::nullopt));
  run(engine_.ban("r1", "u1", "x", seconds{0}));
  EXPECT_FALSE(run(engine_.ban_state("r1", "u1")).has_value());
}

TEST_F(MemoryEngineTest, RoomBanWinsATieWithTheGlobalBan) {
  run(engine_.ban("", "u1", "global", seconds{60}));
  run(engine_.ban("r1", "u1", "room", seconds{60}));
  EXPECT_EQ(run(engine_.ban_state("r1", "u1")).value().scope, "r1");
}

TEST_F(MemoryEngineTest, LimitWithoutCountOrWindowIsNoLimit) {
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(run(engine_.admit({"r1", "u1", RateSpec{0, seconds{10}}, 0})).verdict, Admission::Verdict::ok);
    ASSERT_EQ(run(engine_.rate_hit("k", RateSpec{5, seconds{0}})).verdict, Admission::Verdict::ok);
  }
}

TEST_F(MemoryEngineTest, ConcurrentAdmitsNeverExceedTheLimit) {
  constexpr int kLimit = 50;
  std::atomic<int> admitted{0};
  std::atomic<int> hits{0};
  on_threads(8, [&](int) {
    for (int i = 0; i < 100; ++i) {
      const AdmitRequest request{"r1", "u1", RateSpec{kLimit, seconds{60}}, 0};
      if (run(engine_.admit(request)).verdict == Admission::Verdict::ok) ++admitted;
      if (run(engine_.rate_hit("ip", RateSpec{kLimit, seconds{60}})).verdict == Admission::Verdict::ok) ++hits;
    }
  });
  EXPECT_EQ(admitted.load(), kLimit);
  EXPECT_EQ(hits.load(), kLimit);
}

// --- bounded memory ----------------------------------------------------------------------------

TEST_F(MemoryEngineTest, ExpiredKeysAreSweptByLaterTraffic) {
  constexpr int kKeys = 1000;
  for (int i = 0; i < kKeys; ++i) {
    const std::string n = std::to_string(i);
    run(engine_.rate_hit("old:" + n, RateSpec{5, seconds{10}}));
    run(engine_.admit({"room" + n, "u" + n, RateSpec{5, seconds{10}}, 5}));
    run(engine_.presence_refresh({{"room" + n, "c" + n, "u" + n}}, seconds{30}));
    run(engine_.ban("room" + n, "u" + n, "x", seconds{20}));
  }
  EXPECT_EQ(engine_.tracked_keys(), 4u * kKeys);

  clock_.advance(seconds{30});  // everything above has expired
  for (int i = 0; i < kKeys; ++i) {
    const std::string n = std::to_string(i);
    run(engine_.rate_hit("new:" + n, RateSpec{5, seconds{10}}));
    run(engine_.admit({"other" + n, "v" + n, RateSpec{5, seconds{10}}, 5}));
    run(engine_.presence_counts({"elsewhere" + n}));
  }
  // The new rate keys and posting records remain, nothing of the old ones.
  EXPECT_EQ(engine_.tracked_keys(), 2u * kKeys);
}

TEST_F(MemoryEngineTest, ExpiredRevocationsAndSlotsAreSweptByLaterTraffic) {
  constexpr int kKeys = 1000;
  for (int i = 0; i < kKeys; ++i) {
    const std::string n = std::to_string(i);
    run(engine_.revoke_token("j" + n, seconds{20}));
    run(engine_.put_token_floor("u" + n, 1, seconds{20}));
    run(engine_.claim_slot("ip" + n, "c" + n, 10, seconds{20}));
  }
  EXPECT_EQ(engine_.tracked_keys(), 3u * kKeys);

  clock_.advance(seconds{30});
  for (int i = 0; i < kKeys; ++i) {
    const std::string n = std::to_string(i);
    run(engine_.revoke_token("k" + n, seconds{20}));
    run(engine_.claim_slot("other" + n, "c" + n, 10, seconds{20}));
  }
  EXPECT_EQ(engine_.tracked_keys(), 2u * kKeys) << "the new revocations and slot sets remain, no old key";
}

TEST_F(MemoryEngineTest, TrackedKeysCountsChannelsAndSequences) {
  engine_.subscribe("a");
  engine_.subscribe("a");
  std::vector<SequenceRequest> reservation{{"r1", 1, 0}};
  run(engine_.reserve_sequences(std::move(reservation)));
  EXPECT_EQ(engine_.tracked_keys(), 2u);
  engine_.unsubscribe("a");
  EXPECT_EQ(engine_.tracked_keys(), 1u);
}

}  // namespace
}  // namespace chatorbit::engine
