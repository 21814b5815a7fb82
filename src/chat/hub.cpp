// The hub proper: each loop's sessions and its share of each room, a Delivery's way to
// the sessions of one loop (room streams, held frames, kicks, account events) and the
// heartbeat sweep. Decoding is in delivery.cpp, the writing passes in fanout_passes.cpp.
#include "chat/hub.hpp"

#include <boost/asio/post.hpp>

#include <deque>
#include <utility>

#include "chat/fanout_passes.hpp"
#include "core/log.hpp"

namespace chatorbit::chat {

namespace asio = boost::asio;

namespace {

/// How long a loop remembers account events: far longer than a handshake's store read.
constexpr auto kAccountEventMemory = std::chrono::seconds{30};

// A new control block over the same bytes; it keeps the original alive.
ws::Frame rehome(const ws::Frame& f) {
  if (!f) return f;
  return ws::Frame(f.get(), [keep = f](const std::string*) {});
}

}  // namespace

struct Hub::Loop {
  Loop(std::size_t i, asio::io_context& c, std::chrono::milliseconds flush_interval, bool io_uring)
      : index(i), ctx(c), timer(c), passes(c, flush_interval, io_uring) {}
  std::size_t index;
  asio::io_context& ctx;
  std::vector<char> buffer = std::vector<char>(64 * 1024);  ///< shared by every read on this loop
  std::unordered_map<ws::Connection*, std::unique_ptr<Session>> sessions;
  std::unordered_map<std::string, std::shared_ptr<LoopRoom>> rooms;
  /// Connections with a reply queued this turn: written at its end, outside the passes.
  std::vector<std::shared_ptr<ws::Connection>> replies;
  bool replies_posted = false;
  std::uint64_t added = 0;  ///< sessions added so far (spreads their ping clocks)
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> writes{0};  ///< by this loop's connections (ws::Connection::count_writes_in())
  /// Deliveries handed to this loop and not yet delivered, in hand-over order, and
  /// whether a drain_inbox() is posted for them (Hub::post_delivery()).
  std::mutex inbox_mu;
  std::vector<std::shared_ptr<const Delivery>> inbox;
  bool inbox_posted = false;
  std::vector<std::shared_ptr<const Delivery>> draining;  ///< loop thread only: its capacity is kept
  /// Account events of the last kAccountEventMemory, for sessions whose handshake read
  /// the account before they arrived (Hub::add()).
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::shared_ptr<const Delivery>>> account_events;
  asio::steady_timer timer;
  FanoutPasses passes;  ///< how broadcast frames are written (rooms, pings)
};

Hub::Hub(net::EventLoops& loops, engine::Engine& engine, HubLimits limits, const Clock& clock)
    : loops_(loops),
      engine_(engine),
      limits_(limits),
      clock_(clock),
      order_(limits.order_wait),
      order_timer_(loops.loop(0)) {
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    per_loop_.push_back(std::make_unique<Loop>(i, loops_.loop(i), limits_.flush_interval, limits_.io_uring));
    if (const auto& why = per_loop_.back()->passes.io_uring_fallback_reason(); !why.empty() && i == 0) {
      log::warn("io_uring_unavailable", {{"error", why}, {"fallback", "one sendmsg per connection"}});
    }
  }
}

Hub::~Hub() = default;

void Hub::start() {
  engine_.subscribe(kControlChannel);
  for (auto& l : per_loop_) {
    Loop* loop = l.get();
    asio::post(loop->ctx, [this, loop] { schedule_sweep(*loop); });
  }
}

Session& Hub::add(std::size_t loop_index, asio::ip::tcp::socket socket, Session proto, std::string_view leftover,
                  std::chrono::steady_clock::time_point state_read_at) {
  Loop& loop = *per_loop_[loop_index];
  auto conn = std::make_shared<ws::Connection>(std::move(socket), *this, limits_.connection, loop.buffer);
  conn->close_in(loops_.background(loop_index));
  return adopt(loop_index, std::move(conn), std::move(proto), leftover, state_read_at);
}

