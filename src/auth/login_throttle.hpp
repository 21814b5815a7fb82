#pragma once
// Failed-login throttling (OWASP authentication cheat sheet): a sliding window of failure
// times per key. Past the limit, a key is either locked until enough failures leave the
// window (the keys of one address, or of one account from one address: an attacker's
// own), or slowed with a delay after its latest failure that doubles with every further
// failure up to a cap (the key of an account alone: a long lock there would be a lever
// to lock a moderator out from anywhere). docs/architecture.md has the whole policy.
//
// Across nodes: given an engine, check()/fail()/clear() also keep the failures in it
// (Engine::record_failure, one counter per scope and key), and a key is blocked for the
// longer of what this node saw and what every node saw together, so an attacker who
// spreads attempts over the nodes behind a load balancer meets one limit. While the
// engine cannot be reached the node's own count still holds (logged).
// Thread-safe.

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/clock.hpp"
#include "engine/engine.hpp"

namespace chatorbit::auth {

class LoginThrottle {
 public:
  /// max_delay zero: lock past the limit; else the growing delay, at most max_delay.
  /// `shared`, if given, must outlive the throttle; `scope` keeps this throttle's keys
  /// apart from another's in it.
  LoginThrottle(const Clock& clock, int max_failures, std::chrono::seconds window,
                std::chrono::seconds max_delay = std::chrono::seconds{0}, engine::Engine* shared = nullptr,
                std::string scope = {})
      : clock_(clock),
        max_failures_(max_failures),
        window_(window),
        max_delay_(max_delay),
        shared_(shared),
        scope_(std::move(scope)) {}

  /// If `key` is blocked now (on this node, or by every node's failures together), how
  /// long until it is not. On the caller's executor.
  boost::asio::awaitable<std::optional<std::chrono::seconds>> check(std::string key);
  /// Records a failure for `key`, here and in the shared engine.
  boost::asio::awaitable<void> fail(std::string key);
  /// Forgets `key`'s failures, here and in the shared engine.
  boost::asio::awaitable<void> clear(std::string key);

  // This node's count alone.
  /// If `key` is blocked now, how long until it is not.
  std::optional<std::chrono::seconds> blocked_for(const std::string& key);
  /// Records a failure for `key`.
  void record_failure(const std::string& key);
  /// Forgets `key`'s failures (after a successful login).
  void reset(const std::string& key);

 private:
  void prune_locked(std::deque<Nanos>& times, Nanos now) const;
  /// The policy: how long failures at `times` (ascending, all within the window) block.
  template <class Times>
  std::optional<std::chrono::seconds> verdict(const Times& times, Nanos now) const;

  const Clock& clock_;
  const int max_failures_;
  const std::chrono::seconds window_;
  const std::chrono::seconds max_delay_;
  engine::Engine* const shared_;
  const std::string scope_;
  std::mutex mu_;
  std::unordered_map<std::string, std::deque<Nanos>> failures_;
  std::size_t ops_since_sweep_ = 0;
};

}  // namespace chatorbit::auth
