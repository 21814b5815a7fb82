#include "app/app.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "auth/shared_revocations.hpp"
#include "chat/account_notifier.hpp"
#include "chat/delivery.hpp"
#include "chat/gap_fill.hpp"
#include "chat/publication.hpp"
#include "chat/wire.hpp"
#include "core/fd_limit.hpp"
#include "core/log.hpp"
#include "core/random.hpp"
#include "core/run_blocking.hpp"
#include "engine/engine_factory.hpp"
#include "net/link.hpp"
#include "net/ws_frame.hpp"

namespace chatorbit {

namespace fs = std::filesystem;
namespace asio = boost::asio;

namespace {

std::string binary_dir() {
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

}  // namespace

App::App(Config config) : App(std::move(config), nullptr) {}

App::App(Config config, std::unique_ptr<engine::Engine> engine)
    : config_(std::move(config)), clock_(SystemClock::instance()), ids_(clock_, OsRandom::instance()) {
  if (const auto level = log::parse_level(config_.log_level)) log::set_level(*level);
  // The gateway answers the services' paths by forwarding them: it runs alone, and has
  // no store (what it checks, tokens, it checks against the engine's shared state).
  const bool gateway = config_.has_role("gateway") && !config_.all_roles();
  if (gateway && config_.roles.find(',') != std::string::npos) {
    throw ConfigError("CHATORBIT_ROLE: the gateway runs alone (CHATORBIT_ROLE=gateway), in front of the others");
  }
  std::optional<gateway::GatewayOptions> gateway_options;
  if (gateway) gateway_options = gateway::GatewayOptions::from(config_);
  // Backends first: a setting that cannot work should fail before anything is created.
  // The engine is shared state for every role: auth and user announce account events on
  // its broker, chat nodes act on them.
  engine_ = engine ? std::move(engine) : engine::make_engine(config_, clock_);
  if (!gateway) store_factory_ = store::make_store_factory(config_);
  if (config_.swagger_ui_dir.empty()) config_.swagger_ui_dir = binary_dir() + "/swagger-ui";

  if (!gateway) {
    std::error_code ec;
    fs::create_directories(config_.data_dir, ec);
    if (ec) throw ConfigError("CHATORBIT_DATA_DIR: cannot create '" + config_.data_dir + "': " + ec.message());
  }

  if (config_.jwt_secret.empty()) {
    if (!config_.all_roles()) {
      throw ConfigError("JWT_SECRET is required when CHATORBIT_ROLE is not 'all' (every service must share it)");
    }
    config_.jwt_secret = load_or_create_secret();
  } else if (config_.jwt_secret.size() < 32) {
    log::warn("jwt_secret_short",
              {{"bytes", config_.jwt_secret.size()}, {"advice", "use at least 32 random bytes (RFC 7518 3.2)"}});
  }
  if (config_.cors_origins.empty()) {
    log::warn("cors_loopback_only",
              {{"allowed", "pages on http(s)://localhost, 127.0.0.1 and [::1], any port, with credentials"},
               {"advice", "set CHATORBIT_CORS_ORIGINS to the front end's exact origins in a deployment"}});
  }
  if (config_.accept_legacy_tokens) {
    // A migration aid, not a mode to run in: the original's tokens name no issuer or
    // audience, and the last of them expires 24 h after the original stopped issuing.
    log::warn("legacy_tokens_accepted",
              {{"advice",
                "tokens of the original Go service are accepted; set CHATORBIT_ACCEPT_LEGACY_TOKENS=false once they "
                "have expired, 24 h after the switch"}});
  }

  revocations_ = std::make_unique<auth::RevocationList>(clock_);
  if (gateway) {
    refill_from_engine();
    engine_->set_resubscribed([this] { asio::post(cpu_, [this] { refill_from_engine(); }); });
  } else {
    // One connection per store lane (StoreWorker), each from the factory.
    store_ = std::make_unique<store::StoreWorker>([factory = store_factory_.get()] { return factory->open(); });
    log::info("store_opened", {{"kind", store_factory_->kind()}, {"location", store_factory_->location()}});
    // Revocations: the store's durable record back into the engine (which may have lost
    // it), then this node's cache from the engine. Again whenever the broker is back: the
    // engine may have come back empty, and this node missed the account events meanwhile.
    auth::refill_revocations(store_->unsafe_store(), *engine_, *revocations_, clock_);
    engine_->set_resubscribed([this] { refill_after_broker_loss(); });
  }
  account_events_ = std::make_unique<chat::AccountNotifier>(*engine_);
  jwt_ = std::make_unique<auth::JwtCodec>(
      auth::JwtConfig{config_.jwt_secret, "chatorbit", "chatorbit", std::chrono::seconds{30}, config_.token_ttl,
                      config_.accept_legacy_tokens},
      clock_, OsRandom::instance());
  authenticator_ = std::make_unique<auth::Authenticator>(*jwt_, *revocations_);
  // Failed logins count across nodes: the engine holds them (auth/login_throttle.hpp).
  pair_throttle_ = std::make_unique<auth::LoginThrottle>(clock_, config_.login_max_failures, config_.login_window,
                                                         std::chrono::seconds{0}, engine_.get(), "login_pair:");
  account_throttle_ = std::make_unique<auth::LoginThrottle>(clock_, config_.login_max_failures, config_.login_window,
                                                            config_.login_max_delay, engine_.get(), "login_account:");
  address_throttle_ = std::make_unique<auth::LoginThrottle>(clock_, config_.login_ip_max_failures, config_.login_window,
                                                            std::chrono::seconds{0}, engine_.get(), "login_address:");

  const auto fds = raise_open_file_limit();
  http::ServerOptions opts;
  const auto fd_cap = default_max_connections(fds.soft, opts.probe_slots);
  if (config_.max_connections == 0) {
    config_.max_connections = fd_cap;
  } else if (config_.max_connections > fd_cap) {
    throw ConfigError("CHATORBIT_MAX_CONNECTIONS=" + std::to_string(config_.max_connections) +
                      " is more than the open-file limit allows (" + std::to_string(fds.soft) +
                      " descriptors: at most " + std::to_string(fd_cap) +
                      "); lower it or raise the hard limit (ulimit -Hn)");
  }
  log::info("connection_limits", {{"open_files_soft", fds.soft},
                                  {"open_files_hard", fds.hard},
                                  {"max_connections", config_.max_connections},
                                  {"max_http_connections_per_ip", config_.max_http_connections_per_ip}});
  loops_ = std::make_unique<net::EventLoops>(config_.threads);
  opts.bind = config_.bind;
  opts.port = config_.port;
  opts.max_body_bytes = config_.max_body_bytes;
  opts.idle_timeout = config_.http_idle_timeout;
  opts.read_timeout = config_.http_read_timeout;
  opts.cors_origins = config_.cors_origins;
  opts.max_connections = config_.max_connections;
  opts.max_connections_per_ip = config_.max_http_connections_per_ip;
  std::string bad_proxy;
  auto proxies = net::AddressSet::parse(config_.trusted_proxies, &bad_proxy);
  if (!proxies) throw ConfigError("CHATORBIT_TRUSTED_PROXIES: '" + bad_proxy + "' is not an address or CIDR");
  opts.trusted_proxies = std::move(*proxies);
  server_ = std::make_unique<http::HttpServer>(opts, *loops_, router_, metrics_);

  // The gateway's readiness is its own: it forwards whether or not Redis is there.
  std::function<engine::BrokerHealth()> broker;
  if (!gateway) broker = [this] { return engine_->broker_health(); };
  ops_ = std::make_unique<ops::OpsService>(
      ops::OpsDeps{store_.get(), metrics_, [this] { return server_->draining(); }, broker, config_.swagger_ui_dir});
  ops_->register_routes(router_);
  if (config_.has_role("auth")) {
    auth_ = std::make_unique<auth::AuthService>(auth::AuthDeps{
        *store_, cpu_, *jwt_, *revocations_, *engine_, *authenticator_, *account_events_, *pair_throttle_,
        *account_throttle_, *address_throttle_, ids_, clock_, config_.admins, auth::Argon2Params{}});
    auth_->register_routes(router_);
  }
  if (config_.has_role("user")) {
    user_ =
        std::make_unique<user::UserService>(user::UserDeps{*store_, *authenticator_, *account_events_, ids_, clock_});
    user_->register_routes(router_);
  }
  if (gateway) {
    build_gateway(std::move(*gateway_options));
  } else if (config_.has_role("chat")) {
    build_chat();
  }
  // Without a chat role nothing else listens on the control channel: the account events
  // (logout, password change) reach this process's token checks here.
  if (!config_.has_role("chat")) follow_account_events();
  metrics_.add_gauge("chatorbit_revoked_tokens", "Revoked tokens held in memory.",
                     [this] { return static_cast<double>(revocations_->size()); });
}

App::~App() { shutdown(); }

void App::refill_after_broker_loss() {
  // A broker that was lost may come back with an engine that lost its state (a Redis
  // restarted empty), and this node missed what was published meanwhile. On the store's
  // general lane: first what viewers missed (the subscriptions are in force again, so
  // nothing published from now on can fall between), then the engine's state.
  const bool chat = config_.has_role("chat");
  log::warn("broker_resubscribed", {{"refill", chat ? "messages, bans, revocations" : "revocations"}});
  if (chat) {
    store_->post([this](store::Store& s) {
      try {
        const auto filled = chat::fill_missed_messages(s, *hub_);
        log::info("gap_filled",
                  {{"rooms", filled.rooms}, {"offered", filled.offered}, {"truncated", filled.truncated}});
      } catch (const std::exception& e) {
        log::error("gap_fill_failed", {{"what", e.what()}});
      }
      hub_->refresh_all_presence();
    });
  }
  refill_engine(1);
}

namespace {
constexpr int kRefillAttempts = 120;
constexpr std::chrono::milliseconds kRefillEvery{500};
}  // namespace

void App::refill_engine(int attempt) {
  // The subscriber may be back before the command connection is (each reconnects on its
  // own), so a refill that finds the engine unavailable is tried again until it is done:
  // a ban must not lapse because Redis came back in pieces.
  const bool chat = config_.has_role("chat");
  store_->post([this, chat, attempt](store::Store& s) {
    try {
      if (chat) chat::ModerationService::restore_bans(s, *engine_, clock_);
      auth::refill_revocations(s, *engine_, *revocations_, clock_);
      if (attempt > 1) log::info("refill_done", {{"attempt", attempt}});
    } catch (const std::exception& e) {
      if (attempt >= kRefillAttempts) {
        log::error("refill_failed", {{"attempts", attempt}, {"what", e.what()}});
        return;
      }
      log::warn("refill_retry", {{"attempt", attempt}, {"what", e.what()}});
      auto timer = std::make_shared<boost::asio::steady_timer>(loops_->loop(0), kRefillEvery);
      timer->async_wait([this, timer, attempt](boost::system::error_code ec) {
        if (!ec) refill_engine(attempt + 1);
      });
    }
  });
}

void App::build_chat() {
  chat::ModerationService::restore_bans(store_->unsafe_store(), *engine_, clock_);
  chat::HubLimits limits;
  limits.connection.max_message_bytes = config_.ws_max_frame_bytes;
  limits.connection.max_queue_bytes = config_.ws_max_queue_bytes;
  limits.ping_interval = config_.ping_interval;
  limits.idle_drop = config_.idle_drop;
  limits.presence_refresh = std::max(std::chrono::seconds{1}, config_.presence_ttl / 3);
  limits.flush_interval = config_.fanout_flush;
  limits.order_wait = config_.order_wait;
  limits.io_uring = config_.io_uring;
  hub_ = std::make_unique<chat::Hub>(*loops_, *engine_, limits, clock_);
  // A gap is looked for in the store before it is given up: a stored message whose
  // publication was lost is delivered in its place (chat/gap_fill.hpp).
  hub_->set_gap_fetcher([this](const std::string& room, std::vector<std::uint64_t> missing) {
    store_->post([this, room, missing = std::move(missing)](store::Store& s) {
      try {
        if (const auto n = chat::fetch_gap(s, *hub_, room, missing); n > 0) {
          log::info("gap_fetched", {{"room", room}, {"missing", missing.size()}, {"found", n}});
        }
      } catch (const std::exception& e) {
        log::warn("gap_fetch_failed", {{"room", room}, {"what", e.what()}});
      }
      hub_->gap_fetched(room);
    });
  });
  engine_->set_subscriber([hub = hub_.get()](const std::string& channel, std::shared_ptr<const std::string> payload) {
    hub->on_publication(channel, std::move(payload));
  });
  rooms_ = std::make_unique<chat::RoomCache>(*store_, clock_);
  // Revocations made on any node (logout, password change) reach this node's list.
  hub_->set_account_observer(
      [revocations = revocations_.get()](const chat::AccountEvent& e) { chat::apply_revocation(e, *revocations); });
  hub_->set_moderation_observer(
      [rooms = rooms_.get()](std::string_view json) { chat::ModerationService::apply_to_cache(*rooms, json); });
  pipeline_ = std::make_unique<chat::MessagePipeline>(
      *store_, *engine_, [this](const store::Message& m, engine::PublishDone done) {
        engine_->publish(chat::room_channel(m.room_id),
                         std::make_shared<const std::string>(chat::encode_message(m.seq, chat::message_json_v1(m))),
                         std::move(done));
      });
  chat_ = std::make_unique<chat::ChatService>(
      chat::ChatDeps{config_, *store_, *engine_, *hub_, *pipeline_, *rooms_, *authenticator_, ids_, clock_, *loops_});
  hub_->set_events(chat_.get());
  chat_->register_routes(router_);
  server_->add_upgrade("/ws/chat", [this](boost::beast::tcp_stream stream, boost::beast::flat_buffer buffer,
                                          http::Request req, http::Context& ctx) {
    chat_->upgrade(std::move(stream), std::move(buffer), std::move(req), ctx);
  });
  // Gateways' links (chat/node_links.hpp), from the same trusted proxies whose
  // X-Forwarded-For this node believes.
  node_links_ = std::make_unique<chat::NodeLinks>(
      *chat_, net::AddressSet::parse(config_.trusted_proxies).value_or(net::AddressSet{}));
  server_->add_upgrade(
      std::string(link::kPath),
      [this](boost::beast::tcp_stream stream, boost::beast::flat_buffer buffer, http::Request req, http::Context& ctx) {
        node_links_->upgrade(std::move(stream), std::move(buffer), std::move(req), ctx);
      },
      std::string(link::kProtocol));
  metrics_.add_gauge("chatorbit_links", "Gateways' links open to this node (each carries many sessions).",
                     [this] { return static_cast<double>(node_links_->links()); });
  moderation_ = std::make_unique<chat::ModerationService>(
      chat::ModerationDeps{*store_, *engine_, *rooms_, *authenticator_, ids_, clock_});
  moderation_->register_routes(router_);
  server_->set_external_connections([hub = hub_.get()] { return hub->sessions(); });
  metrics_.add_gauge("chatorbit_ws_sessions", "Open WebSocket sessions.",
                     [this] { return static_cast<double>(hub_->sessions()); });
  metrics_.add_counter("chatorbit_ws_frames_queued_total", "Frames queued to WebSocket sessions (deliveries).",
                       [this] { return static_cast<double>(hub_->frames_queued()); });
  metrics_.add_counter("chatorbit_ws_writes_total",
                       "Writes to WebSocket sockets that sent data (one sendmsg each, through io_uring or not); "
                       "chatorbit_ws_frames_queued_total over it is the frames per write.",
                       [this] { return static_cast<double>(hub_->writes()); });
  metrics_.add_counter("chatorbit_publications_dropped_total",
                       "Broker publications this node could not decode (malformed, unknown kind, newer version).",
                       [this] { return static_cast<double>(hub_->dropped_publications()); });
  metrics_.add_counter("chatorbit_sequence_gaps_total",
                       "Message numbers this node gave up waiting for after CHATORBIT_ORDER_WAIT_MS (a sender died, a "
                       "batch failed, a store stalled).",
                       [this] { return static_cast<double>(hub_->sequence_gaps()); });
  metrics_.add_counter("chatorbit_publications_late_total",
                       "Messages that reached this node after their number was given up or delivered: not delivered "
                       "live (in history).",
                       [this] { return static_cast<double>(hub_->late_publications()); });
  metrics_.add_counter("chatorbit_messages_stored_total", "Chat messages stored.",
                       [this] { return static_cast<double>(pipeline_->stored()); });
  metrics_.add_counter("chatorbit_publish_failures_total",
                       "Stored chat messages the broker did not take (not delivered live; in history).",
                       [this] { return static_cast<double>(pipeline_->publish_failures()); });
  metrics_.add_counter("chatorbit_messages_unstored_total",
                       "Chat messages whose batch failed and that are not (or not known to be) stored; "
                       "their senders got an error.",
                       [this] { return static_cast<double>(pipeline_->unstored()); });
  metrics_.add_counter("chatorbit_resend_lookups_total",
                       "Chat messages looked up by cid before their batch was numbered (possible resends).",
                       [this] { return static_cast<double>(pipeline_->cid_lookups()); });
  metrics_.add_counter("chatorbit_resends_refused_total",
                       "Resends found only by the store refusing their cid: acknowledged with the original, "
                       "their seq left unused.",
                       [this] { return static_cast<double>(pipeline_->resends_refused()); });
  metrics_.add_counter("chatorbit_message_batches_total", "Store batches written by the message pipeline.",
                       [this] { return static_cast<double>(pipeline_->batches()); });
}

void App::build_gateway(gateway::GatewayOptions options) {
  gateway_ = std::make_unique<gateway::GatewayService>(
      std::move(options), gateway::GatewayDeps{*loops_, *engine_, *authenticator_, metrics_});
  gateway_->register_routes(router_);
  server_->add_upgrade("/ws/chat", [this](boost::beast::tcp_stream stream, boost::beast::flat_buffer buffer,
                                          http::Request req, http::Context& ctx) {
    gateway_->upgrade(std::move(stream), std::move(buffer), std::move(req), ctx);
  });
  // A tunnel holds two descriptors: the client's and the node's.
  server_->set_external_connections([this] { return 2 * gateway_->tunnels(); });
  std::string nodes;
  for (const auto& n : gateway_->chat_nodes().all()) nodes += (nodes.empty() ? "" : ",") + n->endpoint().name();
  log::info("gateway_upstreams", {{"auth", config_.auth_url}, {"user", config_.user_url}, {"chat", nodes}});
}

void App::follow_account_events() {
  engine_->set_subscriber([this](const std::string& channel, std::shared_ptr<const std::string> payload) {
    if (channel != chat::kControlChannel) return;
    const auto decoded = chat::decode_delivery(channel, *payload, clock_.unix_millis());
    if (decoded.account) chat::apply_revocation(*decoded.account, *revocations_);
  });
  engine_->subscribe(chat::kControlChannel);
}

void App::refill_from_engine() {
  // The gateway's copy of the revocations: the services keep the engine's filled from
  // the store (see refill_revocations()); the gateway only reads it.
  try {
    auth::add_to_cache(run_blocking(engine_->token_revocations()), *revocations_);
  } catch (const engine::EngineUnavailable& e) {
    log::warn("revocations_not_read", {{"why", e.what()}, {"retry", "when the broker is back"}});
  }
}

std::string App::load_or_create_secret() {
  const auto path = config_.data_dir + "/jwt_secret";
  const auto read = [&]() -> std::optional<std::string> {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::string secret;
    std::getline(in, secret);
    if (secret.size() >= 32) return secret;
    throw ConfigError(path + " is shorter than 32 bytes; delete it or set JWT_SECRET");
  };
  if (auto existing = read()) return *existing;
  const auto secret = OsRandom::instance().hex(32);
  // Nodes sharing a data directory may start together: the file is put in place with
  // link(), which never replaces one, so the first node's secret is everyone's.
  const auto tmp = path + ".tmp." + std::to_string(::getpid());
  {
    const mode_t old = ::umask(077);
    std::ofstream out(tmp, std::ios::trunc);
    ::umask(old);
    out << secret << "\n";
    if (!out) throw ConfigError("cannot write " + tmp + "; set JWT_SECRET or fix CHATORBIT_DATA_DIR");
  }
  const bool won = ::link(tmp.c_str(), path.c_str()) == 0;
  const int link_errno = errno;
  std::error_code ignored;
  fs::remove(tmp, ignored);
  if (!won) {
    if (link_errno != EEXIST) throw ConfigError("cannot create " + path + "; set JWT_SECRET or fix CHATORBIT_DATA_DIR");
    if (auto theirs = read()) return *theirs;
    throw ConfigError("cannot read " + path + "; set JWT_SECRET or fix CHATORBIT_DATA_DIR");
  }
  log::warn("jwt_secret_generated",
            {{"path", path}, {"advice", "set JWT_SECRET in production; tokens die if this file is lost"}});
  return secret;
}

int App::start() {
  const int port = server_->start();
  if (hub_) {
    hub_->start();
    chat_->start();
  }
  if (gateway_) gateway_->start();
  loops_->start();
  log::info("listening", {{"port", port},
                          {"bind", config_.bind},
                          {"roles", config_.roles},
                          {"loops", static_cast<std::int64_t>(loops_->size())},
                          {"environment", config_.environment}});
  return port;
}

void App::run_until_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  log::info("signal", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  shutdown();
}

void App::drain_sessions() {
  // Viewers are told to reconnect elsewhere (1012, "service restart"), CHATORBIT_DRAIN_RATE
  // a second, so that the nodes that take them over are not hit by all at once. Their
  // messages are safe: what was acknowledged is stored, and a client resumes from its
  // last seq on the node it reaches next.
  constexpr auto kStep = std::chrono::milliseconds{50};
  const auto per_step = std::max<std::int64_t>(1, config_.drain_rate / 20);
  const auto started = std::chrono::steady_clock::now();
  const auto open = hub_->sessions();
  const auto deadline = started + std::chrono::seconds{10} + std::chrono::seconds{open / config_.drain_rate};
  if (open > 0) log::info("draining", {{"sessions", open}, {"per_second", config_.drain_rate}});
  while (hub_->sessions() > 0 && std::chrono::steady_clock::now() < deadline) {
    hub_->close_some(ws::close_code::service_restart, "server restarting, reconnect", per_step);
    std::this_thread::sleep_for(kStep);
  }
  if (open > 0) {
    log::info("drained",
              {{"sessions_left", hub_->sessions()},
               {"ms", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count()}});
  }
}

void App::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  // No new connections from here (the listening sockets close, so /readyz fails and a
  // gateway takes this node out); idle ones are closed at once.
  if (server_) server_->begin_drain();
  if (hub_) {
    chat_->stop();
    drain_sessions();
  }
  if (node_links_) node_links_->close_all();  // their sessions are closed by now, or given up on
  if (gateway_) gateway_->stop();
  // Requests in flight get a bounded time to finish.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while ((metrics_.open_connections() > 0 || (hub_ && hub_->sessions() > 0) || (gateway_ && gateway_->tunnels() > 0) ||
          (node_links_ && node_links_->links() > 0)) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  if (loops_) loops_->stop_and_join();
  cpu_.join();
  if (store_) store_->shutdown();
  // The engine's threads outlive this node's hub and services (the engine is destroyed
  // last): from here none of its callbacks runs, none is left running.
  engine_->set_subscriber({});
  engine_->set_resubscribed({});
  log::info("stopped", {{"open_connections", metrics_.open_connections()}});
}

}  // namespace chatorbit
