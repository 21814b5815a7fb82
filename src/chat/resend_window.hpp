#pragma once
// Which posts may be resends: the ones the message pipeline looks up by cid before
// numbering them, on a store that otherwise finds resends by refusing them on insert
// (MessagePipeline::enqueue(), Store::refuses_duplicate_cids()). A lookup before
// numbering leaves no seq unused; a refusal on insert leaves one.
//
// A client resends what it has not seen acknowledged: on the same connection (after an
// error, or on a timer while the ack is on its way), or after a reconnect, on a new one.
// So a post may be a resend if its cid is among the connection's kRecentCids latest,
// or if the client says so (`"resend": true`, docs/protocol.md), which only it can know
// on a new connection. Every other post is stored without a lookup: a resend the
// client did not mark is still never stored twice, but leaves a gap in the room's seq.

#include <algorithm>
#include <cstddef>
#include <string>

#include "chat/hub.hpp"

namespace chatorbit::chat {

inline constexpr std::size_t kRecentCids = 64;

/// Remembers that `s` posted `cid` (`said_resend`: the frame's `resend` flag); true if
/// the post may be a resend. A post without a cid cannot be matched, so is
/// never one.
inline bool note_post(Session& s, const std::string& cid, bool said_resend) {
  if (cid.empty()) return false;
  const bool seen = std::find(s.recent_cids.begin(), s.recent_cids.end(), cid) != s.recent_cids.end();
  if (!seen) {
    if (s.recent_cids.size() < kRecentCids) {
      s.recent_cids.push_back(cid);
    } else {
      s.recent_cids[s.recent_next] = cid;
      s.recent_next = (s.recent_next + 1) % kRecentCids;
    }
  }
  return said_resend || seen;
}

}  // namespace chatorbit::chat
