#pragma once
// Frames that many connections of one loop receive alike (a room's fan-out), kept once.
// A publication is appended once; each subscribed ws::Connection writes it from its own
// position, so handing a frame to N viewers costs nothing per viewer until their next
// write. A frame is dropped once every subscriber is past it.
//
// Threading: like its connections, a stream belongs to one event loop.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

namespace chatorbit::ws {

using Frame = std::shared_ptr<const std::string>;

class Stream {
 public:
  /// Appends a frame for every current subscriber; returns how many that is.
  std::uint32_t push(Frame frame);
  /// Position after the newest frame; positions count frames from the stream's start.
  std::uint64_t end() const { return base_ + entries_.size(); }
  std::uint32_t subscribers() const { return subscribers_; }
  /// Frames kept because some subscriber has not written them yet.
  std::size_t retained() const { return entries_.size(); }

 private:
  friend class Connection;
  struct Entry {
    Frame frame;
    std::uint64_t offset;   ///< bytes of the stream before this frame
    std::uint32_t pending;  ///< subscribers that have not written it yet
  };
  const std::string& at(std::uint64_t pos) const { return *entries_[pos - base_].frame; }
  const Frame& frame_at(std::uint64_t pos) const { return entries_[pos - base_].frame; }
  /// Bytes of the stream before `pos` (pos <= end()).
  std::uint64_t offset(std::uint64_t pos) const { return pos == end() ? end_offset_ : entries_[pos - base_].offset; }
  /// A new subscriber, reading from end().
  std::uint64_t subscribe() {
    ++subscribers_;
    return end();
  }
  /// One subscriber went from `from` to `to`: frames nobody still needs are dropped.
  void advance(std::uint64_t from, std::uint64_t to);
  void unsubscribe(std::uint64_t from) {
    advance(from, end());
    --subscribers_;
  }

  std::deque<Entry> entries_;
  std::uint64_t base_ = 0;        ///< position of entries_.front()
  std::uint64_t end_offset_ = 0;  ///< bytes of the whole stream so far
  std::uint32_t subscribers_ = 0;
};

}  // namespace chatorbit::ws
