#pragma once
// Presence as the rooms see it: keeps the engine's entries of this node's sessions
// (added, refreshed, removed) and publishes each room's presence frames. A join or a
// leave in a room of up to `events_max` people is published at once, with who it was;
// in a larger room it only marks the room, and a one-second tick publishes the counts
// of the rooms marked since the last one (`count`).
//
// Threading: every method may be called from any thread. The engine calls run on the
// loop named (or loop 0 for notifications and the tick), as coroutines of their own:
// nothing here waits for them.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "net/event_loops.hpp"

namespace chatorbit::chat {

class PresenceNotifier {
 public:
  /// `events_max`: rooms larger than this get coalesced counts only
  /// (CHATORBIT_PRESENCE_EVENTS_MAX); `ttl`: how long an entry lives unrefreshed.
  PresenceNotifier(engine::Engine& engine, net::EventLoops& loops, int events_max, std::chrono::seconds ttl);
  ~PresenceNotifier();
  PresenceNotifier(const PresenceNotifier&) = delete;
  PresenceNotifier& operator=(const PresenceNotifier&) = delete;

  /// Starts the count tick (on loop 0).
  void start();
  /// Stops it; the notifier must outlive loop 0's queued work.
  void stop();

  /// Publishes that `user_id` (empty: a viewer without an account) joined or left
  /// `room` (`event` "join" or "leave"), or marks a large room for the next count.
  void notify(const std::string& room, const char* event, const std::string& user_id, const std::string& username);
  /// A session in a room closed: its entry is removed, then its leave is notified.
  void gone(std::size_t loop, engine::PresenceEntry entry, std::string user_id, std::string username);
  /// Refreshes entries that are due (the hub's sweep, once per loop).
  void refresh(std::size_t loop, std::vector<engine::PresenceEntry> entries);

 private:
  // Coroutines here are member functions, never lambdas: a lambda coroutine reads its
  // captures through the closure, which is gone once co_spawn's caller returns.
  boost::asio::awaitable<void> changed(std::string room, std::string event, std::string user_id, std::string username);
  boost::asio::awaitable<void> removed(engine::PresenceEntry entry, std::string user_id, std::string username);
  boost::asio::awaitable<void> refresh_batch(std::vector<engine::PresenceEntry> entries);
  boost::asio::awaitable<void> publish_counts(std::vector<std::string> rooms);
  void schedule_tick();

  engine::Engine& engine_;
  net::EventLoops& loops_;
  const int events_max_;
  const std::chrono::seconds ttl_;
  std::mutex mu_;
  std::set<std::string> dirty_;  ///< large rooms with a count update pending
  std::unique_ptr<boost::asio::steady_timer> timer_;
};

}  // namespace chatorbit::chat
