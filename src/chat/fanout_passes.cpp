#include "chat/fanout_passes.hpp"

#include <boost/asio/post.hpp>

#include "chat/hub.hpp"

namespace chatorbit::chat {

namespace asio = boost::asio;

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
  if (flushing_ || flush_posted_ || flush_armed_) return;  // a pass is due
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
  if (flushing_ || (next_.empty() && next_rooms_.empty())) return;
  flushing_ = true;
  const auto now = std::chrono::steady_clock::now();
  pass_gap_ = now - pass_started_;
  pass_started_ = now;
  pass_rooms_.swap(next_rooms_);
  for (auto& r : pass_rooms_) r->listed = false;  // what they get from now on is for the next pass
  room_head_ = 0;
  member_head_ = 0;
  pass_.swap(next_);
  pass_head_ = 0;
  pass_writing_ = {};
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
  // the room's pass instead of taking them out of turn.
  while (budget > 0 && room_head_ < pass_rooms_.size()) {
    // By index: a member closed here is removed by a posted handler, never during this
    // loop, and a member moved by a removal between slices waits at most one pass.
    auto& members = pass_rooms_[room_head_]->members;
    while (budget > 0 && member_head_ < members.size()) {
      // Each member is two dependent cache misses away (session, then connection).
      if (member_head_ + 8 < members.size()) __builtin_prefetch(members[member_head_ + 8]);
      if (member_head_ + 4 < members.size()) __builtin_prefetch(members[member_head_ + 4]->conn.get());
      ws::Connection& c = *members[member_head_++]->conn;
      if (!c.pending()) continue;
      --budget;
      const std::size_t count = c.gather(batch_.next_iov());
      if (count == 0) {
        c.flush();  // its socket is full: flush() checks how far behind it is
        continue;
      }
      batch_.add(c.native_handle(), count, &c);
      if (batch_.full()) send_batch();
    }
    if (member_head_ >= members.size()) {
      ++room_head_;
      member_head_ = 0;
    }
  }
  send_batch();  // before anything else may change what the connections gathered
  for (; budget > 0 && pass_head_ < pass_.size(); --budget) {
    const auto conn = std::move(pass_[pass_head_++]);
    conn->flush();
  }
  pass_writing_ += std::chrono::steady_clock::now() - slice_started;
  if (room_head_ < pass_rooms_.size() || pass_head_ < pass_.size()) {
    asio::post(ctx_, [this] { flush_slice(); });
    return;
  }
  pass_rooms_.clear();
  pass_.clear();
  flushing_ = false;
  pacer_.passed(pass_gap_, pass_writing_);
  if (!next_.empty() || !next_rooms_.empty()) schedule_pass();
}

void FanoutPasses::send_batch() {
  // Members are removed only by posted handlers: every connection here is alive.
  batch_.send([](void* tag, long result) { static_cast<ws::Connection*>(tag)->sent(result); });
}

}  // namespace chatorbit::chat
