#include "net/ws_stream.hpp"

#include <cstring>

namespace chatorbit::ws {

std::uint32_t Stream::push(Frame frame) {
  const std::size_t size = frame->size();
  if (subscribers_ == 0) {
    ++base_;  // nobody to keep it for (entries_ is empty: every frame had no one left)
  } else if (size <= kCopyMax) {
    char* to = room_for(size);
    std::memcpy(to, frame->data(), size);
    entries_.push_back(Entry{nullptr, to, end_offset_, static_cast<std::uint32_t>(size), subscribers_});
  } else {
    const char* data = frame->data();
    entries_.push_back(Entry{std::move(frame), data, end_offset_, static_cast<std::uint32_t>(size), subscribers_});
  }
  end_offset_ += size;
  return subscribers_;
}

char* Stream::room_for(std::size_t size) {
  if (chunks_.empty() || kChunkBytes - chunks_.back().used < size) {
    chunks_.push_back(Chunk{std::make_unique_for_overwrite<char[]>(kChunkBytes), 0, 0});
  }
  Chunk& c = chunks_.back();
  char* at = c.bytes.get() + c.used;
  c.used += size;
  c.end = end() + 1;  // the entry is pushed next
  return at;
}

Frame Stream::frame_at(std::uint64_t pos) const {
  const Entry& e = entries_[pos - base_];
  if (e.frame) return e.frame;
  return std::make_shared<const std::string>(e.data, e.size);
}

void Stream::advance(std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t pos = from; pos < to; ++pos) --entries_[pos - base_].pending;
  while (!entries_.empty() && entries_.front().pending == 0) {
    entries_.pop_front();
    ++base_;
  }
  while (!chunks_.empty() && chunks_.front().end <= base_) chunks_.pop_front();
}

}  // namespace chatorbit::ws
