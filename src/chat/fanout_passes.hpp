#pragma once
// The hub's fan-out writes on one loop, in passes. A pass takes the rooms whose streams
// grew (and single connections with frames of their own waiting, such as pings) and
// writes their members in slices of kSlice, the loop's other work running between
// slices; what arrives meanwhile waits for the next pass, or joins this one for members
// it has not reached yet. A pass starts `flush_interval` after the last one began (at
// once if that one took longer, or with an interval of 0 at the end of the loop's turn),
// so an idle loop coalesces a viewer's frames into one write per interval and a
// saturated one writes every connection once per pass, round-robin. The writes of a
// slice go to the kernel together (net::SendBatch).
//
// Threading: one per event loop, used only on that loop's thread. Listed rooms and
// connections are held by shared_ptr until their pass is done; their members must
// be removed only by handlers posted to the loop (as the Hub does), never during a pass.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
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
  bool listed = false;         ///< in the loop's next pass
};

class FanoutPasses {
 public:
  /// Connections written per handler of a pass (see flush_slice()).
  static constexpr std::size_t kSlice = 64;

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
  void arm_flush(std::chrono::steady_clock::duration delay);
  void post_flush();
  void start_pass();
  void flush_slice();
  /// Sends what the batch holds and hands each connection its result.
  void send_batch();

  boost::asio::io_context& ctx_;
  std::chrono::milliseconds flush_interval_;
  // Rooms first, member by member, then single connections. `pass_rooms_`/`pass_` are
  // the pass under way, written up to room_head_/member_head_ and pass_head_; rooms and
  // connections with frames queued meanwhile wait in `next_rooms_` and `next_` for the
  // following pass.
  std::vector<std::shared_ptr<LoopRoom>> pass_rooms_;
  std::size_t room_head_ = 0;
  std::size_t member_head_ = 0;
  std::vector<std::shared_ptr<LoopRoom>> next_rooms_;
  std::vector<std::shared_ptr<ws::Connection>> pass_;
  std::size_t pass_head_ = 0;
  std::vector<std::shared_ptr<ws::Connection>> next_;
  bool flushing_ = false;      ///< a pass is under way
  bool flush_posted_ = false;  ///< a pass at the end of this turn is queued
  bool flush_armed_ = false;   ///< a delayed pass (flush_interval) is pending
  std::chrono::steady_clock::time_point pass_started_{};
  boost::asio::steady_timer flush_timer_;
  net::SendBatch batch_;  ///< a slice's writes, handed to the kernel together
};

}  // namespace chatorbit::chat
