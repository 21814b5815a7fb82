#pragma once
// What a resumed session is sent first: the stored messages above its last seq. With
// several nodes posting to a room, the history read can come between two of them
// storing: seq 6 is stored and seq 5 (another node's, reserved earlier) is not yet. The
// replay must not skip 5, and 5 cannot follow 6 live (order), so a replay read with
// such a hole is read again once the hole had time to fill (docs/architecture.md, "Order
// across nodes").

#include <chrono>
#include <cstdint>
#include <vector>

#include "store/store.hpp"

namespace chatorbit::chat {

/// Whether `newest_first` (a history read of at most `limit` messages: newest first,
/// deleted ones left out) misses a seq above `after_seq` just below a message younger
/// than `recent` at `now_ns`: a message that may still be on its way. Older holes are
/// deleted messages or numbers given up long ago, and never fill. Below the oldest
/// message read there is no hole to see when the read stopped at its limit.
bool replay_has_recent_hole(const std::vector<store::Message>& newest_first, std::size_t limit, std::uint64_t after_seq,
                            std::int64_t now_ns, std::chrono::nanoseconds recent);

}  // namespace chatorbit::chat
