#include "auth/login_throttle.hpp"

#include <vector>

#include "core/log.hpp"

namespace chatorbit::auth {

void LoginThrottle::prune_locked(std::deque<Nanos>& times, Nanos now) const {
  while (!times.empty() && times.front() + window_ <= now) times.pop_front();
}

template <class Times>
std::optional<std::chrono::seconds> LoginThrottle::verdict(const Times& times, Nanos now) const {
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

std::optional<std::chrono::seconds> LoginThrottle::blocked_for(const std::string& key) {
  const Nanos now{clock_.unix_nanos()};
  std::lock_guard lock(mu_);
  const auto it = failures_.find(key);
  if (it == failures_.end()) return std::nullopt;
  prune_locked(it->second, now);
  return verdict(it->second, now);
}

boost::asio::awaitable<std::optional<std::chrono::seconds>> LoginThrottle::check(std::string key) {
  auto local = blocked_for(key);
  if (!shared_) co_return local;
  std::vector<Nanos> times;
  try {
    // Enough of the newest for either policy: the lock looks max_failures back, the
    // delay doubles at most 30 times.
    const auto limit = static_cast<std::size_t>(max_failures_) + 31;
    for (const std::int64_t ms : co_await shared_->recent_failures(scope_ + key, window_, limit)) {
      times.push_back(std::chrono::duration_cast<Nanos>(std::chrono::milliseconds{ms}));
    }
  } catch (const engine::EngineUnavailable& e) {
    log::warn("login_throttle_local_only", {{"why", e.what()}});
    co_return local;
  }
  const auto across = verdict(times, Nanos{clock_.unix_nanos()});
  if (!local) co_return across;
  if (!across) co_return local;
  co_return std::max(*local, *across);
}

boost::asio::awaitable<void> LoginThrottle::fail(std::string key) {
  record_failure(key);
  if (!shared_) co_return;
  try {
    co_await shared_->record_failure(scope_ + key, window_);
  } catch (const engine::EngineUnavailable& e) {
    log::warn("login_throttle_local_only", {{"why", e.what()}});
  }
}

boost::asio::awaitable<void> LoginThrottle::clear(std::string key) {
  reset(key);
  if (!shared_) co_return;
  try {
    co_await shared_->clear_failures(scope_ + key);
  } catch (const engine::EngineUnavailable& e) {
    log::warn("login_throttle_local_only", {{"why", e.what()}});
  }
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
