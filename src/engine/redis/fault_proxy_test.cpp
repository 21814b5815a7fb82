#include "engine/redis/fault_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "engine/redis/test_redis.hpp"

namespace chatorbit::engine::test_redis {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

const std::string kPing = "*1\r\n$4\r\nPING\r\n";
const std::string kPong = "+PONG\r\n";

// A blocking client socket on 127.0.0.1:port whose every wait is bounded.
class Client {
 public:
  enum class Got { data, closed, timeout };
  struct Received {
    Got got;
    std::string data;
  };

  explicit Client(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
    set_timeout(SO_SNDTIMEO, 2s);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
      const int e = errno;
      ::close(fd_);
      throw std::runtime_error("connect: " + std::string(std::strerror(e)));
    }
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // False if the connection is already known to be closed (EPIPE, ECONNRESET).
  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }

  // Reads until a whole line ("\r\n") has arrived, the peer closes, or `timeout` passes.
  Received receive_line(milliseconds timeout) {
    Received r{Got::timeout, {}};
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (r.data.find("\r\n") == std::string::npos) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return r;
      set_timeout(SO_RCVTIMEO, left);
      char buf[256];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        r.data.append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno == ECONNRESET) {
        r.got = Got::closed;
        return r;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        throw std::runtime_error("recv: " + std::string(std::strerror(errno)));
      }
    }
    r.got = Got::data;
    return r;
  }

  // Sends PING and returns what came back within `timeout`.
  Received ping(milliseconds timeout = 2s) {
    if (!send(kPing)) return {Got::closed, {}};
    return receive_line(timeout);
  }

 private:
  void set_timeout(int option, milliseconds t) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(t.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, option, &tv, sizeof tv);
  }

  int fd_;
};

bool answered_pong(const Client::Received& r) { return r.got == Client::Got::data && r.data == kPong; }

// The proxy counts a connection once it has accepted it, a moment after connect() returns.
bool connections_become(const FaultProxy& proxy, std::size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (proxy.connections() != n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST(FaultProxy, ForwardsBothWays) {
  FaultProxy proxy(standalone_addr());
  EXPECT_EQ(proxy.addr(), "127.0.0.1:" + std::to_string(proxy.port()));
  Client a(proxy.port());
  Client b(proxy.port());
  EXPECT_TRUE(answered_pong(a.ping()));
  EXPECT_TRUE(answered_pong(b.ping()));
  EXPECT_TRUE(answered_pong(a.ping()));
  EXPECT_EQ(proxy.connections(), 2u);
}

TEST(FaultProxy, CountsAConnectionClosedByTheClientAsGone) {
  FaultProxy proxy(standalone_addr());
  {
    Client a(proxy.port());
    ASSERT_TRUE(answered_pong(a.ping()));
    EXPECT_EQ(proxy.connections(), 1u);
  }
  EXPECT_TRUE(connections_become(proxy, 0));
}

TEST(FaultProxy, CutClosesOpenConnectionsAndEachNewOne) {
  FaultProxy proxy(standalone_addr());
  Client before(proxy.port());
  ASSERT_TRUE(answered_pong(before.ping()));

  proxy.cut();
  EXPECT_EQ(proxy.connections(), 0u);
  EXPECT_EQ(before.receive_line(2s).got, Client::Got::closed);

  Client during(proxy.port());  // the kernel completes the handshake; the proxy then closes it
  EXPECT_EQ(during.ping().got, Client::Got::closed);
  EXPECT_EQ(proxy.connections(), 0u);

  proxy.restore();
  EXPECT_EQ(before.ping().got, Client::Got::closed);  // a cut connection stays cut
  Client after(proxy.port());
  EXPECT_TRUE(answered_pong(after.ping()));
}

TEST(FaultProxy, StallHoldsTrafficWithoutClosingAndRestoreDeliversIt) {
  FaultProxy proxy(standalone_addr());
  Client client(proxy.port());
  ASSERT_TRUE(answered_pong(client.ping()));

  proxy.stall();
  EXPECT_EQ(client.ping(300ms).got, Client::Got::timeout);  // not answered, and not closed
  EXPECT_EQ(proxy.connections(), 1u);

  proxy.restore();
  EXPECT_TRUE(answered_pong(client.receive_line(2s)));  // the held PING, answered now
  EXPECT_TRUE(answered_pong(client.ping()));
}

TEST(FaultProxy, StallHoldsNewConnectionsUntilRestore) {
  FaultProxy proxy(standalone_addr());
  proxy.stall();
  Client client(proxy.port());
  EXPECT_EQ(client.ping(300ms).got, Client::Got::timeout);
  EXPECT_TRUE(connections_become(proxy, 1));

  proxy.restore();
  EXPECT_TRUE(answered_pong(client.receive_line(2s)));
}

TEST(FaultProxy, DestructorClosesWhatIsOpen) {
  auto proxy = std::make_unique<FaultProxy>(standalone_addr());
  Client client(proxy->port());
  ASSERT_TRUE(answered_pong(client.ping()));
  proxy->stall();
  proxy.reset();
  EXPECT_EQ(client.receive_line(2s).got, Client::Got::closed);
}

}  // namespace
}  // namespace chatorbit::engine::test_redis
