#include "chat/fanout_passes.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

#include "chat/hub.hpp"

namespace chatorbit::chat {

namespace asio = boost::asio;

void order_pass(std::vector<std::shared_ptr<LoopRoom>>& rooms) {
  if (rooms.size() < 2) return;
  std::stable_sort(rooms.begin(), rooms.end(),
                   [](const auto& a, const auto& b) { return a->members.size() < b->members.size(); });
}

FanoutPasses::FanoutPasses(asio::io_context& ctx, std::chrono::milliseconds flush_interval, bool io_uring)
    : ctx_(ctx), pacer_(flush_interval), flush_timer_(ctx), batch_(io_uring) {}

void FanoutPasses::list(const std::shared_ptr<ws::Connection>& conn) {
  next_.push_back(conn);
  pass_due();
}

void FanoutPasses::list(const std::shared_ptr<LoopRoom>& room) {
  if (room->listed) return;
  room->listed = true;
  next_rooms_.push_back(room);
  pass_due();
}

void FanoutPasses::pass_due() {
  if (flush_posted_ || flush_armed_) return;  // a pass is due
  schedule_pass();
}

void FanoutPasses::schedule_pass() {
  const auto wait = pacer_.wait(std::chrono::steady_clock::now() - pass_started_);
  if (wait == std::chrono::steady_clock::duration::zero()) {
    post_flush();
  } else {
    arm_flush(wait);
  }
}

void FanoutPasses::arm_flush(std::chrono::steady_clock::duration delay) {
  if (flush_armed_) return;
  flush_armed_ = true;
  flush_timer_.expires_after(delay);
  flush_timer_.async_wait([this](boost::system::error_code ec) {
    flush_armed_ = false;
    if (!ec) start_pass();
  });
}

void FanoutPasses::post_flush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  asio::post(ctx_, [this] {
    flush_posted_ = false;
    start_pass();
  });
}

void FanoutPasses::start_pass() {
  // Rooms still being written wait for their cursor to end (it calls pass_due()).
  std::vector<std::shared_ptr<LoopRoom>> taken;
  std::size_t kept = 0;
  for (auto& r : next_rooms_) {
    if (r->writing) {
      next_rooms_[kept++] = std::move(r);
    } else {
      r->listed = false;  // what it gets from now on is for the next pass
      r->writing = true;
      taken.push_back(std::move(r));
    }
  }
  next_rooms_.resize(kept);
  if (taken.empty() && next_.empty()) return;
  const auto now = std::chrono::steady_clock::now();
  if (pass_started_ != std::chrono::steady_clock::time_point{}) pacer_.passed(now - pass_started_, writing_);
  pass_started_ = now;
  writing_ = {};
  // The new rooms take the next turns, smallest first.
  order_pass(taken);
  if (turn_ > cursors_.size()) turn_ = 0;
  std::vector<Cursor> fresh;
  fresh.reserve(taken.size());
  for (auto& r : taken) fresh.push_back({std::move(r), 0});
  cursors_.insert(cursors_.begin() + static_cast<std::ptrdiff_t>(turn_), std::make_move_iterator(fresh.begin()),
                  std::make_move_iterator(fresh.end()));
  if (pass_head_ == pass_.size()) {
    pass_.clear();
    pass_head_ = 0;
  }
  pass_.insert(pass_.end(), std::make_move_iterator(next_.begin()), std::make_move_iterator(next_.end()));
  next_.clear();
  if (slicing_) return;  // the slices under way take the new cursors in turn
  slicing_ = true;
  flush_slice();
}

void FanoutPasses::flush_slice() {
  // A pass over 10,000 viewers is ~100 ms of write calls on one core. Written in one
  // go, it would hold back everything else on the loop for that long: senders' frames,
  // acks, the next publication. In slices, with the loop's other work between them,
  // only the writes wait.
  const auto slice_started = std::chrono::steady_clock::now();
  std::size_t budget = kSlice;
  // Rooms first, so that a ping listed on its own joins its viewer's stream frames in
  // the room's pass instead of taking them out of turn. One cursor's turn lasts until
  // the budget is spent or its room is done; the next slice starts at the next cursor.
  while (budget > 0 && !cursors_.empty()) {
    if (turn_ >= cursors_.size()) turn_ = 0;
    Cursor& cur = cursors_[turn_];
    // By index: a member closed here is removed by a posted handler, never during this
    // loop, and a member moved by a removal between slices waits at most one pass.
    auto& members = cur.room->members;
    while (budget > 0 && cur.next < members.size()) {
      // Each member is two dependent cache misses away (session, then connection).
      if (cur.next + 8 < members.size()) __builtin_prefetch(members[cur.next + 8]);
      if (cur.next + 4 < members.size()) __builtin_prefetch(members[cur.next + 4]->conn.get());
      ws::Connection& c = *members[cur.next++]->conn;
      if (!c.pending()) continue;
      --budget;
      if (!c.batchable()) {
        c.flush();  // behind a gateway's link: its bytes join the link's one write
        continue;
      }
      const std::size_t count = c.gather(batch_.next_iov());
      if (count == 0) {
        c.flush();  // its socket is full: flush() checks how far behind it is
        continue;
      }
      batch_.add(c.native_handle(), count, &c);
      if (batch_.full()) send_batch();
    }
    if (cur.next >= members.size()) {
      // Done. The room, and the streams its members' gathered buffers may point into, are
      // kept until the batch is sent.
      cur.room->writing = false;
      if (cur.room->listed) pass_due();
      finished_.push_back(std::move(cur.room));
      cursors_.erase(cursors_.begin() + static_cast<std::ptrdiff_t>(turn_));
    } else {
      ++turn_;  // the budget is spent: the next slice begins with the next room
    }
  }
  send_batch();  // before anything else may change what the connections gathered
  finished_.clear();
  for (; budget > 0 && pass_head_ < pass_.size(); --budget) {
    const auto conn = std::move(pass_[pass_head_++]);
    conn->flush();
  }
  writing_ += std::chrono::steady_clock::now() - slice_started;
  if (!cursors_.empty() || pass_head_ < pass_.size()) {
    asio::post(ctx_, [this] { flush_slice(); });
    return;
  }
  pass_.clear();
  pass_head_ = 0;
  slicing_ = false;
}

void FanoutPasses::send_batch() {
  // Members are removed only by posted handlers: every connection here is alive.
  batch_.send([](void* tag, long result) { static_cast<ws::Connection*>(tag)->sent(result); });
}

}  // namespace chatorbit::chat
