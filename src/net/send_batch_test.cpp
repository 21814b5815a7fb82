#include "net/send_batch.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

namespace chatorbit::net {
namespace {

// A connected pair of stream sockets: [0] is written by the batch, [1] read by the test.
struct Pair {
  int fd[2] = {-1, -1};
  Pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd), 0); }
  ~Pair() {
    for (const int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
  std::string read_all() const {
    std::string out;
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(fd[1], buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
};

// Fills the batch's next entry with `parts` (which must outlive the send) and adds it.
void add_parts(SendBatch& batch, int fd, const std::vector<std::string>& parts, void* tag) {
  auto& iov = batch.next_iov();
  for (std::size_t i = 0; i < parts.size(); ++i) {
    iov[i].iov_base = const_cast<char*>(parts[i].data());
    iov[i].iov_len = parts[i].size();
  }
  batch.add(fd, parts.size(), tag);
}

class SendBatchTest : public ::testing::TestWithParam<bool> {};

TEST_P(SendBatchTest, UsesIoUringWhenAskedOrSaysWhyNot) {
  SendBatch batch(GetParam());
  if (GetParam()) {
    EXPECT_TRUE(batch.uses_io_uring() || !batch.fallback_reason().empty());
  } else {
    EXPECT_FALSE(batch.uses_io_uring());
    EXPECT_TRUE(batch.fallback_reason().empty());
  }
}

TEST_P(SendBatchTest, EachSendGathersItsBuffersAndReportsItsBytes) {
  SendBatch batch(GetParam());
  Pair a, b, c;
  const std::vector<std::string> pa{"one ", "two ", "three"};
  const std::vector<std::string> pb{"alone"};
  const std::vector<std::string> pc{std::string(1000, 'x'), std::string(1000, 'y')};
  int ta = 1, tb = 2, tc = 3;
  add_parts(batch, a.fd[0], pa, &ta);
  add_parts(batch, b.fd[0], pb, &tb);
  add_parts(batch, c.fd[0], pc, &tc);
  EXPECT_EQ(batch.size(), 3u);
  std::vector<std::pair<int, long>> results;
  batch.send([&](void* tag, long result) { results.emplace_back(*static_cast<int*>(tag), result); });
  EXPECT_EQ(batch.size(), 0u);
  ASSERT_EQ(results, (std::vector<std::pair<int, long>>{{1, 13}, {2, 5}, {3, 2000}}));
  EXPECT_EQ(a.read_all(), "one two three");
  EXPECT_EQ(b.read_all(), "alone");
  EXPECT_EQ(c.read_all(), std::string(1000, 'x') + std::string(1000, 'y'));
}

TEST_P(SendBatchTest, AFullSocketReportsEagainInsteadOfWaiting) {
  SendBatch batch(GetParam());
  Pair p;
  const int small = 4096;
  ::setsockopt(p.fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  const std::vector<std::string> parts{std::string(4096, 'z')};
  long last = 0;
  long total = 0;
  for (int i = 0; i < 10000 && last >= 0; ++i) {  // nobody reads: it fills, and must not block
    add_parts(batch, p.fd[0], parts, nullptr);
    batch.send([&](void*, long result) { last = result; });
    if (last > 0) total += last;
  }
  EXPECT_EQ(last, -EAGAIN) << "after " << total << " bytes";
  EXPECT_EQ(static_cast<long>(p.read_all().size()), total) << "every byte reported as sent was sent";
}

TEST_P(SendBatchTest, AClosedPeerIsAnErrorForThatSendOnlyAndNoSignal) {
  SendBatch batch(GetParam());
  Pair gone, fine;
  ::close(gone.fd[1]);
  gone.fd[1] = -1;
  const std::vector<std::string> parts{"hello"};
  int tg = 1, tf = 2;
  add_parts(batch, gone.fd[0], parts, &tg);
  add_parts(batch, fine.fd[0], parts, &tf);
  std::vector<std::pair<int, long>> results;
  batch.send([&](void* tag, long result) { results.emplace_back(*static_cast<int*>(tag), result); });
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].first, 1);
  EXPECT_EQ(results[0].second, -EPIPE);  // MSG_NOSIGNAL: an error, not SIGPIPE
  EXPECT_EQ(results[1], (std::pair<int, long>{2, 5}));
  EXPECT_EQ(fine.read_all(), "hello");
}

TEST_P(SendBatchTest, AFullBatchCanBeRefilledFromItsOwnCompletions) {
  SendBatch batch(GetParam());
  Pair p;
  const std::vector<std::string> parts{"."};
  for (std::size_t i = 0; i < SendBatch::kMax; ++i) add_parts(batch, p.fd[0], parts, nullptr);
  EXPECT_TRUE(batch.full());
  std::size_t done = 0;
  batch.send([&](void*, long result) {
    EXPECT_EQ(result, 1);
    if (++done == 1) {  // the next batch, while this one's results are still being handed out
      for (int i = 0; i < 3; ++i) add_parts(batch, p.fd[0], parts, nullptr);
    }
  });
  EXPECT_EQ(done, SendBatch::kMax);
  EXPECT_EQ(batch.size(), 3u);
  batch.send([&](void*, long result) { EXPECT_EQ(result, 1); });
  EXPECT_EQ(p.read_all(), std::string(SendBatch::kMax + 3, '.'));
}

INSTANTIATE_TEST_SUITE_P(IoUringAndSendmsg, SendBatchTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "io_uring" : "sendmsg"; });

}  // namespace
}  // namespace chatorbit::net
