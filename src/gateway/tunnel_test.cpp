#include "gateway/tunnel.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <memory>
#include <string>

#include "net/loopback_test_util.hpp"

namespace chatorbit::gateway {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

/// A tunnel between a viewer and a node, both played by blocking sockets on a context
/// of their own; the tunnel's loop runs only inside run_until().
struct Relay {
  asio::io_context loop;
  asio::io_context peers;
  tcp::socket viewer{peers};
  tcp::socket node{peers};
  std::shared_ptr<Tunnel> tunnel;
  int ended = 0;

  explicit Relay(int viewer_rcvbuf = 0) {
    auto [v, tv] = loopback::pair(peers, loop, viewer_rcvbuf);
    auto [tn, n] = loopback::pair(loop, peers);
    viewer = std::move(v);
    node = std::move(n);
    tunnel = std::make_shared<Tunnel>(std::move(tv), std::move(tn), std::chrono::seconds{5});
    tunnel->on_end = [this] { ++ended; };
    tunnel->start();
    viewer.non_blocking(true);
    node.non_blocking(true);
  }
  template <class Pred>
  bool run_until(Pred done) {
    return loopback::run_until(loop, done);
  }
};

using loopback::take;

TEST(Tunnel, CopiesBothWaysAndPassesEachEndOnThenReportsItsOwn) {
  Relay r;
  asio::write(r.viewer, asio::buffer(std::string("to the node")));
  std::string at_node;
  ASSERT_TRUE(r.run_until([&] { return (at_node += take(r.node)) == "to the node"; }));
  asio::write(r.node, asio::buffer(std::string("to the viewer")));
  std::string at_viewer;
  ASSERT_TRUE(r.run_until([&] { return (at_viewer += take(r.viewer)) == "to the viewer"; }));

  // The viewer ends its half: the node sees the end, and the other half still works.
  r.viewer.shutdown(tcp::socket::shutdown_send);
  bool node_eof = false;
  ASSERT_TRUE(r.run_until([&] {
    take(r.node, &node_eof);
    return node_eof;
  }));
  EXPECT_EQ(r.ended, 0);
  asio::write(r.node, asio::buffer(std::string("goodbye")));
  at_viewer.clear();
  ASSERT_TRUE(r.run_until([&] { return (at_viewer += take(r.viewer)) == "goodbye"; }));

  r.node.shutdown(tcp::socket::shutdown_send);
  ASSERT_TRUE(r.run_until([&] { return r.ended == 1; }));
  bool viewer_eof = false;
  take(r.viewer, &viewer_eof);
  EXPECT_TRUE(viewer_eof);
}

TEST(Tunnel, AViewerThatStopsReadingShowsAsAWriteThatWaitsAndCloseEndsBothSides) {
  Relay r(4096);
  EXPECT_FALSE(r.tunnel->writing_since());
  const auto before = std::chrono::steady_clock::now();
  // More than the kernel buffers on the way hold: the node's socket stops taking it.
  const std::string chunk(64 * 1024, 'x');
  std::size_t sent = 0;
  for (int i = 0; i < 200; ++i) {
    boost::system::error_code ec;
    sent += r.node.write_some(asio::buffer(chunk), ec);
    r.loop.poll();
    r.loop.restart();
    if (ec == asio::error::would_block && r.tunnel->writing_since()) break;
  }
  ASSERT_TRUE(r.tunnel->writing_since()) << sent << " bytes sent and none waits";
  EXPECT_GE(*r.tunnel->writing_since(), before);
  EXPECT_GE(r.tunnel->last_read(), before);

  r.tunnel->close();
  ASSERT_TRUE(r.run_until([&] { return r.ended == 1; }));
  EXPECT_FALSE(r.tunnel->writing_since());
  bool node_eof = false;
  ASSERT_TRUE(r.run_until([&] {
    take(r.node, &node_eof);
    return node_eof;
  }));
  r.tunnel->close();  // again: nothing more happens
  loopback::run_until(
      r.loop, [] { return false; }, std::chrono::milliseconds{20});
  EXPECT_EQ(r.ended, 1);
}

TEST(Tunnel, ASideThatFailsClosesTheOther) {
  Relay r;
  // A reset, not an end: the node must not wait for a closing handshake.
  r.viewer.set_option(asio::socket_base::linger(true, 0));
  r.viewer.close();
  bool node_eof = false;
  ASSERT_TRUE(r.run_until([&] {
    take(r.node, &node_eof);
    return node_eof && r.ended == 1;
  }));
}

}  // namespace
}  // namespace chatorbit::gateway
