#include "net/ws_connection.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace chatorbit::ws {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

struct RecordingHandler : ConnectionHandler {
  asio::io_context& ctx;
  std::vector<std::string> texts;
  bool closed = false;
  explicit RecordingHandler(asio::io_context& c) : ctx(c) {}
  void on_text(Connection&, std::string t) override { texts.push_back(std::move(t)); }
  void on_binary(Connection&, std::string) override {}
  void on_closed(Connection&) override { closed = true; }
  void on_dirty(Connection& c, bool first) override {
    if (first) asio::post(ctx, [conn = c.shared_from_this()] { conn->flush(); });
  }
};

// A connected pair on loopback with small kernel buffers, so a reader that does not
// read fills them quickly.
struct Pair {
  asio::io_context ctx;
  tcp::socket server{ctx};
  tcp::socket client{ctx};
  Pair() {
    tcp::acceptor acc(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client.open(tcp::v4());
    client.set_option(asio::socket_base::receive_buffer_size(4096));
    client.connect(acc.local_endpoint());
    acc.accept(server);
    server.set_option(asio::socket_base::send_buffer_size(4096));
  }
};

// Parses unmasked server frames: (opcode, payload) pairs.
std::vector<std::pair<int, std::string>> parse_frames(const std::string& bytes) {
  std::vector<std::pair<int, std::string>> out;
  std::size_t i = 0;
  while (i + 2 <= bytes.size()) {
    const int op = static_cast<unsigned char>(bytes[i]) & 0x0f;
    std::size_t n = static_cast<unsigned char>(bytes[i + 1]) & 0x7f;
    i += 2;
    if (n == 126) {
      n = (static_cast<unsigned char>(bytes[i]) << 8) | static_cast<unsigned char>(bytes[i + 1]);
      i += 2;
    } else if (n == 127) {
      n = 0;
      for (int k = 0; k < 8; ++k) n = (n << 8) | static_cast<unsigned char>(bytes[i + k]);
      i += 8;
    }
    if (i + n > bytes.size()) break;
    out.emplace_back(op, bytes.substr(i, n));
    i += n;
  }
  return out;
}

std::string drain_client(Pair& p, RecordingHandler& h) {
  std::string received;
  p.client.non_blocking(true);
  // Until the server's FIN (after its close frame), bounded in time.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while (std::chrono::steady_clock::now() < deadline) {
    char buf[65536];
    boost::system::error_code ec;
    const auto n = p.client.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::eof) break;
    if (!ec) received.append(buf, n);
    p.ctx.poll();
    p.ctx.restart();
  }
  (void)h;
  return received;
}

TEST(WsConnection, SlowViewerIsDroppedWith4008AndOthersAreNotBlocked) {
  Pair p;
  RecordingHandler h(p.ctx);
  std::vector<char> loop_buffer(65536);
  auto conn = std::make_shared<Connection>(std::move(p.server), h, ConnectionLimits{65536, 16 * 1024}, loop_buffer);
  conn->start({});
  const auto frame = std::make_shared<const std::string>(make_frame(Opcode::text, std::string(1000, 'x')));
  int sent = 0;
  // The client never reads: the kernel buffers fill, then the connection's own queue.
  while (!h.closed && conn->open() && sent < 100000) {
    conn->send(frame);  // never blocks, whatever the client does
    ++sent;
    if (sent % 8 == 0) {
      p.ctx.poll();
      p.ctx.restart();
    }
  }
  EXPECT_FALSE(conn->open()) << "the viewer was never dropped after " << sent << " frames";
  EXPECT_LE(conn->queued_bytes(), 16u * 1024 + 64) << "the queue stayed bounded";
  const auto frames = parse_frames(drain_client(p, h));
  ASSERT_FALSE(frames.empty());
  const auto& last = frames.back();
  ASSERT_EQ(last.first, 0x8) << "the last frame is a close frame";
  ASSERT_GE(last.second.size(), 2u);
  const int code = (static_cast<unsigned char>(last.second[0]) << 8) | static_cast<unsigned char>(last.second[1]);
  EXPECT_EQ(code, close_code::slow_consumer);
}

TEST(WsConnection, QueuedFramesLeaveInOrderAndWhole) {
  Pair p;
  RecordingHandler h(p.ctx);
  std::vector<char> loop_buffer(65536);
  auto conn = std::make_shared<Connection>(std::move(p.server), h, ConnectionLimits{}, loop_buffer);
  conn->start({});
  for (int i = 0; i < 50; ++i) conn->send_text("message " + std::to_string(i));
  conn->close(close_code::normal, "bye");
  const auto frames = parse_frames(drain_client(p, h));
  ASSERT_EQ(frames.size(), 51u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(frames[i].first, 0x1);
    EXPECT_EQ(frames[i].second, "message " + std::to_string(i));
  }
  EXPECT_EQ(frames[50].first, 0x8);
  EXPECT_FALSE(conn->open());
}

TEST(WsConnection, AcceptKeyMatchesRfc6455Example) {
  // RFC 6455 section 1.3.
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

}  // namespace
}  // namespace chatorbit::ws
