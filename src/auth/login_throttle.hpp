#pragma once
// Failed-login throttling (OWASP authentication cheat sheet): per account and per
// client address, a sliding window of failure times. Past the limit, logins for that
// key are refused until the oldest failure leaves the window. Thread-safe.

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
  LoginThrottle(const Clock& clock, int max_failures, std::chrono::seconds window)
      : clock_(clock), max_failures_(max_failures), window_(window) {}

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
  std::mutex mu_;
  std::unordered_map<std::string, std::deque<Nanos>> failures_;
  std::size_t ops_since_sweep_ = 0;
};

}  // namespace chatorbit::auth
