#pragma once
// Many sockets written in one system call, for the hub's fan-out passes. A pass writes
// thousands of connections, and per write the system call itself (entry and exit, the
// file lookup, copying the message header) is a measurable share of the cost: a batch
// hands up to kMax sendmsg operations to the kernel through io_uring in one call.
// Where io_uring cannot be used (an old kernel, a seccomp profile that forbids it, or
// turned off) it falls back to one sendmsg per entry, with the same results.
//
// Threading: one batch per event loop, used only on that loop's thread.

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

namespace chatorbit::net {

class SendBatch {
 public:
  static constexpr std::size_t kMax = 64;     ///< sends per batch
  static constexpr std::size_t kMaxIov = 64;  ///< buffers per send
  using Iov = std::array<iovec, kMaxIov>;

  /// With `use_io_uring` false, or when the kernel refuses a ring, sends one by one.
  explicit SendBatch(bool use_io_uring);
  ~SendBatch();
  SendBatch(const SendBatch&) = delete;
  SendBatch& operator=(const SendBatch&) = delete;

  /// Whether sends go through io_uring; if not, why (empty when it was not asked for).
  bool uses_io_uring() const { return ring_ != nullptr; }
  const std::string& fallback_reason() const { return fallback_reason_; }

  bool full() const { return size_ == kMax; }
  std::size_t size() const { return size_; }
  /// The buffers of the next entry, for the caller to fill before add().
  Iov& next_iov() { return iov_[size_]; }
  /// Queues a send of next_iov()[0..count) to `fd`, flags MSG_NOSIGNAL | MSG_DONTWAIT.
  /// `tag` comes back with the result. Not when full().
  void add(int fd, std::size_t count, void* tag);

  /// Sends every queued entry, then calls done(tag, result) for each in the order they
  /// were added: result is the bytes sent or -errno (-EAGAIN when the socket was full).
  /// The batch is empty afterwards, also when done() adds to it again.
  template <class Done>
  void send(Done&& done) {
    submit();
    const std::size_t n = size_;
    size_ = 0;
    std::array<std::pair<void*, long>, kMax> out;  // done() may refill the batch
    for (std::size_t i = 0; i < n; ++i) out[i] = {tag_[i], result_[i]};
    for (std::size_t i = 0; i < n; ++i) done(out[i].first, out[i].second);
  }

 private:
  struct Ring;
  void submit();

  std::unique_ptr<Ring> ring_;
  std::string fallback_reason_;
  std::size_t size_ = 0;
  std::array<Iov, kMax> iov_{};
  std::array<msghdr, kMax> msg_{};
  std::array<int, kMax> fd_{};
  std::array<void*, kMax> tag_{};
  std::array<long, kMax> result_{};
};

}  // namespace chatorbit::net
