#pragma once
// The chat service: the WebSocket endpoint (handshake checks, then the frames of
// docs/protocol.md), the room and history routes. Its parts, one file each:
// - chat_handshake.cpp: the handshake checks and coroutine;
// - chat_service.cpp: each session's frames, in order: posting, room moves, history,
//   resume, and what the hub reports (closes, kicks, revocations);
// - chat_rest.cpp: the REST routes;
// - AddressCaps (address_caps.hpp): open sessions per client address;
// - PresenceNotifier (presence_notifier.hpp): presence entries and frames.
// Moderation routes live in moderation_service.hpp.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <string>

#include "auth/authenticator.hpp"
#include "chat/address_caps.hpp"
#include "chat/hub.hpp"
#include "chat/pipeline.hpp"
#include "chat/presence_notifier.hpp"
#include "chat/rooms.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/ids.hpp"
#include "engine/engine.hpp"
#include "net/router.hpp"
#include "store/store_worker.hpp"

namespace chatorbit::chat {

struct ChatDeps {
  const Config& config;
  store::StoreWorker& store;
  engine::Engine& engine;
  Hub& hub;
  MessagePipeline& pipeline;
  RoomCache& rooms;
  const auth::Authenticator& authenticator;
  ObjectIdGenerator& ids;
  const Clock& clock;
  net::EventLoops& loops;
};

/// Where a handshake answers: the viewer's own socket, or its session on a gateway's
/// link (chat/node_links.hpp). The checks are the same for both.
class HandshakePeer {
 public:
  virtual ~HandshakePeer() = default;
  /// Writes a refusal and ends the exchange.
  virtual boost::asio::awaitable<void> refuse(http::Response res) = 0;
  /// Writes the 101; false if the viewer is gone.
  virtual boost::asio::awaitable<bool> accept(const http::Response& res) = 0;
  /// After accept(): hands the connection to `hub` as a new session on `loop`.
  virtual Session& hand_over(Hub& hub, std::size_t loop, Session proto,
                             std::chrono::steady_clock::time_point state_read_at) = 0;
};

class ChatService final : public SessionEvents {
 public:
  explicit ChatService(ChatDeps deps);
  ~ChatService() override;

  void register_routes(http::Router& router);
  /// The HttpServer's upgrade handler for /ws/chat.
  void upgrade(boost::beast::tcp_stream stream, boost::beast::flat_buffer buffer, http::Request req,
               http::Context& ctx);
  /// A handshake that answers through `peer` (a session on a gateway's link): `query`
  /// is the request target's, `client_ip` the viewer's, `loop` the peer's.
  void upgrade(std::unique_ptr<HandshakePeer> peer, http::Request req, std::string query, std::string client_ip,
               std::size_t loop);
  /// Whether it has been told to stop (a node draining): new sessions are refused.
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  /// Starts the presence-count timer.
  void start();
  void stop();

  // SessionEvents
  void on_text(Session& s, std::string text) override;
  void on_binary(Session& s) override;
  void on_closed(Session& s) override;
  void on_presence_due(std::size_t loop, const std::vector<const Session*>& due) override;
  void on_kick(Session& s, const std::string& error_frame) override;
  void on_revoked(Session& s) override;

 private:
  struct UpgradeInfo {
    std::string query;
    std::string client_ip;
    std::size_t loop = 0;
  };
  /// What the synchronous handshake checks established.
  struct Admitted {
    std::optional<auth::Claims> claims;
    std::optional<store::User> user;                        ///< the account as stored, read during the handshake
    std::chrono::steady_clock::time_point state_read_at{};  ///< when the handshake began
    std::string room;
    std::string accept;
    bool v2 = false;
    bool subprotocol = false;
    bool counted = false;  ///< counted against the address's open connections on this node
    std::string conn_id;   ///< the session's, chosen before it exists: it holds the address's shared slot
    bool slot = false;     ///< holds a slot of the address's count across nodes
    std::optional<std::uint64_t> last_seq;
  };
  // chat_handshake.cpp
  /// Headers, origin, token, room and the per-address cap: a refusal, or nullopt.
  std::optional<http::Response> check_handshake(const http::Request& req, const UpgradeInfo& info, Admitted& out);
  /// The per-address cap across nodes (an engine slot per session): a refusal, or nullopt.
  boost::asio::awaitable<std::optional<http::Response>> claim_address_slot(const UpgradeInfo& info, Admitted& a);
  boost::asio::awaitable<void> release_address_slot(std::string ip, std::string conn_id);
  boost::asio::awaitable<void> refresh_address_slots(std::vector<engine::SlotRef> slots);
  boost::asio::awaitable<void> handshake(std::unique_ptr<HandshakePeer> peer, http::Request req, UpgradeInfo info);
  /// What process() does after a frame.
  enum class Next : std::uint8_t {
    go_on,              ///< take the next frame
    after_stored_ones,  ///< hand the frame back: it must wait until this session's earlier messages are stored
  };
  boost::asio::awaitable<void> process(std::shared_ptr<ws::Connection> conn, std::string text);
  boost::asio::awaitable<Next> handle_frame(std::shared_ptr<ws::Connection> conn, const std::string& text);
  /// A message of `conn` left the pipeline: its ack (or error), and the frames that waited for it.
  void on_stored(const std::shared_ptr<ws::Connection>& conn, const std::string& cid, std::exception_ptr error,
                 const PostResult& result);
  /// `said_resend`: the frame's `resend` flag.
  boost::asio::awaitable<void> post_message(std::shared_ptr<ws::Connection> conn, std::string content, std::string cid,
                                            bool said_resend);
  boost::asio::awaitable<bool> switch_room(std::shared_ptr<ws::Connection> conn, std::string raw_room);
  boost::asio::awaitable<void> send_history(std::shared_ptr<ws::Connection> conn, std::optional<std::uint64_t> before,
                                            int limit);
  boost::asio::awaitable<void> resume(std::shared_ptr<ws::Connection> conn, std::uint64_t last_seq);
  /// Completes once this node receives `room`'s live messages (the broker subscription
  /// the join asked for is in force), so that a welcomed member misses nothing posted
  /// after its welcome. Returns at once, with a warning, while the broker is down.
  boost::asio::awaitable<void> room_live(const std::string& room);
  /// The v2 welcome frame, after the handshake and after each room move.
  void welcome(Session& s);

  boost::asio::awaitable<http::Response> create_room(http::Context& ctx);
  boost::asio::awaitable<http::Response> list_rooms(http::Context& ctx);
  boost::asio::awaitable<http::Response> history(http::Context& ctx);
  boost::asio::awaitable<http::Response> presence(http::Context& ctx);

  ChatDeps d_;
  AddressCaps caps_;
  PresenceNotifier presence_;
  std::atomic<std::uint64_t> next_conn_{0};
  std::atomic<bool> stopping_{false};
  std::string node_id_;
};

/// The session behind a connection, or null once it has been closed and removed.
inline Session* alive(const std::shared_ptr<ws::Connection>& c) { return static_cast<Session*>(c->user_data); }

/// The engine key counting a client address's WebSocket sessions across nodes
/// (CHATORBIT_MAX_CONNECTIONS_PER_IP): one slot per session, its conn_id.
std::string address_slot_key(const std::string& ip);

}  // namespace chatorbit::chat
