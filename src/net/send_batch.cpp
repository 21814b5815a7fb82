#include "net/send_batch.hpp"

#include <liburing.h>

#include <cerrno>
#include <cstring>

namespace chatorbit::net {

struct SendBatch::Ring {
  ::io_uring ring{};
  ~Ring() { io_uring_queue_exit(&ring); }
};

SendBatch::SendBatch(bool use_io_uring) {
  if (!use_io_uring) return;
  auto ring = std::make_unique<Ring>();
  // Twice kMax: completions of one batch never overflow the completion queue.
  if (const int rc = io_uring_queue_init(2 * kMax, &ring->ring, 0); rc < 0) {
    fallback_reason_ = std::strerror(-rc);
    return;
  }
  ring_ = std::move(ring);
}

SendBatch::~SendBatch() = default;

void SendBatch::add(int fd, std::size_t count, void* tag) {
  msg_[size_] = msghdr{};
  msg_[size_].msg_iov = iov_[size_].data();
  msg_[size_].msg_iovlen = count;
  fd_[size_] = fd;
  tag_[size_] = tag;
  ++size_;
}

void SendBatch::submit() {
  constexpr int kFlags = MSG_NOSIGNAL | MSG_DONTWAIT;
  if (!ring_) {
    for (std::size_t i = 0; i < size_; ++i) {
      ssize_t n;
      do {
        n = ::sendmsg(fd_[i], &msg_[i], kFlags);
      } while (n < 0 && errno == EINTR);
      result_[i] = n < 0 ? -errno : n;
    }
    return;
  }
  ::io_uring& ring = ring_->ring;
  constexpr long kPending = -1'000'000;  // no errno is this large
  for (std::size_t i = 0; i < size_; ++i) {
    result_[i] = kPending;
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);  // the queue holds 2 x kMax: never null here
    // MSG_DONTWAIT makes a full socket complete with -EAGAIN instead of being parked.
    io_uring_prep_sendmsg(sqe, fd_[i], &msg_[i], kFlags);
    io_uring_sqe_set_data64(sqe, i);
  }
  std::size_t pending = size_;
  int rc = io_uring_submit_and_wait(&ring, static_cast<unsigned>(pending));
  while (pending > 0) {
    if (rc < 0 && rc != -EINTR) {
      // The ring itself failed (not one send): say so for each send not yet completed.
      for (std::size_t i = 0; i < size_; ++i) {
        if (result_[i] == kPending) result_[i] = rc;
      }
      break;
    }
    unsigned head;
    io_uring_cqe* cqe;
    unsigned seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      result_[io_uring_cqe_get_data64(cqe)] = cqe->res;
      ++seen;
    }
    io_uring_cq_advance(&ring, seen);
    pending -= seen;
    if (pending > 0) rc = io_uring_wait_cqe_nr(&ring, &cqe, static_cast<unsigned>(pending));
  }
}

}  // namespace chatorbit::net