Session& Hub::add(std::size_t loop_index, std::shared_ptr<ws::Channel> channel, Session proto,
                  std::string_view leftover, std::chrono::steady_clock::time_point state_read_at) {
  Loop& loop = *per_loop_[loop_index];
  auto conn = std::make_shared<ws::Connection>(loops_.loop(loop_index).get_executor(), std::move(channel), *this,
                                               limits_.connection, loop.buffer);
  return adopt(loop_index, std::move(conn), std::move(proto), leftover, state_read_at);
}

Session& Hub::adopt(std::size_t loop_index, std::shared_ptr<ws::Connection> conn, Session proto,
                    std::string_view leftover, std::chrono::steady_clock::time_point state_read_at) {
  Loop& loop = *per_loop_[loop_index];
  conn->count_writes_in(loop.writes);
  auto session = std::make_unique<Session>(std::move(proto));
  session->conn = conn;
  session->loop = loop_index;
  // Each session's ping (and presence refresh) clock starts at its own offset into the
  // interval: thousands of viewers who joined within a second would otherwise all be
  // pinged by the same sweep, one write each, and a message published then would wait
  // behind those writes (chatorbit-bench rooms: p99 217 ms at p50 15 ms).
  const auto now = ws::steady_ms();
  // 7919 is prime: consecutive sessions land far apart in the interval.
  const auto spread = static_cast<std::int64_t>((loop.added++ * 7919) % 1000);
  session->last_ping_ms = now - spread * std::chrono::milliseconds(limits_.ping_interval).count() / 1000;
  session->last_presence_ms = now - spread * std::chrono::milliseconds(limits_.presence_refresh).count() / 1000;
  conn->user_data = session.get();
  Session& ref = *session;
  loop.sessions.emplace(conn.get(), std::move(session));
  sessions_.fetch_add(1, std::memory_order_relaxed);
  conn->start(leftover);
  if (!ref.anonymous()) {
    for (const auto& [at, event] : loop.account_events) {
      if (at >= state_read_at && event->account_user == ref.user_id) apply_account_event(*event, ref);
    }
  }
  return ref;
}

void Hub::join(Session& s, const std::string& room) {
  if (s.room == room) return;
  leave(s);
  Loop& loop = *per_loop_[s.loop];
  auto& r = loop.rooms[room];
  if (!r) r = std::make_shared<LoopRoom>();
  s.room = room;
  s.room_index = r->members.size();
  r->members.push_back(&s);
  if (s.replayed) {
    // Resumed in another room: that replay's floor means nothing here.
    s.resuming = false;
    s.replayed = false;
  }
  if (s.resuming) {
    ++r->resuming;  // live frames are held for it until its resume is sent
  } else {
    follow_room(s);
  }
  node_subscribe(room);
}

void Hub::follow_room(Session& s) {
  Loop& loop = *per_loop_[s.loop];
  const auto it = loop.rooms.find(s.room);
  if (it == loop.rooms.end()) return;
  s.conn->subscribe(it->second->streams[s.version == 1 ? 0 : 1]);
}

void Hub::leave(Session& s) {
  if (s.room.empty()) return;
  Loop& loop = *per_loop_[s.loop];
  const auto it = loop.rooms.find(s.room);
  if (it != loop.rooms.end()) {
    auto& members = it->second->members;
    // Swap-remove: O(1), order of members does not matter.
    if (s.room_index < members.size() && members[s.room_index] == &s) {
      members[s.room_index] = members.back();
      members[s.room_index]->room_index = s.room_index;
      members.pop_back();
    }
    if (s.resuming) --it->second->resuming;
    if (members.empty()) loop.rooms.erase(it);
  }
  // What the room's stream had for it still goes out (with its own frames, in order).
  s.conn->unsubscribe();
  if (s.conn->pending()) loop.passes.list(s.conn);
  node_unsubscribe(s.room);
  s.room.clear();
}

