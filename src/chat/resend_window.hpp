#pragma once
// Which posts may be resends: the ones the message pipeline looks up by cid before
// numbering them, on a store that otherwise finds resends by refusing them on insert
// (MessagePipeline::enqueue(), Store::refuses_duplicate_cids()). A lookup before
// numbering leaves no seq unused; a refusal on insert does, so the rule is generous.
//
// A client resends what it has not seen acknowledged: on the same connection (after an
// error, or on a timer while the ack is on its way), or, after a reconnect, first thing
// on the new one. So a post may be a resend if its cid is among the connection's recent
// ones, or if it comes within the connection's first kResendWindow posts (twice the
// messages a connection may have in flight).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "chat/hub.hpp"

namespace chatorbit::chat {

inline constexpr std::uint32_t kResendWindow = 64;
inline constexpr std::size_t kRecentCids = 64;

/// Counts a post of `cid` on `s` and remembers the cid; true if the post may be a
/// resend. A post without a cid cannot be matched, so is never one.
inline bool note_post(Session& s, const std::string& cid) {
  if (cid.empty()) return false;
  const bool early = s.cid_posts < kResendWindow;
  const bool seen = std::find(s.recent_cids.begin(), s.recent_cids.end(), cid) != s.recent_cids.end();
  if (!seen) {
    if (s.recent_cids.size() < kRecentCids) {
      s.recent_cids.push_back(cid);
    } else {
      s.recent_cids[s.recent_next] = cid;
      s.recent_next = (s.recent_next + 1) % kRecentCids;
    }
  }
  if (s.cid_posts < std::numeric_limits<std::uint32_t>::max()) ++s.cid_posts;
  return early || seen;
}

}  // namespace chatorbit::chat
