#pragma once
// The fan-out hub. Each event loop owns its WebSocket sessions and its share of each
// room; a publication is turned into frames once per process (one shared buffer per
// protocol version: decode_delivery(), delivery.hpp) and crosses to each loop once,
// where it is appended to the room's ws::Stream for that version: one append per loop,
// not one per member. Members write what waits for them in passes over the room
// (FanoutPasses, fanout_passes.hpp).
//
// Threading: on_publication() may be called from any thread. Everything else runs on
// the loop that owns the session it touches (the `loop` argument or session.loop).

#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/delivery.hpp"
#include "chat/publication.hpp"
#include "chat/room_sequencer.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "engine/engine.hpp"
#include "net/event_loops.hpp"
#include "net/ws_connection.hpp"

namespace chatorbit::chat {

/// One WebSocket client of the chat service.
struct Session {
  std::shared_ptr<ws::Connection> conn;
  std::size_t loop = 0;
  std::string conn_id;
  std::string user_id;  ///< empty: anonymous viewer
  std::string username;
  std::string role;            ///< from the store at the handshake, then kept current by account events
  std::string jti;             ///< of the token the session was opened with (logout closes it)
  std::int64_t token_iat = 0;  ///< that token's issue time (a password change closes older ones)
  std::string client_ip;
  std::string room;  ///< empty until joined
  int version = 1;
  std::size_t room_index = 0;     ///< position in the loop's member list of `room`
  bool busy = false;              ///< frames go to the inbox: one is being processed, or the session is paused
  bool paused = false;            ///< waiting for stored messages before the next frame (see ChatService)
  bool barrier = false;           ///< paused until every message in the pipeline is stored
  std::uint32_t in_pipeline = 0;  ///< messages of this session accepted but not yet stored
  /// The latest cids it posted (a ring): what tells whether a post may be a resend
  /// (chat/resend_window.hpp, MessagePipeline::enqueue()).
  std::vector<std::string> recent_cids;
  std::size_t recent_next = 0;  ///< the ring's oldest entry, once it is full
  bool resuming = false;        ///< not following the room's stream: its resume is being sent, or just was
  /// The resume is sent, up to `replayed_to`: live frames go to it one by one, those at
  /// or below that number dropped (the replay had them), until the room's stream is past
  /// it (Hub::release_held()).
  bool replayed = false;
  std::uint64_t replayed_to = 0;
  std::vector<std::string> inbox;
  std::vector<std::pair<std::uint64_t, ws::Frame>> held;
  std::int64_t last_ping_ms = 0;
  std::int64_t last_presence_ms = 0;

  bool anonymous() const { return user_id.empty(); }
  bool moderator() const { return role == "moderator" || role == "admin"; }
  engine::PresenceEntry presence() const { return {room, conn_id, user_id}; }
};

/// What the chat service does with sessions; called on the session's loop.
class SessionEvents {
 public:
  virtual ~SessionEvents() = default;
  virtual void on_text(Session& s, std::string text) = 0;
  virtual void on_binary(Session& s) = 0;
  /// The session is closing; it is still a member of its room.
  virtual void on_closed(Session& s) = 0;
  /// Sessions whose presence (and per-address slot) is due for a refresh, one call per
  /// loop per sweep. The pointers are valid during the call only.
  virtual void on_presence_due(std::size_t loop, const std::vector<const Session*>& due) = 0;
  /// A moderation event for `user_id` (ban/timeout) reached a session of that user.
  virtual void on_kick(Session& s, const std::string& reason_json) = 0;
  /// The token the session was opened with was revoked (logout, password change).
  virtual void on_revoked(Session& s) = 0;
};

struct HubLimits {
  ws::ConnectionLimits connection;
  std::chrono::seconds ping_interval{10};
  std::chrono::seconds idle_drop{25};
  std::chrono::seconds presence_refresh{10};
  /// The most fan-out frames wait so that several leave in one write, on a busy loop (a
  /// quiet one writes at once; 0: always at the end of the loop turn). See FlushPacer.
  /// Frames sent directly to one client are not delayed.
  std::chrono::milliseconds flush_interval{0};
  /// Fan-out passes hand their writes to the kernel in batches through io_uring.
  bool io_uring = true;
  /// How long a room's message may wait for the numbers before it (room_sequencer.hpp).
  std::chrono::milliseconds order_wait{300};
};

class Hub final : public ws::ConnectionHandler {
 public:
  /// `clock` dates the bans that publications announce (their retry_after).
  Hub(net::EventLoops& loops, engine::Engine& engine, HubLimits limits, const Clock& clock = SystemClock::instance());
  ~Hub() override;