void Hub::node_subscribe(const std::string& room) {
  std::lock_guard lock(subs_mu_);
  if (node_members_[room]++ == 0) {
    {
      std::lock_guard order_lock(order_mu_);
      order_.follow(room);  // before the first publication can arrive
    }
    engine_.subscribe(room_channel(room));
  }
}

void Hub::node_unsubscribe(const std::string& room) {
  std::lock_guard lock(subs_mu_);
  const auto it = node_members_.find(room);
  if (it == node_members_.end()) return;
  if (--it->second == 0) {
    node_members_.erase(it);
    engine_.unsubscribe(room_channel(room));
    std::lock_guard order_lock(order_mu_);
    order_.forget(room);
  }
}

void Hub::release_held(Session& s, std::uint64_t after_seq) {
  if (!s.resuming || s.replayed) return;
  for (auto& [seq, frame] : s.held) {
    if (seq == 0 || seq > after_seq) s.conn->send(frame);
  }
  s.held.clear();
  s.held.shrink_to_fit();
  Loop& loop = *per_loop_[s.loop];
  const auto it = loop.rooms.find(s.room);
  if (it == loop.rooms.end()) {
    s.resuming = false;
    return;
  }
  if (it->second->last_seq >= after_seq) {
    // Everything this loop will still stream lies above the replay.
    s.resuming = false;
    --it->second->resuming;
    follow_room(s);
    return;
  }
  // The replay read messages whose publications are still on their way here; were the
  // session to follow the stream now, it would get them twice. deliver() sends it live
  // frames itself meanwhile, without those, and lets it follow once the stream is past.
  s.replayed = true;
  s.replayed_to = after_seq;
}

void Hub::on_publication(const std::string& channel, std::shared_ptr<const std::string> payload) {
  // Decoded here once per process, not per viewer (delivery.hpp).
  auto decoded = decode_delivery(channel, *payload, clock_.unix_millis());
  if (!decoded.dropped.empty()) return drop(channel, decoded.dropped);
  if (!decoded.delivery) return;  // not a chat channel
  observe(decoded);
  if (decoded.delivery->global) return fan_out(*decoded.delivery);
  order(std::move(*decoded.delivery));
}

void Hub::fan_out(const Delivery& d) {
  for (auto& loop : per_loop_) post_delivery(*loop, d);
}

void Hub::order(Delivery d) {
  std::lock_guard lock(order_mu_);
  if (d.kind == 'M') {
    order_.offer(d.room, d.seq, std::move(d), std::chrono::steady_clock::now(), released_);
  } else {
    order_.offer_unnumbered(d.room, std::move(d), released_);
  }
  release_ordered();
}

void Hub::release_ordered() {
  for (const Delivery& d : released_.ready) fan_out(d);
  if (released_.skipped) {
    sequence_gaps_.fetch_add(released_.skipped, std::memory_order_relaxed);
    log::warn("sequence_gap_skipped", {{"numbers", released_.skipped}});
  }
  if (released_.late) late_publications_.fetch_add(released_.late, std::memory_order_relaxed);
  released_.clear();
  // The timer lives on loop 0 and is touched only there; arming again is needed only
  // for a deadline earlier than the one it waits for.
  const auto at = order_.next_deadline();
  if (!at || (order_armed_for_ && *order_armed_for_ <= *at)) return;
  order_armed_for_ = at;
  asio::post(order_timer_.get_executor(), [this, when = *at] {
    order_timer_.expires_at(when);
    order_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) on_order_timer();
    });
  });
}

void Hub::on_order_timer() {
  std::vector<RoomSequencer<Delivery>::Gap> gaps;
  {
    std::lock_guard lock(order_mu_);
    order_armed_for_.reset();
    const auto now = std::chrono::steady_clock::now();
    if (gap_fetcher_) gaps = order_.fetch_due(now);
    order_.expire(now, released_);
    release_ordered();
  }
  for (auto& g : gaps) gap_fetcher_(g.room, std::move(g.missing));
}

void Hub::gap_fetched(const std::string& room) {
  std::lock_guard lock(order_mu_);
  order_.fetched(room);
  order_.expire(std::chrono::steady_clock::now(), released_);
  release_ordered();
}

