#pragma once
// The hub's fan-out writes on one loop, in passes. A pass takes the rooms whose streams
// grew (and single connections with frames of their own waiting, such as pings) and
// writes their members in slices of kSlice, the loop's other work running between
// slices. When the next pass may start follows the load (FlushPacer): on a quiet loop
// at the end of the turn, so a message leaves at once; on a busy one only after a
// spacing that grows with what the passes cost, up to `flush_interval`, so the frames
// that arrive meanwhile gather and a viewer gets several per write. A saturated loop
// writes every connection once per pass, round-robin. The writes of a slice go to the
// kernel together (net::SendBatch).
//
// Rooms do not wait for each other's writing. Each room a pass takes gets a cursor of
// its own, and the slices take turns among the cursors under way: a pass may start while
// an earlier one is still writing a big room, and a 500-viewer room is then written in
// as many slices as it needs, one in two, beside a 10,000-viewer one instead of after it.
// A room whose stream grows while it is being written is taken by the first pass after
// its cursor is done (its members not yet reached get the new frames in this one).
//
// Threading: one per event loop, used only on that loop's thread. Listed rooms and
// connections are held by shared_ptr until their pass is done; their members must
// be removed only by handlers posted to the loop (as the Hub does), never during a pass.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "net/send_batch.hpp"
#include "net/ws_connection.hpp"

namespace chatorbit::chat {

struct Session;

/// A room's share on one loop: its members there, and the frames they all receive.
struct LoopRoom {
  std::vector<Session*> members;
  /// One per protocol version: index version - 1.
  std::array<std::shared_ptr<ws::Stream>, 2> streams{std::make_shared<ws::Stream>(), std::make_shared<ws::Stream>()};
  std::size_t resuming = 0;    ///< members not yet following the streams (their resume is being sent)
  std::uint64_t last_seq = 0;  ///< the highest message seq the streams carried
  bool listed = false;         ///< waiting for the loop's next pass
  bool writing = false;        ///< a pass is writing its members (FanoutPasses' cursor)
};

/// The order in which the rooms a pass takes join the turns: the smallest first (by
/// members on this loop; ties keep the order they were listed in), so that a small room
/// is written out before a big one's next slice.
void order_pass(std::vector<std::shared_ptr<LoopRoom>>& rooms);

/// When the next fan-out pass may start. A write costs nearly the same whether it
/// carries one frame or several (the system call is most of it), so letting frames wait
/// and gather saves CPU; it is worth its latency only when the writing would otherwise
/// crowd out the loop's other work (reading, acks, handshakes). The pacer follows the
/// share of the loop's time the recent passes spent writing:
/// - below kWriteShare, a pass starts at the end of the turn in which it became due: a
///   quiet or moderately busy loop delivers a message at once, bursts included;
/// - at or above it, passes are spaced so that writing takes that share: the next one
///   starts once the passes' writing time divided by the share has gone by since the
///   last one began, and frames gather meanwhile, several per write.
/// The spacing never exceeds `bound` (CHATORBIT_FANOUT_FLUSH_MS): no frame waits longer
/// than that for its pass to begin. A bound of 0 keeps every pass at the end of the turn.
/// A saturated loop (passes longer than the bound) writes pass after pass, and the
/// frames per write grow with the load.
class FlushPacer {
 public:
  using Duration = std::chrono::steady_clock::duration;
  /// Writing may take kWriteShareNum / kWriteShareDen of the loop (4/5) before frames
  /// are held back.
  static constexpr std::int64_t kWriteShareNum = 4;
  static constexpr std::int64_t kWriteShareDen = 5;

  explicit FlushPacer(Duration bound) : bound_(bound) {}

