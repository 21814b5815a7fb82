#pragma once
// The chat-load engine behind fanout, rooms and ingress: the per-thread worker (viewers
// and senders on one ClientLoop) and the state it shares with the main thread.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client_loop.hpp"
#include "scenario_common.hpp"
#include "stats.hpp"

namespace chatorbit::bench::detail {

/// Per room, for the drain: every open viewer of a room must hold every message its
/// senders had acknowledged. Relaxed counters, written by the workers.
struct RoomPub {
  std::atomic<std::uint64_t> acked{0}, viewers_open{0}, unique{0};
};

struct FanoutShared {
  FanoutShared(const Options& opts, bool closed) : o(opts), closed_loop(closed) {}
  const Options& o;
  const bool closed_loop;  ///< ingress: no schedule, only the window holds senders back
  Target target;
  std::vector<std::string> viewer_targets;  // by room
  std::vector<std::string> sender_targets;  // by global sender id
  std::unique_ptr<RoomPub[]> rooms;
  std::uint32_t room_count = 1;
  double per_sender_rate = 0;
  std::uint64_t sender_spacing_ns = 0;  // between consecutive senders' first messages
  std::atomic<int> phase{kConnect};
  std::atomic<std::uint64_t> t0{0};

  std::uint32_t room_of_viewer(std::uint32_t index) const { return index % room_count; }
  std::uint32_t room_of_sender(std::uint32_t gid) const { return gid % room_count; }
};

/// What a worker publishes for the main thread (relaxed; read for progress and to
/// decide when the drain is over).
struct FanoutPub {
  std::atomic<std::uint64_t> viewers_open{0}, viewers_failed{0}, viewers_closed{0};
  std::atomic<std::uint64_t> senders_open{0}, senders_failed{0}, senders_closed{0};
  std::atomic<std::uint64_t> sent{0}, acked{0}, in_flight{0}, errors{0};
  std::atomic<std::uint64_t> deliveries{0};
};

class FanoutWorker final : public ConnHandler {
 public:
  static constexpr std::uint32_t kSenderBit = 1U << 31;
  static constexpr std::size_t kRing = 4096;  // send times by counter; >= the window
  static constexpr std::uint64_t kTimelineSlotNs = 100'000'000;
  static constexpr std::size_t kTimelineSlots = 36'000;  ///< an hour of sending

  struct Viewer {
    std::uint32_t index = 0;  // global
    std::uint32_t room = 0;
    std::uint32_t conn = 0;
    bool opened = false;
    bool ended = false;
    std::uint64_t last_seq = 0;
    SequenceChecker seq;
  };
  struct Sender {
    std::uint32_t gid = 0;
    std::uint32_t room = 0;
    std::uint32_t conn = 0;
    bool opened = false;
    bool ended = false;
    std::uint64_t next = 0;  // last counter sent; counters start at 1
    std::uint64_t in_flight = 0;
    std::uint64_t acked_n = 0;
    std::uint64_t errors = 0;
    std::uint64_t dup_acks = 0;
    std::uint64_t max_behind_ns = 0;
    CounterSet acked;
    std::vector<std::uint64_t> sent_at = std::vector<std::uint64_t>(kRing, 0);
  };

  explicit FanoutWorker(FanoutShared& sh) : sh_(sh), loop_(*this, 64U << 10, sh.o.verify_accept) {
    loop_.set_delayed_ack(sh.o.delayed_ack);
  }

  void add_viewer(std::uint32_t index) {
    Viewer v;
    v.index = index;
    v.room = sh_.room_of_viewer(index);
    viewers.push_back(std::move(v));
  }
  void add_sender(std::uint32_t gid) {
    senders.emplace_back();
    senders.back().gid = gid;
    senders.back().room = sh_.room_of_sender(gid);
  }

  /// The thread's loop: connects its viewers and senders, sends while the phase is
  /// kRun, and returns at kStop.
  void run();

  std::vector<Viewer> viewers;
  std::vector<Sender> senders;
  LatencyHistogram latency;
  LatencyHistogram ack_latency;
  /// The worst send -> viewer latency (µs) of the messages sent in each 100 ms from t0:
  /// when in the run the slow deliveries happened (e.g. during a join storm).
  std::vector<std::uint32_t> worst_us_by_slot;
  std::map<std::string, std::uint64_t> error_codes;
  std::map<std::string, std::uint64_t> ends;
  std::uint64_t deliveries = 0;
  std::uint64_t foreign = 0;  // message frames that were not the bench's
  std::uint64_t seq_gaps = 0;
  std::uint64_t seq_backwards = 0;
  LoopCounters counters;
  FanoutPub pub;

 private:
  void start(std::uint32_t tag);
  void on_open(ClientLoop&, std::uint32_t id, std::uint64_t) override;
  void on_end(ClientLoop&, std::uint32_t id, const ConnEnd& e) override;
  void on_text(ClientLoop&, std::uint32_t id, std::string_view payload, std::uint64_t now) override;
  void on_sender_text(Sender& s, std::string_view payload, std::uint64_t now);
  /// Sends what is due; returns the milliseconds until the next send is due (or 50).
  int tick_senders();
  void send_one(Sender& s);
  void publish();

  FanoutShared& sh_;
  ClientLoop loop_;
  std::vector<std::uint32_t> queue_;
  std::size_t next_queued_ = 0;
  int pending_ = 0;
  std::uint64_t viewers_open_ = 0, viewers_failed_ = 0, viewers_closed_ = 0;
  std::uint64_t senders_open_ = 0, senders_failed_ = 0, senders_closed_ = 0;
  std::uint64_t sent_ = 0;
  std::string frame_;
};

struct FanoutTotals {
  std::uint64_t viewers_open = 0, viewers_failed = 0, viewers_closed = 0;
  std::uint64_t senders_open = 0, senders_failed = 0, senders_closed = 0;
  std::uint64_t sent = 0, acked = 0, in_flight = 0, errors = 0, deliveries = 0;
};

/// The workers' published counters, added up.
FanoutTotals sum(const std::vector<std::unique_ptr<FanoutWorker>>& workers);

/// Deliveries still owed: per room, open viewers x acknowledged messages, minus what
/// those viewers hold.
std::uint64_t missing_deliveries(const FanoutShared& sh);

inline bool all_delivered(const FanoutShared& sh) { return missing_deliveries(sh) == 0; }

}  // namespace chatorbit::bench::detail
