#include "chat/gap_fill.hpp"

#include <algorithm>

#include "chat/delivery.hpp"
#include "chat/publication.hpp"
#include "chat/wire.hpp"

namespace chatorbit::chat {

namespace {

// How far before the broker was last seen up a room of unknown position is filled from:
// the sample is taken once a second, and a message stored just before the loss may
// have been published just after it.
constexpr std::int64_t kUnknownMarginMs = 2000;

}  // namespace

GapFillResult fill_missed_messages(store::Store& store, Hub& hub) {
  GapFillResult result;
  const std::int64_t since_ns = (hub.broker_seen_up_ms() - kUnknownMarginMs) * 1'000'000;
  for (const auto& point : hub.fill_points()) {
    ++result.rooms;
    auto newest_first = store.history(point.room, kGapFillLimit, std::nullopt);
    const auto missed = [&](const store::Message& m) {
      return point.after_seq ? m.seq > *point.after_seq : m.timestamp_ns >= since_ns;
    };
    if (newest_first.size() == static_cast<std::size_t>(kGapFillLimit) && missed(newest_first.back())) {
      ++result.truncated;
    }
    const std::string channel = room_channel(point.room);
    for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) {
      if (!missed(*it)) continue;
      hub.on_publication(channel, std::make_shared<const std::string>(encode_message(it->seq, message_json_v1(*it))));
      ++result.offered;
    }
  }
  return result;
}

std::size_t fetch_gap(store::Store& store, Hub& hub, const std::string& room,
                      const std::vector<std::uint64_t>& missing) {
  std::size_t offered = 0;
  if (missing.empty()) return 0;
  // One read from the highest missing number down to the lowest; what lies between and
  // is not missing (the node holds it) is skipped.
  const std::uint64_t from = missing.front(), to = missing.back() + 1;
  const auto span = std::min<std::uint64_t>(to - from, static_cast<std::uint64_t>(kGapFillLimit));
  const auto newest_first = store.history(room, static_cast<int>(span), to);
  const std::string channel = room_channel(room);
  for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) {
    if (it->seq < from || !std::binary_search(missing.begin(), missing.end(), it->seq)) continue;
    hub.on_publication(channel, std::make_shared<const std::string>(encode_message(it->seq, message_json_v1(*it))));
    ++offered;
  }
  return offered;
}

}  // namespace chatorbit::chat