void Hub::drop(const std::string& channel, std::string_view why) {
  dropped_publications_.fetch_add(1, std::memory_order_relaxed);
  log::warn("publication_dropped", {{"channel", channel}, {"why", why}});
}

void Hub::observe(const DecodedDelivery& decoded) {
  if (decoded.delivery->kind == 'D' && moderation_observer_) moderation_observer_(decoded.moderation_json);
  if (decoded.account && account_observer_) account_observer_(*decoded.account);
}

void Hub::post_delivery(Loop& loop, const Delivery& d) {
  // Each loop gets the same bytes under its own reference count: the per-viewer
  // increments then stay on one core instead of bouncing a cache line between loops.
  auto local = std::make_shared<Delivery>(d);
  local->v1 = rehome(d.v1);
  local->v2 = d.v2 == d.v1 ? local->v1 : rehome(d.v2);
  // Queued here rather than posted one by one, because the order of posts is not kept:
  // the loops' io_contexts run single-threaded, and asio then runs a post made on a
  // loop's own thread (the order timer lives on loop 0) only after the handler making it
  // returns, behind posts made meanwhile from other threads (the broker's). Seq 392
  // released from the broker's thread overtook 278-391 released by the timer that way.
  bool post = false;
  {
    std::lock_guard lock(loop.inbox_mu);
    loop.inbox.push_back(std::move(local));
    post = !std::exchange(loop.inbox_posted, true);
  }
  if (post) asio::post(loop.ctx, [this, target = &loop] { drain_inbox(*target); });
}

void Hub::drain_inbox(Loop& loop) {
  {
    std::lock_guard lock(loop.inbox_mu);
    loop.draining.swap(loop.inbox);
    loop.inbox_posted = false;
  }
  // What a delivery hands over meanwhile (a kick's presence event, through an engine
  // that delivers on the caller's thread) goes to the next drain, behind these.
  for (const auto& d : loop.draining) {
    if (d->kind == 'U') {
      deliver_account_event(loop, d);
    } else {
      deliver(loop, *d);
    }
  }
  loop.draining.clear();
}

void Hub::deliver_account_event(Loop& loop, const std::shared_ptr<const Delivery>& d) {
  const auto now = std::chrono::steady_clock::now();
  while (!loop.account_events.empty() && now - loop.account_events.front().first > kAccountEventMemory) {
    loop.account_events.pop_front();
  }
  loop.account_events.emplace_back(now, d);
  // Rare (a logout, a password or role change): a walk over the loop's sessions,
  // collected first so that the walk stays clear of whatever the callbacks do.
  std::vector<Session*> mine;
  for (auto& [conn, s] : loop.sessions) {
    if (s->user_id == d->account_user) mine.push_back(s.get());
  }
  for (Session* s : mine) apply_account_event(*d, *s);
}

void Hub::apply_account_event(const Delivery& d, Session& s) {
  if (d.revoke) {
    // A password change ends the sessions of tokens issued before it, not those of a
    // token the user got afterwards (a login in the next moment, with the new password).
    const bool covered = d.revoked_jti.empty() ? s.token_iat < d.revoked_before_s : d.revoked_jti == s.jti;
    if (covered && events_) events_->on_revoked(s);
    return;
  }
  s.role = d.new_role;
  if (s.version == 2 && d.v2) s.conn->send(d.v2);
}

