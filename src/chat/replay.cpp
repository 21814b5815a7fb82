#include "chat/replay.hpp"

namespace chatorbit::chat {

bool replay_has_recent_hole(const std::vector<store::Message>& newest_first, std::size_t limit, std::uint64_t after_seq,
                            std::int64_t now_ns, std::chrono::nanoseconds recent) {
  const bool reached_back =
      newest_first.size() < limit || (!newest_first.empty() && newest_first.back().seq <= after_seq);
  for (std::size_t i = 0; i < newest_first.size(); ++i) {
    const store::Message& m = newest_first[i];
    if (m.seq <= after_seq) break;
    std::uint64_t below = after_seq;  // what m should directly follow
    if (i + 1 < newest_first.size() && newest_first[i + 1].seq > after_seq) {
      below = newest_first[i + 1].seq;
    } else if (!reached_back) {
      break;  // the read stopped at its limit: nothing is known below m
    }
    if (m.seq > below + 1 && now_ns - m.timestamp_ns < recent.count()) return true;
  }
  return false;
}

}  // namespace chatorbit::chat
