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
  const auto& times = it->second;
  if (static_cast<int>(times.size()) < max_failures_) return std::nullopt;
  Nanos until{};
  if (max_delay_.count() == 0) {
    // Locked until enough failures age out that one more attempt is allowed.
    until = times[times.size() - static_cast<std::size_t>(max_failures_)] + window_;
  } else {
    // 1 s after the failure that reached the limit, then 2 s, 4 s, ... up to the cap.
    const auto doublings = std::min<std::size_t>(times.size() - static_cast<std::size_t>(max_failures_), 30);
    const auto delay =
        std::min<std::chrono::seconds>(std::chrono::seconds{1} * (std::int64_t{1} << doublings), max_delay_);
    until = times.back() + delay;
    if (until <= now) return std::nullopt;
  }
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