void Hub::deliver(Loop& loop, const Delivery& d) {
  std::uint64_t delivered = 0;
  if (d.global) {
    // Rare (global bans): to every session, each on its own.
    for (auto& [conn, s] : loop.sessions) {
      if (!d.kick_user.empty() && s->user_id == d.kick_user) {
        if (events_) events_->on_kick(*s, d.kick_json);
        continue;
      }
      const ws::Frame& f = s->version == 1 ? d.v1 : d.v2;
      if (!f) continue;
      if (s->resuming && !s->replayed) {
        s->held.emplace_back(d.seq, f);
      } else if (s->conn->queue(f)) {
        loop.passes.list(s->conn);
      }
      ++delivered;
    }
  } else if (const auto it = loop.rooms.find(d.room); it != loop.rooms.end()) {
    const auto room = it->second;     // a kick may empty the room and erase it from the map
    std::vector<Session*> caught_up;  // replayed sessions this message brings to the stream
    if (!d.kick_user.empty() || room->resuming > 0) {
      // Only the members the streams do not serve: the kicked, who are closed first (and
      // so leave the streams), and those whose resume is being sent or was just sent.
      // Index loop: a kick can reorder this vector only via a posted cleanup, never here.
      auto& members = room->members;
      for (std::size_t i = 0; i < members.size(); ++i) {
        Session& s = *members[i];
        const ws::Frame& f = s.version == 1 ? d.v1 : d.v2;
        if (!d.kick_user.empty() && s.user_id == d.kick_user) {
          if (events_) events_->on_kick(s, d.kick_json);
        } else if (!s.resuming || !f) {
          continue;
        } else if (!s.replayed) {
          s.held.emplace_back(d.seq, f);
          ++delivered;
        } else {
          if (d.seq == 0 || d.seq > s.replayed_to) {
            if (s.conn->queue(f)) loop.passes.list(s.conn);
            ++delivered;
          }
          if (d.seq >= s.replayed_to) caught_up.push_back(&s);
        }
      }
    }
    if (d.seq > room->last_seq) room->last_seq = d.seq;
    if (d.v1) delivered += room->streams[0]->push(d.v1);
    if (d.v2) delivered += room->streams[1]->push(d.v2);
    // From here on the stream only carries what is above their replay.
    for (Session* s : caught_up) {
      s->resuming = false;
      s->replayed = false;
      --room->resuming;
      follow_room(*s);
    }
    loop.passes.list(room);
  }
  // Written only by this loop's thread: no shared cache line per delivery.
  loop.delivered.store(loop.delivered.load(std::memory_order_relaxed) + delivered, std::memory_order_relaxed);
}

std::uint64_t Hub::frames_queued() const {
  std::uint64_t total = 0;
  for (const auto& l : per_loop_) total += l->delivered.load(std::memory_order_relaxed);
  return total;
}

std::uint64_t Hub::writes() const {
  std::uint64_t total = 0;
  for (const auto& l : per_loop_) total += l->writes.load(std::memory_order_relaxed);
  return total;
}

void Hub::on_text(ws::Connection& c, std::string text) {
  if (events_ && c.user_data) events_->on_text(*static_cast<Session*>(c.user_data), std::move(text));
}

void Hub::on_binary(ws::Connection& c, std::string) {
  if (events_ && c.user_data) events_->on_binary(*static_cast<Session*>(c.user_data));
}

void Hub::on_closed(ws::Connection& c) {
  auto* s = static_cast<Session*>(c.user_data);
  if (!s) return;
  Loop& loop = *per_loop_[s->loop];
  // Removal is deferred to its own handler: this may run in the middle of a delivery
  // loop over the room's members. It is background work (net/background.hpp), like the
  // socket's close: a crowd that leaves at once must not hold up the rooms still chatting.
  // Until then the session is a closed member, which deliveries and passes skip.
  loops_.background(s->loop).execute([this, &loop, conn = s->conn] {
    const auto it = loop.sessions.find(conn.get());
    if (it == loop.sessions.end()) return;
    if (events_) events_->on_closed(*it->second);
    leave(*it->second);
    conn->user_data = nullptr;
    loop.sessions.erase(it);
    sessions_.fetch_sub(1, std::memory_order_relaxed);
  });
}

