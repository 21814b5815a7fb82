#pragma once
// What every chat node needs to know about rooms on the hot path: that a room exists
// (created on demand) and its slow-mode interval. Cached in process; moderation events
// keep the cache current on every node. Thread-safe.

#include <boost/asio/awaitable.hpp>

#include <mutex>
#include <string>
#include <unordered_map>

#include "core/clock.hpp"
#include "store/store_worker.hpp"

namespace chatorbit::chat {

class RoomCache {
 public:
  RoomCache(store::StoreWorker& store, const Clock& clock) : store_(store), clock_(clock) {}

  /// Creates the room in the store if this process has not seen it yet.
  boost::asio::awaitable<void> ensure(std::string room);
  /// The room's slow-mode interval in seconds (0 = off; unknown rooms are 0).
  int slow_mode(const std::string& room) const;
  /// Records a new slow-mode interval (from a moderation event).
  void set_slow_mode(const std::string& room, int seconds);

 private:
  store::StoreWorker& store_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, int> slow_;  ///< rooms known to exist -> slow mode
};

}  // namespace chatorbit::chat
