#include "chat/rooms.hpp"

namespace chatorbit::chat {

boost::asio::awaitable<void> RoomCache::ensure(std::string room) {
  {
    std::lock_guard lock(mu_);
    if (slow_.count(room)) co_return;
  }
  auto job = [room, now = clock_.unix_millis()](store::Store& s) {
    s.ensure_room(room, now);
    const auto r = s.find_room(room);
    return r ? r->slow_mode_seconds : 0;
  };
  const int slow = co_await store_.run(std::move(job));
  std::lock_guard lock(mu_);
  slow_.emplace(std::move(room), slow);
}

int RoomCache::slow_mode(const std::string& room) const {
  std::lock_guard lock(mu_);
  const auto it = slow_.find(room);
  return it == slow_.end() ? 0 : it->second;
}

void RoomCache::set_slow_mode(const std::string& room, int seconds) {
  std::lock_guard lock(mu_);
  slow_[room] = seconds;
}

}  // namespace chatorbit::chat