  void set_events(SessionEvents* events) { events_ = events; }
  /// Sees every moderation event this node receives (e.g. to update caches).
  void set_moderation_observer(std::function<void(std::string_view json)> f) { moderation_observer_ = std::move(f); }
  /// Sees every account event this node receives, once per node (e.g. revocations for
  /// the node's RevocationList). Call before start().
  void set_account_observer(std::function<void(const AccountEvent&)> f) { account_observer_ = std::move(f); }
  /// Starts the per-loop heartbeat sweeps.
  void start();

  /// Takes over an upgraded socket on `loop`; the session is not yet in a room.
  /// `state_read_at`: when the handshake began (before it verified the token and read the
  /// account); account events this loop received since then are applied to the new
  /// session, in order, so that a change made meanwhile is not missed.
  Session& add(std::size_t loop, boost::asio::ip::tcp::socket socket, Session proto, std::string_view leftover,
               std::chrono::steady_clock::time_point state_read_at = {});
  /// The same for a session carried by a gateway's link (ws::Channel); `loop` is the
  /// link's.
  Session& add(std::size_t loop, std::shared_ptr<ws::Channel> channel, Session proto, std::string_view leftover,
               std::chrono::steady_clock::time_point state_read_at = {});
  /// Makes the session a member of `room` (leaving its current one).
  void join(Session& s, const std::string& room);
  /// Removes the session from its room.
  void leave(Session& s);
  /// The resume (stored messages up to `after_seq`) has been sent: sends the live frames
  /// held meanwhile that lie above it. The session follows the room's stream at once if
  /// the stream is past `after_seq`; if not (the replay read messages whose publications
  /// have not reached this node yet), it gets live frames one by one, without those the
  /// replay had, until a live message reaches `after_seq`.
  void release_held(Session& s, std::uint64_t after_seq);

  /// The broker's subscriber: decodes once (decode_delivery()); a room's messages then
  /// pass through the node's RoomSequencer, which restores their seq order across nodes
  /// (docs/architecture.md, "Order across nodes"); each Delivery is posted to every loop.
  void on_publication(const std::string& channel, std::shared_ptr<const std::string> payload);

  /// Where a room this node follows stands: the last message number it released there,
  /// if it knows it (see RoomSequencer). For filling what a lost subscription missed
  /// (gap_fill.hpp). Thread-safe.
  struct FillPoint {
    std::string room;
    std::optional<std::uint64_t> after_seq;
  };
  std::vector<FillPoint> fill_points();
  /// When the broker was last seen up (Unix ms, sampled once a second on loop 0; 0 if
  /// never). Thread-safe.
  std::int64_t broker_seen_up_ms() const { return broker_seen_up_ms_.load(std::memory_order_relaxed); }
  /// Every session's presence is refreshed at its loop's next sweep (the engine may have
  /// come back empty). Thread-safe.
  void refresh_all_presence();

  /// Looks for `room`'s messages numbered `missing` (ascending) in the store, offers what
  /// it finds through on_publication(), then calls gap_fetched(room). Any thread; must
  /// not block the caller (post the read).
  using GapFetcher = std::function<void(const std::string& room, std::vector<std::uint64_t> missing)>;
  /// Gaps are looked up in the store before they are given up (RoomSequencer). Call
  /// before start().
  void set_gap_fetcher(GapFetcher f) { gap_fetcher_ = std::move(f); }
  /// The look-up of `room`'s gap is over. Thread-safe.
  void gap_fetched(const std::string& room);

