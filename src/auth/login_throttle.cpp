#include "auth/login_throttle.hpp"

namespace chatorbit::auth {

void LoginThrottle::prune_locked(std::deque<Nanos>& times, Nanos now) const {
  while (!times.empty() && times.front() + window_ <= now) times.pop_front();
}

std::optional<std::chrono::seconds> LoginThrottle::blocked_for(const std::string& key) {
  const Nanos now{clock_.unix_nanos()};
  std::lock_guard lock(mu_);
  const auto it = failures_.find(key);
  if (it == failures_.end()) return std::nullopt;
  prune_locked(it->second, now);
  if (static_cast<int>(it->second.size()) < max_failures_) return std::nullopt;
  // Blocked until enough failures age out that one more attempt is allowed.
  const Nanos until = it->second[it->second.size() - static_cast<std::size_t>(max_failures_)] + window_;
  const auto left = std::chrono::ceil<std::chrono::seconds>(until - now);
  return std::max(left, std::chrono::seconds{1});
}

void LoginThrottle::record_failure(const std::string& key) {
  const Nanos now{clock_.unix_nanos()};
  std::lock_guard lock(mu_);
  auto& times = failures_[key];
  prune_locked(times, now);
  times.push_back(now);
  // Bound memory under a spray of distinct keys: sweep empty entries now and then.
  if (++ops_since_sweep_ >= 1024) {
    ops_since_sweep_ = 0;
    for (auto i = failures_.begin(); i != failures_.end();) {
      prune_locked(i->second, now);
      i = i->second.empty() ? failures_.erase(i) : std::next(i);
    }
  }
}

void LoginThrottle::reset(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

}  // namespace chatorbit::auth
