#pragma once
// Failed-login throttling (OWASP authentication cheat sheet): a sliding window of failure
// times per key. Past the limit, a key is either locked until enough failures leave the
// window (the keys of one address, or of one account from one address: an attacker's
// own), or slowed with a delay after its latest failure that doubles with every further
// failure up to a cap (the key of an account alone: a long lock there would be a lever
// to lock a moderator out from anywhere). docs/architecture.md has the whole policy.
// Thread-safe.

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/clock.hpp"

namespace chatorbit::auth {

class LoginThrottle {
 public:
  /// max_delay zero: lock past the limit; else the growing delay, at most max_delay.
  LoginThrottle(const Clock& clock, int max_failures, std::chrono::seconds window,
                std::chrono::seconds max_delay = std::chrono::seconds{0})
      : clock_(clock), max_failures_(max_failures), window_(window), max_delay_(max_delay) {}

  /// If `key` is blocked now, how long until it is not.
  std::optional<std::chrono::seconds> blocked_for(const std::string& key);
  /// Records a failure for `key`.
  void record_failure(const std::string& key);
  /// Forgets `key`'s failures (after a successful login).
  void reset(const std::string& key);

 private:
  void prune_locked(std::deque<Nanos>& times, Nanos now) const;

  const Clock& clock_;
  const int max_failures_;
  const std::chrono::seconds window_;
  const std::chrono::seconds max_delay_;
  std::mutex mu_;
  std::unordered_map<std::string, std::deque<Nanos>> failures_;
  std::size_t ops_since_sweep_ = 0;
};

}  // namespace chatorbit::auth
