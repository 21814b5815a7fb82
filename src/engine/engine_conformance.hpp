#pragma once
// The Engine conformance suite: behaviour every Engine implementation must share, written
// once (engine_conformance_test.cpp and engine_conformance_keys_test.cpp) and run against
// each engine unchanged.
//
// An engine's test file instantiates it with one or more factories:
//
//   INSTANTIATE_TEST_SUITE_P(Memory, EngineConformance,
//                            ::testing::Values(EngineFactory{"Memory", [](ManualClock& clock) {
//                              return std::make_unique<MemoryEngine>(clock);
//                            }}),
//                            engine_factory_name);
//
// Only behaviour engine.hpp promises is tested here. The suite assumes nothing about how
// deliveries arrive (inline or on an engine thread): it waits for them with a bounded
// poll that also runs the fixture's io_context. Two further assumptions hold for any
// engine that delivers through one connection per node, as Redis pub/sub does:
//   * after subscribe() returns, a publication may still be missed until the
//     subscription is in force, so tests first publish probes until one arrives;
//   * publications from one thread arrive in publish order on each channel, so a marker
//     published last on a channel proves that nothing published on it before is still
//     in flight. Not across channels: on a Redis Cluster two channels may live on two
//     servers, reached over two connections.

#include <gtest/gtest.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.hpp"
#include "engine/engine.hpp"

namespace chatorbit::engine {

/// Makes Engine instances for the suite. Every call must return a new engine that shares
/// no state with any other (for Redis: a fresh key prefix and channel namespace) and that
/// takes its time from `clock`; the suite destroys it at the end of each test, before
/// the clock.
struct EngineFactory {
  std::string name;  ///< appears in test names: letters, digits and '_' only
  std::function<std::unique_ptr<Engine>(ManualClock&)> make;
  /// Makes `engine` (made by `make`) lose its sequence counters, as a restart without
  /// persistence does (memory: a new process; Redis: a server restarted empty).
  std::function<void(Engine&)> forget_sequences;
  /// Makes `engine` lose its token revocations, as a restart without persistence does.
  /// Empty: that part of AFreshEngineKnowsNoRevocations is skipped.
  std::function<void(Engine&)> forget_token_revocations;
  /// Makes `engine` lose (true) or regain (false) its broker, as a network failure or a
  /// broker restart would. Empty: the broker-failure cases are skipped.
  std::function<void(Engine&, bool down)> set_broker_down;
};

/// Lets GoogleTest print a factory by name in failure messages.
inline void PrintTo(const EngineFactory& factory, std::ostream* os) { *os << factory.name; }

/// The name generator for INSTANTIATE_TEST_SUITE_P: "Suite/Test/<factory name>".
inline std::string engine_factory_name(const ::testing::TestParamInfo<EngineFactory>& info) { return info.param.name; }

/// One publication as the subscriber saw it.
struct Delivery {
  std::string channel;
  std::string payload;
  bool operator==(const Delivery&) const = default;
};

inline void PrintTo(const Delivery& d, std::ostream* os) { *os << d.channel << ":" << d.payload; }

/// The fixture: a fresh engine per test, on a ManualClock, with a subscriber that
/// records every delivery. Helpers run the engine's coroutines to completion.
class EngineConformance : public ::testing::TestWithParam<EngineFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;

  Engine& engine() { return *engine_; }
  ManualClock& clock() { return clock_; }

  /// Runs an engine coroutine on the fixture's io_context until it completes and
  /// returns its result (rethrowing its exception). Fails the test after 5 s.
  template <class T>
  T run(boost::asio::awaitable<T> op);

  /// reserve_sequences() for one room, run to completion.
  std::uint64_t reserve(const std::string& room, std::uint32_t count,
                        std::optional<std::uint64_t> floor = std::nullopt);

  /// Subscribes and waits until the subscription is in force (see the file comment).
  void subscribe_and_sync(const std::string& channel);
  void publish(const std::string& channel, const std::string& payload);
  /// Waits (at most 2 s) until at least `n` deliveries have been recorded.
  bool wait_for_deliveries(std::size_t n);
  /// Publishes a marker on each of `channels` (which must be subscribed), waits for them
  /// all, and returns (and forgets) every non-probe delivery recorded so far.
  std::vector<Delivery> deliveries_until_markers(const std::vector<std::string>& channels);
  /// The deliveries so far.
  std::vector<Delivery> deliveries();
  void clear_deliveries();

  /// Runs ready handlers of the fixture's io_context without blocking (sleeps 1 ms if
  /// there were none): the step of a bounded wait.
  void poll_once();
  /// Polls (poll_once()) until `done()` holds or `limit` has passed; returns done().
  bool poll_until(const std::function<bool()>& done, std::chrono::steady_clock::duration limit);
  /// Waits at most `limit` for `wanted` to be recorded.
  bool recorded(const Delivery& wanted, std::chrono::steady_clock::duration limit);

 private:
  ManualClock clock_;
  boost::asio::io_context io_;
  std::mutex mu_;
  std::vector<Delivery> deliveries_;
  std::size_t probes_ = 0;
  std::unique_ptr<Engine> engine_;  // last: destroyed before what its subscriber uses
};

template <class T>
T EngineConformance::run(boost::asio::awaitable<T> op) {
  std::future<T> result = boost::asio::co_spawn(io_, std::move(op), boost::asio::use_future);
  io_.restart();
  io_.run_for(std::chrono::seconds{5});
  if (result.wait_for(std::chrono::seconds{0}) != std::future_status::ready) {
    throw std::runtime_error("engine operation did not complete within 5 s");
  }
  return result.get();
}

}  // namespace chatorbit::engine