  /// Closes every session with `code` (shutdown: 1001). Thread-safe.
  void close_all(std::uint16_t code);
  /// Starts closing at most `count` more open sessions (spread over the loops) with
  /// `code`; those already closing are not counted. Thread-safe; returns at once.
  void close_some(std::uint16_t code, std::string reason, std::int64_t count);
  std::int64_t sessions() const { return sessions_.load(std::memory_order_relaxed); }
  /// Frames handed to sessions so far (deliveries), summed over the loops.
  std::uint64_t frames_queued() const;
  /// Writes to sessions' sockets that sent data, summed over the loops: frames_queued()
  /// over it is how many frames a write carries.
  std::uint64_t writes() const;
  /// Publications that could not be decoded (malformed, unknown kind, newer version).
  std::uint64_t dropped_publications() const { return dropped_publications_.load(std::memory_order_relaxed); }
  /// Message numbers given up after the order wait (a sender died, a batch failed).
  std::uint64_t sequence_gaps() const { return sequence_gaps_.load(std::memory_order_relaxed); }
  /// Messages that arrived after their number had been given up or delivered: not
  /// delivered live (they are in history).
  std::uint64_t late_publications() const { return late_publications_.load(std::memory_order_relaxed); }
  /// Local members of `room` on every loop; for tests of the hub itself. Loop-unsafe.
  boost::asio::io_context& loop_context(std::size_t loop) { return loops_.loop(loop); }

  // ws::ConnectionHandler
  void on_text(ws::Connection& c, std::string text) override;
  void on_binary(ws::Connection& c, std::string data) override;
  void on_closed(ws::Connection& c) override;
  void on_dirty(ws::Connection& c, bool first) override;

 private:
  struct Loop;
  /// What both add()s do once the connection exists.
  Session& adopt(std::size_t loop, std::shared_ptr<ws::Connection> conn, Session proto, std::string_view leftover,
                 std::chrono::steady_clock::time_point state_read_at);
  /// Counts and logs a publication decode_delivery() refused.
  void drop(const std::string& channel, std::string_view why);
  /// Hands a decoded publication to this node's observers (moderation, account events).
  void observe(const DecodedDelivery& decoded);
  /// Posts `d` to every loop, which delivers it to its sessions there.
  void fan_out(const Delivery& d);
  /// Hands `d` to `loop`: deliveries reach a loop in the order handed over, whatever
  /// thread each comes from.
  void post_delivery(Loop& loop, const Delivery& d);
  void drain_inbox(Loop& loop);
  /// A room's publication, through the sequencer; posts what it releases.
  void order(Delivery d);
  /// Posts what the sequencer released and counts what it gave up; arms its timer if
  /// something waits. Called with order_mu_ held.
  void release_ordered();
  void on_order_timer();
  void deliver(Loop& loop, const Delivery& d);
  /// An account event ('U'): role changes and revocations for one user's sessions.
  void deliver_account_event(Loop& loop, const std::shared_ptr<const Delivery>& d);
  void apply_account_event(const Delivery& d, Session& s);
  /// Once a second: pings, idle drops, presence refreshes due (SessionEvents::on_presence_due()).
  void sweep(Loop& loop);
  /// The session starts receiving its room's stream (after a resume: once it is sent).
  void follow_room(Session& s);
  void schedule_sweep(Loop& loop);
  void node_subscribe(const std::string& room);
  void node_unsubscribe(const std::string& room);

  net::EventLoops& loops_;
  engine::Engine& engine_;
  HubLimits limits_;
  const Clock& clock_;
  SessionEvents* events_ = nullptr;
  std::function<void(std::string_view)> moderation_observer_;
  std::function<void(const AccountEvent&)> account_observer_;
  std::vector<std::unique_ptr<Loop>> per_loop_;
  std::mutex subs_mu_;
  std::unordered_map<std::string, int> node_members_;  ///< room -> sessions on this node
  std::atomic<std::int64_t> sessions_{0};
  std::atomic<std::uint64_t> dropped_publications_{0};
  // Ordering across nodes: the sequencer, what it last released, and the timer that
  // gives up gaps (on loop 0). Releases are handed to the loops under order_mu_, so
  // that the broker's thread and the timer hand them over in the order released
  // (post_delivery() keeps that order on each loop).
  std::mutex order_mu_;
  RoomSequencer<Delivery> order_;
  RoomSequencer<Delivery>::Released released_;
  std::optional<std::chrono::steady_clock::time_point> order_armed_for_;
  boost::asio::steady_timer order_timer_;
  std::atomic<std::uint64_t> sequence_gaps_{0};
  std::atomic<std::uint64_t> late_publications_{0};
  std::atomic<std::int64_t> broker_seen_up_ms_{0};
  GapFetcher gap_fetcher_;
};

}  // namespace chatorbit::chat
