#pragma once
// Frames that many connections of one loop receive alike (a room's fan-out), kept once.
// A publication is appended once; each subscribed ws::Connection writes it from its own
// position, so handing a frame to N viewers costs nothing per viewer until their next
// write. A frame is dropped once every subscriber is past it.
//
// The stream copies small frames into chunks of its own, one after the other, so that
// the frames a viewer has waiting lie side by side in memory: a write of ten frames
// hands the kernel one buffer instead of ten (ws::Connection::gather() joins neighbours),
// and the kernel's cost per buffer is paid once per write, not once per frame
// (bench/studies/coalescing.md, "One buffer per write"). A chunk is freed with the last
// frame in it; a stream nobody is behind holds no memory.
//
// Threading: like its connections, a stream belongs to one event loop.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

namespace chatorbit::ws {

using Frame = std::shared_ptr<const std::string>;

class Stream {
 public:
  /// Frames up to this size are copied into the stream's chunks; larger ones are
  /// written from their own buffer.
  static constexpr std::size_t kCopyMax = 2048;
  /// The size of a chunk: a small allocation for the allocator, room for a pass's worth
  /// of frames of a busy room.
  static constexpr std::size_t kChunkBytes = 8192;

  /// Appends a frame for every current subscriber; returns how many that is.
  std::uint32_t push(Frame frame);
  /// Position after the newest frame; positions count frames from the stream's start.
  std::uint64_t end() const { return base_ + entries_.size(); }
  std::uint32_t subscribers() const { return subscribers_; }
  /// Frames kept because some subscriber has not written them yet.
  std::size_t retained() const { return entries_.size(); }
  /// Chunks held for those frames.
  std::size_t chunks() const { return chunks_.size(); }

 private:
  friend class Connection;
  struct Entry {
    Frame frame;           ///< the frame as published, when it was too large to copy
    const char* data;      ///< its bytes: in a chunk of this stream, or frame's own
    std::uint64_t offset;  ///< bytes of the stream before this frame
    std::uint32_t size;
    std::uint32_t pending;  ///< subscribers that have not written it yet
  };
  struct Chunk {
    std::unique_ptr<char[]> bytes;
    std::size_t used = 0;
    std::uint64_t end = 0;  ///< position after the last frame copied into it
  };
  std::string_view at(std::uint64_t pos) const {
    const Entry& e = entries_[pos - base_];
    return {e.data, e.size};
  }
  /// The frame at `pos` as a buffer of its own (a copy, if the stream holds it in a chunk).
  Frame frame_at(std::uint64_t pos) const;
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
  /// Where `size` bytes of the frame at position end() go: the free end of the last
  /// chunk, or a new one.
  char* room_for(std::size_t size);

  std::deque<Entry> entries_;
  std::deque<Chunk> chunks_;
  std::uint64_t base_ = 0;        ///< position of entries_.front()
  std::uint64_t end_offset_ = 0;  ///< bytes of the whole stream so far
  std::uint32_t subscribers_ = 0;
};

}  // namespace chatorbit::ws
