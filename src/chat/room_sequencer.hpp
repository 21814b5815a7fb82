#pragma once
// RoomSequencer: puts one node's incoming message publications back into `seq` order,
// room by room, before they are fanned out (docs/architecture.md, "Order across nodes").
//
// Why it is needed: each node numbers, stores and publishes its own messages in seq
// order, but two nodes posting to one room race to the broker, so node B's seq 6 can
// arrive before node A's seq 5. The sequencer holds 6 until 5 arrives, for at most
// `wait`; then it gives up on 5 (the node that reserved it may have died, or its batch
// failed) and counts the numbers it skipped. A publication that arrives after its
// number was passed is dropped and counted as late: its message is stored (nothing is
// published before it is stored), so it is in the room's history, but delivering it now
// would break the order every viewer relies on.
//
// Other publications on a room's channel (moderation, presence) carry no number. They
// keep their place among the messages as they arrived: one that arrives while messages
// wait is released right after the messages that arrived before it (a deletion never
// overtakes the message it deletes).
//
// A room the node has just started following has no known position: the node cannot
// tell whether the first arrival is the next number or whether one published just
// before is still on its way. Its first arrivals are held for `wait` and then released
// in order, from the lowest. Later, a room's position is the last number released.
// One first arrival needs no wait: seq 1, since no number comes before it (a new room,
// the common case for a stream that just started).
//
// Before giving a gap up, the hub may look for it in the store (fetch_due(), fetched()):
// a message whose publication failed or was lost (its node's publisher connection broke
// after the message was stored) is there, and offered then it fills the gap in order.
// A room being looked up gets at most one more `wait` before its gap is given up.
//
// The sequencer is pure bookkeeping: no clock (the caller passes `now`), no threads,
// no timers. Not thread-safe; the hub calls it under one mutex and arms one timer at
// next_deadline().

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace chatorbit::chat {

template <class Item>
class RoomSequencer {
 public:
  using Clock = std::chrono::steady_clock;

  /// What an offer() or expire() decided.
  struct Released {
    std::vector<Item> ready;    ///< to deliver now, in this order
    std::uint64_t skipped = 0;  ///< numbers given up on after the wait
    std::uint64_t late = 0;     ///< publications dropped: their number was already passed, or seen
    void clear() {
      ready.clear();
      skipped = 0;
      late = 0;
    }
  };

  /// `wait`: how long a publication may wait for the numbers before it. `max_waiting`:
  /// publications held per room at most; past it the oldest gap is given up at once, so
  /// a flood behind a dead sender cannot grow without bound.
  explicit RoomSequencer(Clock::duration wait, std::size_t max_waiting = 16384)
      : wait_(wait), max_waiting_(max_waiting) {}

  /// Starts ordering `room` (the node subscribed to it): its position is unknown until
  /// its first arrivals have waited (see the file comment). Idempotent.
  void follow(const std::string& room) {
    auto [it, fresh] = rooms_.try_emplace(room);
    if (fresh) it->second.name = room;
  }
  /// Stops ordering `room` and drops what waits for it (the node unsubscribed).
  void forget(const std::string& room) {
    if (const auto it = rooms_.find(room); it != rooms_.end()) {
      busy_.erase(&it->second);
      rooms_.erase(it);
    }
  }
  bool following(const std::string& room) const { return rooms_.contains(room); }
  /// Every room followed, with the last number released there if its position is known.
  std::vector<std::pair<std::string, std::optional<std::uint64_t>>> positions() const {
    std::vector<std::pair<std::string, std::optional<std::uint64_t>>> out;
    out.reserve(rooms_.size());
    for (const auto& [room, r] : rooms_) {
      out.emplace_back(room, r.known ? std::optional<std::uint64_t>(r.next - 1) : std::nullopt);
    }
    return out;
  }

  /// A publication with number `seq` arrived for `room`. Appends to `out` what may be
  /// delivered now. A room not followed passes everything straight through (a stray
  /// publication after an unsubscribe: the caller has nobody to give it to anyway).
  /// `item` is moved from only once `room` is no longer needed: `room` may be part of it.
  void offer(const std::string& room, std::uint64_t seq, Item&& item, Clock::time_point now, Released& out) {
    const auto it = rooms_.find(room);
    if (it == rooms_.end()) {
      out.ready.push_back(std::move(item));
      return;
    }
    Room& r = it->second;
    if (r.known && seq == r.next && r.waiting.empty()) {  // the common case: in order, nothing held
      ++r.next;
      out.ready.push_back(std::move(item));
      return;
    }
    if (!r.known && seq == 1) {
      r.known = true;  // nothing comes before 1
      r.next = 1;
    }
    if ((r.known && seq < r.next) || r.waiting.contains(seq)) {
      ++out.late;
      return;
    }
    r.waiting.emplace(seq, std::move(item));
    r.arrivals.emplace_back(now, seq);
    if (r.known) drain(r, out);
    if (r.waiting.size() > max_waiting_) give_up_head(r, out);
    settle(r);
  }

  /// A publication without a number arrived for `room`: released at once unless messages
  /// of the room wait, else right after the ones that arrived before it.
  void offer_unnumbered(const std::string& room, Item&& item, Released& out) {
    const auto it = rooms_.find(room);
    if (it == rooms_.end() || it->second.waiting.empty()) {
      out.ready.push_back(std::move(item));
      return;
    }
    Room& r = it->second;
    r.unnumbered.emplace_back(r.waiting.rbegin()->first, std::move(item));
  }

  /// The numbers missing in front of publications that have waited `wait`: every one
  /// from the position up to the highest held (at most kMaxLookUp of them).
  struct Gap {
    std::string room;
    std::vector<std::uint64_t> missing;  ///< ascending
  };
  static constexpr std::size_t kMaxLookUp = 1000;
  /// The gaps due to be given up by `now` in rooms of known position, each marked as
  /// being looked up: expire() leaves the room alone until fetched() or one more `wait`.
  std::vector<Gap> fetch_due(Clock::time_point now) {
    std::vector<Gap> due;
    for (Room* r : busy_) {
      if (!r->known || r->fetching_since) continue;
      const auto since = oldest_arrival(*r);
      if (!since || *since + wait_ > now) continue;
      Gap gap{r->name, {}};
      std::uint64_t n = r->next;
      for (const auto& [seq, item] : r->waiting) {
        for (; n < seq && gap.missing.size() < kMaxLookUp; ++n) gap.missing.push_back(n);
        n = seq + 1;
      }
      if (gap.missing.empty()) continue;
      r->fetching_since = now;
      due.push_back(std::move(gap));
    }
    return due;
  }
  /// The look-up of `room`'s gap is over (what it found was offered): expire() may give
  /// up what is still missing.
  void fetched(const std::string& room) {
    if (auto it = rooms_.find(room); it != rooms_.end()) it->second.fetching_since.reset();
  }

  /// Gives up the gaps in front of every publication that has waited `wait` by `now`
  /// (which starts rooms whose first arrivals have waited); appends what that releases.
  /// No publication waits longer than `wait`, or twice that while its gap is looked up.
  void expire(Clock::time_point now, Released& out) {
    const std::vector<Room*> busy(busy_.begin(), busy_.end());
    for (Room* r : busy) {
      if (r->fetching_since && *r->fetching_since + wait_ > now) continue;
      r->fetching_since.reset();
      while (const auto since = oldest_arrival(*r)) {
        if (*since + wait_ > now) break;
        give_up_head(*r, out);
      }
      settle(*r);
    }
  }

  /// When expire() next has something to do, if anything waits.
  std::optional<Clock::time_point> next_deadline() {
    std::optional<Clock::time_point> soonest;
    for (Room* r : busy_) {
      auto since = oldest_arrival(*r);
      if (since && r->fetching_since) since = std::max(*since, *r->fetching_since);
      if (since && (!soonest || *since + wait_ < *soonest)) soonest = *since + wait_;
    }
    return soonest;
  }

  /// Publications held, over every room.
  std::size_t waiting() const {
    std::size_t n = 0;
    for (const Room* r : busy_) n += r->waiting.size();
    return n;
  }

 private:
  struct Room {
    std::string name;
    std::optional<Clock::time_point> fetching_since;  ///< its gap is being looked up
    bool known = false;                               ///< false until the first arrivals have waited
    std::uint64_t next = 0;                           ///< the number expected next, when known
    std::map<std::uint64_t, Item> waiting;
    /// Unnumbered publications held, in arrival order, each with the highest number
    /// that waited when it arrived: it is released once the position has passed that.
    std::deque<std::pair<std::uint64_t, Item>> unnumbered;
    /// When each held publication arrived, oldest first; entries whose seq has left
    /// `waiting` are dropped lazily (a number that left never comes back: it is late).
    std::deque<std::pair<Clock::time_point, std::uint64_t>> arrivals;
  };

  /// Keeps `busy_` to the rooms where something waits.
  void settle(Room& r) {
    if (r.waiting.empty()) {
      r.fetching_since.reset();
      busy_.erase(&r);
    } else {
      busy_.insert(&r);
    }
  }

  /// When the publication that has waited longest arrived, if any waits.
  static std::optional<Clock::time_point> oldest_arrival(Room& r) {
    while (!r.arrivals.empty() && !r.waiting.contains(r.arrivals.front().second)) r.arrivals.pop_front();
    if (r.arrivals.empty()) return std::nullopt;
    return r.arrivals.front().first;
  }

  /// Releases what follows the position without a gap, unnumbered publications in
  /// their place.
  static void drain(Room& r, Released& out) {
    while (true) {
      while (!r.unnumbered.empty() && r.unnumbered.front().first < r.next) {
        out.ready.push_back(std::move(r.unnumbered.front().second));
        r.unnumbered.pop_front();
      }
      if (r.waiting.empty() || r.waiting.begin()->first != r.next) break;
      out.ready.push_back(std::move(r.waiting.begin()->second));
      r.waiting.erase(r.waiting.begin());
      ++r.next;
    }
    if (r.waiting.empty()) r.arrivals.clear();
  }

  /// Stops waiting for the numbers before the lowest held one, and releases from it.
  static void give_up_head(Room& r, Released& out) {
    const std::uint64_t lowest = r.waiting.begin()->first;
    if (r.known) out.skipped += lowest - r.next;
    r.known = true;
    r.next = lowest;
    drain(r, out);
  }

  Clock::duration wait_;
  std::size_t max_waiting_;
  std::unordered_map<std::string, Room> rooms_;
  /// The rooms where something waits: what expire() and next_deadline() look at, so that
  /// a node following many rooms pays nothing per publication for the quiet ones.
  /// (Pointers into rooms_ stay valid: it is node-based.)
  std::unordered_set<Room*> busy_;
};

}  // namespace chatorbit::chat
