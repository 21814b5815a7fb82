#pragma once
// What a node does when its broker subscription comes back after being lost (a Redis
// restart, a dropped or stalled subscriber connection): the publications made meanwhile
// never reached it, but every message is stored before it is published, so the store
// has them. For each room the node follows, the messages above the last number it
// released there are read from the store and handed to the hub as if they had just
// arrived: the hub's RoomSequencer puts them in order and drops what it already
// delivered, so viewers see no gap and no duplicate.
//
// A room whose position the node does not know yet (nothing released there since it
// began following it) gets the messages stored since shortly before the broker was last
// seen up (Hub::broker_seen_up_ms()); its sessions still filter what their resume sent.
//
// Called on a store lane, after the subscriptions are in force again (so that nothing
// published after the read can be missed): Engine::set_resubscribed().

#include <cstddef>

#include "chat/hub.hpp"
#include "store/store.hpp"

namespace chatorbit::chat {

/// Messages read per room at most; an outage that missed more leaves the older ones to
/// history (counted in the result's `truncated`).
inline constexpr int kGapFillLimit = 1000;

struct GapFillResult {
  std::size_t rooms = 0;
  std::size_t offered = 0;    ///< messages handed to the hub (it drops the ones it had)
  std::size_t truncated = 0;  ///< rooms that missed more than kGapFillLimit
};

GapFillResult fill_missed_messages(store::Store& store, Hub& hub);

/// The numbers the hub's sequencer is about to give up in a room (Hub::GapFetcher,
/// `missing` ascending): those of them the store holds are offered to the hub. A message
/// stored whose publication never reached this node (its node's publisher connection
/// failed after the commit) is delivered then, in its place. On a store lane. Returns
/// how many were offered; the caller tells the hub the look-up is over.
std::size_t fetch_gap(store::Store& store, Hub& hub, const std::string& room,
                      const std::vector<std::uint64_t>& missing);

}  // namespace chatorbit::chat
