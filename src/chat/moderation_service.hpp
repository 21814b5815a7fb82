#pragma once
// Moderation routes (moderators and admins only): bans and timeouts per room and
// global, message deletion, purge, clear, slow mode, and the audit log. Every action is
// recorded in the store and published as a `moderation` event on the room's channel
// (global bans on the control channel), so every node applies it to its own sessions.

#include "auth/authenticator.hpp"
#include "chat/rooms.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "engine/engine.hpp"
#include "net/router.hpp"
#include "store/store_worker.hpp"

namespace chatorbit::chat {

struct ModerationDeps {
  store::StoreWorker& store;
  engine::Engine& engine;
  RoomCache& rooms;
  const auth::Authenticator& authenticator;
  ObjectIdGenerator& ids;
  const Clock& clock;
};

class ModerationService {
 public:
  explicit ModerationService(ModerationDeps deps) : d_(deps) {}
  void register_routes(http::Router& router);

  /// Applies a moderation event received from the broker to this node's caches.
  /// Puts every ban in force in `store` into `engine`: bans outlive an engine that loses
  /// them (a restart), since the store has them; refilling one that kept them is
  /// harmless. Blocks until the engine has them all (call at start-up, or on the store's
  /// general lane).
  static void restore_bans(store::Store& store, engine::Engine& engine, const Clock& clock);
  static void apply_to_cache(RoomCache& rooms, std::string_view event_json);

 private:
  struct Actor {
    std::string id;
    std::string role;
  };
  boost::asio::awaitable<Actor> require_moderator(http::Context& ctx);
  /// The room from the path ("" for the global routes); 400 if malformed.
  static std::string scope_of(http::Context& ctx);
  boost::asio::awaitable<void> record(store::ModerationAction action);
  void publish(const std::string& scope, const boost::json::object& event);

  boost::asio::awaitable<http::Response> ban(http::Context& ctx);
  boost::asio::awaitable<http::Response> unban(http::Context& ctx);
  boost::asio::awaitable<http::Response> list_bans(http::Context& ctx);
  boost::asio::awaitable<http::Response> delete_message(http::Context& ctx);
  boost::asio::awaitable<http::Response> slow_mode(http::Context& ctx);
  boost::asio::awaitable<http::Response> clear(http::Context& ctx);
  boost::asio::awaitable<http::Response> log(http::Context& ctx);

  ModerationDeps d_;
};

}  // namespace chatorbit::chat
