#include "net/ws_stream.hpp"

namespace chatorbit::ws {

std::uint32_t Stream::push(Frame frame) {
  const std::uint64_t size = frame->size();
  if (subscribers_ == 0) {
    ++base_;  // nobody to keep it for (entries_ is empty: every frame had no one left)
  } else {
    entries_.push_back(Entry{std::move(frame), end_offset_, subscribers_});
  }
  end_offset_ += size;
  return subscribers_;
}

void Stream::advance(std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t pos = from; pos < to; ++pos) --entries_[pos - base_].pending;
  while (!entries_.empty() && entries_.front().pending == 0) {
    entries_.pop_front();
    ++base_;
  }
}

}  // namespace chatorbit::ws