void Hub::on_dirty(ws::Connection& c, bool first) {
  // Only replies to one client (acks, errors, pongs, history) come here: broadcasts are
  // queued with Connection::queue() and listed for a pass directly (FanoutPasses::list()).
  auto* s = static_cast<Session*>(c.user_data);
  if (!s) {
    if (first) c.flush();
    return;
  }
  // A reply leaves at the end of this turn of the loop, with whatever that one connection
  // had waiting for its pass; the others keep waiting.
  Loop& loop = *per_loop_[s->loop];
  loop.replies.push_back(s->conn);
  if (loop.replies_posted) return;
  loop.replies_posted = true;
  asio::post(loop.ctx, [&loop] {
    loop.replies_posted = false;
    // By index: a flush never queues a reply, but a second entry for one connection
    // just finds nothing left to write.
    for (std::size_t i = 0; i < loop.replies.size(); ++i) loop.replies[i]->flush();
    loop.replies.clear();
  });
}

void Hub::schedule_sweep(Loop& loop) {
  loop.timer.expires_after(std::chrono::seconds{1});
  loop.timer.async_wait([this, &loop](boost::system::error_code ec) {
    if (ec) return;
    sweep(loop);
    schedule_sweep(loop);
  });
}

std::vector<Hub::FillPoint> Hub::fill_points() {
  std::lock_guard lock(order_mu_);
  std::vector<FillPoint> out;
  for (auto& [room, at] : order_.positions()) out.push_back(FillPoint{room, at});
  return out;
}

void Hub::refresh_all_presence() {
  for (auto& loop : per_loop_) {
    boost::asio::post(loops_.loop(loop->index), [l = loop.get()] {
      for (auto& [conn, s] : l->sessions) s->last_presence_ms = 0;
    });
  }
}

void Hub::sweep(Loop& loop) {
  static const ws::Frame ping = std::make_shared<const std::string>(ws::make_frame(ws::Opcode::ping, {}));
  const auto now = ws::steady_ms();
  if (loop.index == 0 && engine_.broker_health().up) {
    broker_seen_up_ms_.store(clock_.unix_nanos() / 1'000'000, std::memory_order_relaxed);
  }
  const auto ping_ms = std::chrono::milliseconds(limits_.ping_interval).count();
  const auto drop_ms = std::chrono::milliseconds(limits_.idle_drop).count();
  const auto refresh_ms = std::chrono::milliseconds(limits_.presence_refresh).count();
  std::vector<const Session*> due;
  for (auto& [conn, s] : loop.sessions) {
    if (!conn->open()) {
      if (conn->closing_since_ms() != 0 && now - conn->closing_since_ms() > 2000) conn->abort();
      continue;
    }
    if (now - conn->last_activity_ms() > drop_ms) {
      conn->abort();  // silent too long: the peer is gone or stuck
      continue;
    }
    if (now - s->last_ping_ms >= ping_ms) {
      // With the connection's next pass, not at once: a ping written on its own would
      // also take the viewer's waiting frames out of turn, and put it last in the next
      // pass (up to two passes between its writes).
      if (conn->queue(ping)) loop.passes.list(s->conn);
      s->last_ping_ms = now;
    }
    if (!s->room.empty() && now - s->last_presence_ms >= refresh_ms && now - conn->last_activity_ms() < drop_ms) {
      due.push_back(s.get());
      s->last_presence_ms = now;
    }
  }
  if (!due.empty() && events_) events_->on_presence_due(loop.index, due);
}

void Hub::close_all(std::uint16_t code) {
  for (auto& l : per_loop_) {
    Loop* loop = l.get();
    asio::post(loop->ctx, [loop, code] {
      for (auto& [conn, s] : loop->sessions) s->conn->close(code, "server shutting down");
    });
  }
}

void Hub::close_some(std::uint16_t code, std::string reason, std::int64_t count) {
  const auto loops = static_cast<std::int64_t>(per_loop_.size());
  const auto share = (count + loops - 1) / loops;
  for (auto& l : per_loop_) {
    Loop* loop = l.get();
    asio::post(loop->ctx, [loop, code, reason, share] {
      std::int64_t left = share;
      for (auto& [conn, s] : loop->sessions) {
        if (left == 0) break;
        if (!s->conn->open()) continue;
        s->conn->close(code, reason);
        --left;
      }
    });
  }
}

}  // namespace chatorbit::chat
