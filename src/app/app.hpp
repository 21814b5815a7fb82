#pragma once
// Wiring: builds every object a configuration asks for, in dependency order, and tears
// them down in reverse. Decisions about behaviour live in the objects, not here.

#include <boost/asio/thread_pool.hpp>

#include <memory>

#include "auth/account_events.hpp"
#include "auth/auth_service.hpp"
#include "auth/authenticator.hpp"
#include "auth/jwt.hpp"
#include "auth/login_throttle.hpp"
#include "auth/revocations.hpp"
#include "chat/chat_service.hpp"
#include "chat/hub.hpp"
#include "chat/moderation_service.hpp"
#include "chat/node_links.hpp"
#include "chat/pipeline.hpp"
#include "chat/rooms.hpp"
#include "core/config.hpp"
#include "core/ids.hpp"
#include "engine/engine.hpp"
#include "gateway/gateway.hpp"
#include "net/event_loops.hpp"
#include "net/http_server.hpp"
#include "net/metrics.hpp"
#include "net/router.hpp"
#include "ops/ops_service.hpp"
#include "store/store_factory.hpp"
#include "store/store_worker.hpp"
#include "user/user_service.hpp"

namespace chatorbit {

class App {
 public:
  /// Validates `config` and builds everything; throws ConfigError (bad settings) or
  /// store::StoreError (database cannot be opened) with a message saying what to fix.
  explicit App(Config config);
  /// The same, with `engine` in place of the one the configuration selects: a test seam,
  /// so that several Apps in one process can share one backend (engine/memory/memory_nodes.hpp).
  /// `engine` must take its time from the system clock, as App does; null = as App(Config).
  App(Config config, std::unique_ptr<engine::Engine> engine);
  ~App();

  /// Binds the port and starts the event loops; returns the bound port.
  int start();
  /// Blocks until SIGINT or SIGTERM, then shuts down gracefully.
  void run_until_signal();
  /// Stops accepting, waits (bounded) for requests in flight, closes the store.
  void shutdown();

  const http::Router& router() const { return router_; }

 private:
  std::string load_or_create_secret();
  void build_chat();
  void build_gateway(gateway::GatewayOptions options);
  /// Applies the account events on the control channel to this process's revocations
  /// (a process without the chat role, whose hub would otherwise do it).
  void follow_account_events();
  /// The gateway's revocations from the engine (it has no store).
  void refill_from_engine();
  /// Closes the hub's sessions with 1012 at CHATORBIT_DRAIN_RATE, within a bound.
  void drain_sessions();
  /// Run when the broker is back after a loss (Engine::set_resubscribed).
  void refill_after_broker_loss();
  /// Puts the store's bans and revocations back into the engine; tried again every
  /// 500 ms while the engine is unavailable (attempt counts from 1).
  void refill_engine(int attempt);

  Config config_;
  const Clock& clock_;
  ObjectIdGenerator ids_;
  http::Metrics metrics_;
  http::Router router_;
  std::unique_ptr<store::StoreFactory> store_factory_;  ///< outlives the connections it opened
  std::unique_ptr<store::StoreWorker> store_;
  boost::asio::thread_pool cpu_{2};
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<auth::AccountEvents> account_events_;
  std::unique_ptr<auth::JwtCodec> jwt_;
  std::unique_ptr<auth::RevocationList> revocations_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  std::unique_ptr<auth::LoginThrottle> pair_throttle_;
  std::unique_ptr<auth::LoginThrottle> account_throttle_;
  std::unique_ptr<auth::LoginThrottle> address_throttle_;
  std::unique_ptr<auth::AuthService> auth_;
  std::unique_ptr<user::UserService> user_;
  std::unique_ptr<ops::OpsService> ops_;
  std::unique_ptr<net::EventLoops> loops_;
  std::unique_ptr<http::HttpServer> server_;
  std::unique_ptr<chat::Hub> hub_;
  std::unique_ptr<chat::MessagePipeline> pipeline_;
  std::unique_ptr<chat::RoomCache> rooms_;
  std::unique_ptr<chat::ChatService> chat_;
  std::unique_ptr<chat::NodeLinks> node_links_;
  std::unique_ptr<chat::ModerationService> moderation_;
  std::unique_ptr<gateway::GatewayService> gateway_;
  bool stopped_ = false;
};

}  // namespace chatorbit