  /// A pass began, `gap` after the one before it; the slices spent `writing` between the
  /// two (not counting the loop's other work between them).
  void passed(Duration gap, Duration writing) {
    // Each pass weighs a quarter: the share follows a change of load within a few
    // passes, and one pass the scheduler stretched does not decide alone. A gap counts
    // at most a second, so a long quiet spell is not remembered as spare time for long.
    gap = std::min<Duration>(gap, std::chrono::seconds{1});
    if (gaps_ == Duration::zero()) {  // the first pass
      writing_ = writing;
      gaps_ = gap;
      return;
    }
    writing_ = (writing_ * 3 + writing) / 4;
    gaps_ = (gaps_ * 3 + gap) / 4;
  }
  /// The share of the loop's time the recent passes spent writing is at least kWriteShare.
  bool busy() const {
    return writing_.count() > 0 && writing_.count() * kWriteShareDen >= gaps_.count() * kWriteShareNum;
  }
  /// The least time between the starts of two passes now.
  Duration spacing() const {
    if (!busy()) return Duration::zero();
    return std::min(bound_, writing_ * kWriteShareDen / kWriteShareNum);
  }
  /// How long a pass that is due waits, `since` the last one began.
  Duration wait(Duration since) const {
    const Duration s = spacing();
    return since >= s ? Duration::zero() : s - since;
  }

 private:
  Duration bound_;
  Duration writing_{};  ///< smoothed: what a pass spends writing
  Duration gaps_{};     ///< smoothed: the time from one pass's start to the next's
};

class FanoutPasses {
 public:
  /// Connections written per handler of a pass (see flush_slice()).
  static constexpr std::size_t kSlice = 64;

  /// `flush_interval`: the most a pass waits for frames to gather (FlushPacer).
  /// `io_uring`: hand each slice's writes to the kernel in one submission, if it allows.
  FanoutPasses(boost::asio::io_context& ctx, std::chrono::milliseconds flush_interval, bool io_uring);
  FanoutPasses(const FanoutPasses&) = delete;
  FanoutPasses& operator=(const FanoutPasses&) = delete;

  /// Puts a connection with frames of its own queued (a ping, or what a member leaving a
  /// room still had from its stream) on the next pass.
  void list(const std::shared_ptr<ws::Connection>& conn);
  /// Puts a room whose streams grew on the next pass (once, however often it grows).
  void list(const std::shared_ptr<LoopRoom>& room);

  /// Why writes are not handed to the kernel through io_uring; empty if they are, or if
  /// it was not asked for.
  const std::string& io_uring_fallback_reason() const { return batch_.fallback_reason(); }

 private:
  void pass_due();
  /// Starts the next pass at the end of this turn, or arms the timer for it.
  void schedule_pass();
  void arm_flush(std::chrono::steady_clock::duration delay);
  void post_flush();
  void start_pass();
  void flush_slice();
  /// Sends what the batch holds and hands each connection its result.
  void send_batch();

  /// A room being written: up to which member.
  struct Cursor {
    std::shared_ptr<LoopRoom> room;
    std::size_t next = 0;
  };

  boost::asio::io_context& ctx_;
  FlushPacer pacer_;
  // The rooms being written (`cursors_`, taking turns from `turn_`), then single
  // connections (`pass_`, written up to `pass_head_`). Rooms and connections listed
  // meanwhile wait in `next_rooms_` and `next_` for the following pass; a room still
  // being written stays there until its cursor is done.
  std::vector<Cursor> cursors_;
  std::size_t turn_ = 0;
  /// Rooms whose cursor ended in the slice under way: kept until its writes are sent (the
  /// connections' gathered buffers may point into their streams).
  std::vector<std::shared_ptr<LoopRoom>> finished_;
  std::vector<std::shared_ptr<LoopRoom>> next_rooms_;
  std::vector<std::shared_ptr<ws::Connection>> pass_;
  std::size_t pass_head_ = 0;
  std::vector<std::shared_ptr<ws::Connection>> next_;
  bool slicing_ = false;                                  ///< a slice is running or queued
  bool flush_posted_ = false;                             ///< a pass at the end of this turn is queued
  bool flush_armed_ = false;                              ///< a delayed pass (flush_interval) is pending
  std::chrono::steady_clock::time_point pass_started_{};  ///< of the last pass
  std::chrono::steady_clock::duration writing_{};         ///< time in slices since the last pass began
  boost::asio::steady_timer flush_timer_;
  net::SendBatch batch_;  ///< a slice's writes, handed to the kernel together
};

}  // namespace chatorbit::chat
