#include "chat/presence_notifier.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "chat/delivery.hpp"
#include "chat/events_json.hpp"
#include "chat/publication.hpp"
#include "chat/util.hpp"
#include "core/log.hpp"

namespace chatorbit::chat {

namespace asio = boost::asio;

PresenceNotifier::PresenceNotifier(engine::Engine& engine, net::EventLoops& loops, int events_max,
                                   std::chrono::seconds ttl)
    : engine_(engine), loops_(loops), events_max_(events_max), ttl_(ttl) {}

PresenceNotifier::~PresenceNotifier() = default;

void PresenceNotifier::start() {
  timer_ = std::make_unique<asio::steady_timer>(loops_.loop(0));
  asio::post(loops_.loop(0), [this] { schedule_tick(); });
}

void PresenceNotifier::stop() {
  if (timer_) {
    asio::post(loops_.loop(0), [this] { timer_->cancel(); });
  }
}

void PresenceNotifier::notify(const std::string& room, const char* event, const std::string& user_id,
                              const std::string& username) {
  asio::co_spawn(loops_.background(0).executor(), changed(room, event, user_id, username), asio::detached);
}

void PresenceNotifier::gone(std::size_t loop, engine::PresenceEntry entry, std::string user_id, std::string username) {
  asio::co_spawn(loops_.background(loop).executor(), removed(std::move(entry), std::move(user_id), std::move(username)),
                 asio::detached);
}

void PresenceNotifier::refresh(std::size_t loop, std::vector<engine::PresenceEntry> entries) {
  asio::co_spawn(loops_.background(loop).executor(), refresh_batch(std::move(entries)), asio::detached);
}

asio::awaitable<void> PresenceNotifier::removed(engine::PresenceEntry entry, std::string user_id,
                                                std::string username) {
  const std::string room = entry.room_id;
  co_await engine_.presence_remove(one(std::move(entry)));
  notify(room, "leave", user_id, username);
}

asio::awaitable<void> PresenceNotifier::refresh_batch(std::vector<engine::PresenceEntry> entries) {
  co_await engine_.presence_refresh(std::move(entries), ttl_);
}

asio::awaitable<void> PresenceNotifier::changed(std::string room, std::string event, std::string user_id,
                                                std::string username) {
  try {
    const auto counts = co_await engine_.presence_counts(one(room));
    const auto& c = counts.at(0);
    if (c.online() > events_max_) {
      std::lock_guard lock(mu_);
      dirty_.insert(room);
      co_return;
    }
    const auto frame = presence_frame(room, c, event, user_id, username);
    engine_.publish(room_channel(room), std::make_shared<const std::string>(encode_presence(frame)));
  } catch (const std::exception& e) {
    log::warn("presence_notify_failed", {{"what", e.what()}});
  }
}

void PresenceNotifier::schedule_tick() {
  timer_->expires_after(std::chrono::seconds{1});
  timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    std::set<std::string> rooms;
    {
      std::lock_guard lock(mu_);
      rooms.swap(dirty_);
    }
    if (!rooms.empty()) {
      asio::co_spawn(loops_.loop(0), publish_counts(std::vector<std::string>(rooms.begin(), rooms.end())),
                     asio::detached);
    }
    schedule_tick();
  });
}

asio::awaitable<void> PresenceNotifier::publish_counts(std::vector<std::string> rooms) {
  const auto counts = co_await engine_.presence_counts(rooms);
  for (std::size_t i = 0; i < rooms.size() && i < counts.size(); ++i) {
    engine_.publish(room_channel(rooms[i]),
                    std::make_shared<const std::string>(encode_presence(presence_frame(rooms[i], counts[i], "count"))));
  }
}

}  // namespace chatorbit::chat
