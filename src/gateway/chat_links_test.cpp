#include "gateway/chat_links.hpp"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/link.hpp"
#include "net/loopback_test_util.hpp"

namespace chatorbit::gateway {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr const char* kUpgrade = "GET /ws/chat?room_id=r HTTP/1.1\r\nHost: gw\r\n\r\n";
constexpr const char* k101 = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

using loopback::take;

/// One gateway loop with one link to a chat node played by the test: a blocking socket
/// on a context of its own that answers the link's upgrade and then speaks records.
struct OneLink {
  asio::io_context loop;
  asio::io_context peers;
  tcp::acceptor acceptor{peers, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  tcp::socket node{peers};
  std::atomic<std::int64_t> open_links{0};
  std::shared_ptr<NodeLinkSet> set;
  std::string inbox;  ///< the node's unparsed bytes
  link::RecordReader reader;
  std::vector<std::pair<link::Kind, std::uint64_t>> seen;  ///< records the node got

  OneLink() {
    const auto at = acceptor.local_endpoint();
    auto connect = [this, at]() -> asio::awaitable<std::optional<boost::beast::tcp_stream>> {
      boost::beast::tcp_stream s(loop.get_executor());
      auto [ec] = co_await s.async_connect(at, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return std::nullopt;
      co_return std::optional<boost::beast::tcp_stream>(std::move(s));
    };
    set = std::make_shared<NodeLinkSet>(loop.get_executor(), "node", 1, connect, std::chrono::milliseconds{50},
                                        open_links);
    set->start();
    acceptor.non_blocking(true);
    EXPECT_TRUE(run_until([&] {
      boost::system::error_code ec;
      acceptor.accept(node, ec);
      return !ec;
    }));
    node.non_blocking(true);
    std::string request;
    EXPECT_TRUE(run_until([&] { return (request += take(node)).find("\r\n\r\n") != std::string::npos; }));
    EXPECT_NE(request.find("Upgrade: chatorbit-link"), std::string::npos) << request;
    write(std::string("HTTP/1.1 101 Switching Protocols\r\nUpgrade: chatorbit-link\r\nConnection: Upgrade\r\n\r\n"));
    EXPECT_TRUE(run_until([&] { return set->pick() != nullptr; }));
  }
  ~OneLink() { set->stop(); }

  template <class Pred>
  bool run_until(Pred done, std::chrono::milliseconds limit = std::chrono::seconds{10}) {
    return loopback::run_until(loop, done, limit);
  }
  /// Runs the loop until the other side of `s` has ended the connection.
  bool until_ended(tcp::socket& s, std::chrono::milliseconds limit = std::chrono::seconds{10}) {
    bool eof = false;
    return run_until(
        [&] {
          take(s, &eof);
          return eof;
        },
        limit);
  }
  void write(const std::string& bytes) { asio::write(node, asio::buffer(bytes)); }
  void send(link::Kind kind, std::uint64_t session, std::string_view payload) {
    std::string out;
    link::append_record(out, kind, session, payload);
    write(out);
  }
  /// Reads what reached the node into `seen`.
  void pump() {
    inbox = take(node);
    reader.feed(inbox, [&](const link::Record& r) { seen.emplace_back(r.kind, r.session); });
  }
  /// The session of the first `open` the node got, once it has one.
  std::optional<std::uint64_t> opened() {
    pump();
    for (const auto& [kind, session] : seen) {
      if (kind == link::Kind::open) return session;
    }
    return std::nullopt;
  }
};

/// A viewer (a blocking socket of the test) whose gateway side opens over `l`'s link.
struct Viewer {
  tcp::socket peer;
  std::shared_ptr<LinkedViewer> v;
  std::optional<LinkedViewer::Answer> answer;
  int ended = 0;

  explicit Viewer(OneLink& l) : peer(l.peers) {
    auto [p, s] = loopback::pair(l.peers, l.loop);
    peer = std::move(p);
    peer.non_blocking(true);
    v = std::make_shared<LinkedViewer>(std::move(s), std::chrono::seconds{5});
    v->on_end = [this] { ++ended; };
    asio::co_spawn(
        l.loop,
        [this, link = l.set->pick()]() -> asio::awaitable<void> {
          answer = co_await v->open(link, kUpgrade, "", std::chrono::seconds{5});
        },
        asio::detached);
  }
};

TEST(LinkedViewer, AnAcceptedViewerGetsTheNodesBytesAndTheNodeGetsTheViewers) {
  OneLink l;
  Viewer viewer(l);
  std::optional<std::uint64_t> session;
  ASSERT_TRUE(l.run_until([&] { return (session = l.opened()).has_value(); }));
  l.send(link::Kind::data, *session, std::string(k101) + "first frame");
  ASSERT_TRUE(l.run_until([&] { return viewer.answer.has_value(); }));
  ASSERT_EQ(viewer.answer->kind, LinkedViewer::Answer::Kind::accepted) << viewer.answer->bytes;
  viewer.v->start_relay();
  std::string got;
  ASSERT_TRUE(l.run_until([&] { return (got += take(viewer.peer)) == std::string(k101) + "first frame"; })) << got;

  asio::write(viewer.peer, asio::buffer(std::string("from the viewer")));
  ASSERT_TRUE(l.run_until([&] {
    l.pump();
    return l.seen.size() >= 2 && l.seen.back() == std::pair{link::Kind::data, *session};
  }));
  EXPECT_EQ(viewer.ended, 0);
}

TEST(LinkedViewer, ARefusalComesBackWholeAndTheViewerIsNotTouched) {
  OneLink l;
  Viewer viewer(l);
  std::optional<std::uint64_t> session;
  ASSERT_TRUE(l.run_until([&] { return (session = l.opened()).has_value(); }));
  const std::string refusal = "HTTP/1.1 403 Forbidden\r\nContent-Length: 17\r\n\r\n{\"error\":\"banned\"}";
  l.send(link::Kind::data, *session, refusal);
  l.send(link::Kind::end, *session, {});
  ASSERT_TRUE(l.run_until([&] { return viewer.answer.has_value(); }));
  EXPECT_EQ(viewer.answer->kind, LinkedViewer::Answer::Kind::refused);
  EXPECT_EQ(viewer.answer->bytes, refusal);
  bool eof = false;
  EXPECT_EQ(take(viewer.peer, &eof), "");
  EXPECT_FALSE(eof) << "the gateway answers the viewer itself";
}

TEST(LinkedViewer, ALinkLostJustAfterTheNodesAnswerNeverLeavesTheViewerOnADeadSession) {
  // The 101 and the link's end arrive together. However the loop orders them, the
  // viewer is either sent on before it saw anything (failed: the gateway tries the next
  // node) or closed (it reconnects), never relayed into a session the node dropped.
  OneLink l;
  Viewer viewer(l);
  std::optional<std::uint64_t> session;
  ASSERT_TRUE(l.run_until([&] { return (session = l.opened()).has_value(); }));
  l.send(link::Kind::data, *session, k101);
  l.node.close();
  ASSERT_TRUE(l.run_until([&] { return viewer.answer.has_value(); }));
  using Kind = LinkedViewer::Answer::Kind;
  const auto kind = viewer.answer->kind;
  if (kind == Kind::failed) {
    bool eof = false;
    EXPECT_EQ(take(viewer.peer, &eof), "");
    EXPECT_FALSE(eof);
    return;
  }
  ASSERT_TRUE(kind == Kind::gone || kind == Kind::accepted) << viewer.answer->bytes;
  if (kind == Kind::accepted) viewer.v->start_relay();
  EXPECT_TRUE(l.until_ended(viewer.peer, std::chrono::seconds{3}))
      << "the viewer still hangs on a session its node dropped (" << (kind == Kind::gone ? "gone" : "accepted") << ")";
}

TEST(GatewayLink, ANodeThatSendsAGatewayOnlyRecordLosesTheLinkAndItsViewers) {
  OneLink l;
  Viewer viewer(l);
  std::optional<std::uint64_t> session;
  ASSERT_TRUE(l.run_until([&] { return (session = l.opened()).has_value(); }));
  l.send(link::Kind::data, *session, k101);
  ASSERT_TRUE(l.run_until([&] { return viewer.answer.has_value(); }));
  ASSERT_EQ(viewer.answer->kind, LinkedViewer::Answer::Kind::accepted);
  viewer.v->start_relay();

  l.send(link::Kind::credit, *session, std::string("\0\0\1\0", 4));  // node to gateway: not in the protocol
  ASSERT_TRUE(l.until_ended(l.node));
  ASSERT_TRUE(l.until_ended(viewer.peer));
  EXPECT_EQ(l.set->pick(), nullptr);
  EXPECT_EQ(viewer.ended, 1);
}

}  // namespace
}  // namespace chatorbit::gateway
