#include "net/ws_connection.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <span>
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

using Frames = std::vector<std::pair<int, std::string>>;

std::string drain_client(Pair& p) {
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
  return received;
}

// A server-side connection on a loopback pair of its own; `loop_buffer` stands for its
// event loop's read buffer, which connections of one loop share.
struct Viewer {
  Pair pair;
  RecordingHandler handler{pair.ctx};
  std::shared_ptr<Connection> conn;
  explicit Viewer(std::vector<char>& loop_buffer, ConnectionLimits limits = {})
      : conn(std::make_shared<Connection>(std::move(pair.server), handler, limits, loop_buffer)) {}
  /// What the client receives until the server closes, as (opcode, payload) pairs.
  Frames frames() { return parse_frames(drain_client(pair)); }
  void poll() {
    pair.ctx.poll();
    pair.ctx.restart();
  }
};

Frame text_frame(const std::string& text) {
  return std::make_shared<const std::string>(make_frame(Opcode::text, text));
}

std::vector<std::string> texts_of(const Frames& frames) {
  std::vector<std::string> out;
  for (const auto& [op, payload] : frames) {
    if (op == 0x1) out.push_back(payload);
  }
  return out;
}

// The status code of a close frame's payload.
int close_code_of(const std::string& payload) {
  return (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
}

// The bytes of iov[0..count), in order.
std::string joined(const std::array<iovec, 64>& iov, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  return out;
}

TEST(WsConnection, SlowViewerIsDroppedWith4008AndOthersAreNotBlocked) {
  std::vector<char> loop_buffer(65536);
  Viewer v(loop_buffer, ConnectionLimits{65536, 16 * 1024});
  v.conn->start({});
  const auto frame = text_frame(std::string(1000, 'x'));
  int sent = 0;
  // The client never reads: the kernel buffers fill, then the connection's own queue.
  while (!v.handler.closed && v.conn->open() && sent < 100000) {
    v.conn->send(frame);  // never blocks, whatever the client does
    ++sent;
    if (sent % 8 == 0) v.poll();
  }
  EXPECT_FALSE(v.conn->open()) << "the viewer was never dropped after " << sent << " frames";
  EXPECT_LE(v.conn->queued_bytes(), 16u * 1024 + 64) << "the queue stayed bounded";
  const auto frames = v.frames();
  ASSERT_FALSE(frames.empty());
  const auto& last = frames.back();
  ASSERT_EQ(last.first, 0x8) << "the last frame is a close frame";
  ASSERT_GE(last.second.size(), 2u);
  EXPECT_EQ(close_code_of(last.second), close_code::slow_consumer);
}

TEST(WsConnection, QueuedFramesLeaveInOrderAndWhole) {
  std::vector<char> loop_buffer(65536);
  Viewer v(loop_buffer);
  v.conn->start({});
  for (int i = 0; i < 50; ++i) v.conn->send_text("message " + std::to_string(i));
  v.conn->close(close_code::normal, "bye");
  const auto frames = v.frames();
  ASSERT_EQ(frames.size(), 51u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(frames[i].first, 0x1);
    EXPECT_EQ(frames[i].second, "message " + std::to_string(i));
  }
  EXPECT_EQ(frames[50].first, 0x8);
  EXPECT_FALSE(v.conn->open());
}

TEST(WsStream, OwnAndStreamFramesLeaveInTheOrderTheyWereQueued) {
  std::vector<char> loop_buffer(65536);
  auto stream = std::make_shared<Stream>();
  stream->push(text_frame("before subscribing"));  // not for this connection
  Viewer v(loop_buffer);
  auto& conn = v.conn;
  conn->start({});
  conn->send_text("own 0");
  conn->subscribe(stream);
  EXPECT_EQ(stream->push(text_frame("stream 0")), 1u);
  stream->push(text_frame("stream 1"));
  conn->send_text("own 1");
  conn->send_text("own 2");
  stream->push(text_frame("stream 2"));
  conn->flush();
  stream->push(text_frame("stream 3"));
  conn->send_text("own 3");
  conn->close(close_code::normal, "bye");
  stream->push(text_frame("after close"));  // it left the stream when it closed
  const auto frames = v.frames();
  EXPECT_EQ(texts_of(frames), (std::vector<std::string>{"own 0", "stream 0", "stream 1", "own 1", "own 2", "stream 2",
                                                        "stream 3", "own 3"}));
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().first, 0x8);
  EXPECT_EQ(stream->subscribers(), 0u);
  EXPECT_EQ(stream->retained(), 0u);
}

TEST(WsStream, KeepsAFrameUntilEverySubscriberHasWrittenIt) {
  std::vector<char> loop_buffer(65536);
  auto stream = std::make_shared<Stream>();
  Viewer a(loop_buffer);
  Viewer b(loop_buffer);
  auto& ca = a.conn;
  auto& cb = b.conn;
  ca->subscribe(stream);
  cb->subscribe(stream);
  EXPECT_EQ(stream->push(text_frame("one")), 2u);
  stream->push(text_frame("two"));
  EXPECT_TRUE(ca->pending());
  EXPECT_EQ(ca->queued_bytes(), 2 * text_frame("one").get()->size());
  EXPECT_EQ(stream->chunks(), 1u) << "both small frames in one chunk";
  ca->flush();
  EXPECT_FALSE(ca->pending());
  EXPECT_EQ(stream->retained(), 2u) << "the second subscriber has not written them";
  EXPECT_EQ(stream->chunks(), 1u);
  cb->flush();
  EXPECT_EQ(stream->retained(), 0u);
  EXPECT_EQ(stream->chunks(), 0u) << "freed with the last frame in it";
  stream->push(text_frame("three"));
  cb->unsubscribe();  // keeps "three" for cb, but the stream no longer waits for it
  EXPECT_EQ(stream->retained(), 1u);
  EXPECT_TRUE(cb->pending());
  ca.reset();  // a connection destroyed while following lets go of its frames too
  EXPECT_EQ(stream->retained(), 0u);
  EXPECT_EQ(stream->subscribers(), 0u);
  EXPECT_EQ(stream->push(text_frame("nobody")), 0u);
  EXPECT_EQ(stream->retained(), 0u);
  cb->close(close_code::normal, {});
  EXPECT_EQ(texts_of(b.frames()), (std::vector<std::string>{"one", "two", "three"}));
}

TEST(WsStream, AFollowerThatStopsReadingIsDroppedWith4008AndLetsGoOfTheStream) {
  std::vector<char> loop_buffer(65536);
  auto stream = std::make_shared<Stream>();
  Viewer v(loop_buffer, ConnectionLimits{65536, 16 * 1024});
  v.conn->start({});
  v.conn->subscribe(stream);
  const auto frame = text_frame(std::string(1000, 'x'));
  int pushed = 0;
  // The client never reads: the kernel buffers fill, then the stream runs ahead of it.
  while (!v.handler.closed && v.conn->open() && pushed < 100000) {
    stream->push(frame);
    ++pushed;
    if (pushed % 4 == 0) v.conn->flush();  // what a pass over the room does
    EXPECT_LE(stream->retained(), 16u + 8u) << "the stream kept more than one backlog for it";
    if (pushed % 8 == 0) v.poll();
  }
  EXPECT_FALSE(v.conn->open()) << "the follower was never dropped after " << pushed << " frames";
  EXPECT_EQ(stream->subscribers(), 0u);
  EXPECT_EQ(stream->retained(), 0u);
  const auto frames = v.frames();
  ASSERT_FALSE(frames.empty());
  for (std::size_t i = 0; i + 1 < frames.size(); ++i) EXPECT_EQ(frames[i].second, std::string(1000, 'x'));
  const auto& last = frames.back();
  ASSERT_EQ(last.first, 0x8) << "the last frame is a close frame, after whole frames only";
  ASSERT_GE(last.second.size(), 2u);
  EXPECT_EQ(close_code_of(last.second), close_code::slow_consumer);
}

TEST(WsStream, WaitingStreamFramesAreWrittenFromOneBuffer) {
  std::vector<char> loop_buffer(65536);
  auto stream = std::make_shared<Stream>();
  Viewer v(loop_buffer);
  auto& conn = v.conn;
  conn->subscribe(stream);
  std::string expected;
  for (int i = 0; i < 10; ++i) {
    const auto f = text_frame("message " + std::to_string(i));
    expected += *f;
    stream->push(f);
  }
  std::array<iovec, 64> iov{};
  ASSERT_EQ(conn->gather(iov), 1u) << "ten small frames side by side in the stream's chunk";
  EXPECT_EQ(joined(iov, 1), expected);

  // An own frame, and a frame too large to copy, each break the run where they stand.
  conn->send_text("own");
  const auto large = text_frame(std::string(Stream::kCopyMax + 1, 'L'));
  stream->push(large);
  stream->push(text_frame("after"));
  expected += *text_frame("own") + *large + *text_frame("after");
  const std::size_t count = conn->gather(iov);
  EXPECT_EQ(count, 4u);
  EXPECT_EQ(iov[2].iov_base, large->data()) << "a large frame is written from its own buffer";
  EXPECT_EQ(joined(iov, count), expected);
}

TEST(WsStream, CountsTheWritesThatSentData) {
  std::vector<char> loop_buffer(65536);
  auto stream = std::make_shared<Stream>();
  Viewer v(loop_buffer);
  std::atomic<std::uint64_t> writes{0};
  v.conn->count_writes_in(writes);
  v.conn->subscribe(stream);
  v.conn->flush();
  EXPECT_EQ(writes.load(), 0u) << "nothing waited: no write";
  for (int i = 0; i < 10; ++i) stream->push(text_frame("message " + std::to_string(i)));
  v.conn->flush();
  EXPECT_EQ(writes.load(), 1u) << "ten waiting frames, one write";
  v.conn->send_text("own");
  v.conn->flush();
  EXPECT_EQ(writes.load(), 2u);
  // Through a batch: the result of one sendmsg that sent bytes counts once.
  stream->push(text_frame("batched"));
  std::array<iovec, 64> iov{};
  const std::size_t count = v.conn->gather(iov);
  ASSERT_EQ(count, 1u);
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = count;
  v.conn->sent(::sendmsg(v.conn->native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT));
  EXPECT_EQ(writes.load(), 3u);
  v.conn->close(close_code::normal, {});
  EXPECT_EQ(texts_of(v.frames()).size(), 12u) << "every frame reached the client";
}

TEST(WsStream, ChunksAreFreedWithTheirLastFrame) {
  std::vector<char> loop_buffer(65536);
  auto stream = std::make_shared<Stream>();
  Viewer a(loop_buffer);
  Viewer b(loop_buffer);
  auto& ca = a.conn;
  auto& cb = b.conn;
  ca->subscribe(stream);
  cb->subscribe(stream);
  // 2.5 chunks' worth of 1 KB frames, each telling its number: a frame never straddles
  // two chunks, and the order survives the chunk boundaries.
  const std::size_t n = 5 * Stream::kChunkBytes / 2 / 1024;
  std::vector<std::string> sent;
  for (std::size_t i = 0; i < n; ++i) {
    std::string text(1020, 'x');
    text.replace(0, std::to_string(i).size(), std::to_string(i));
    const auto frame = text_frame(text);
    ASSERT_EQ(frame->size(), 1024u);
    stream->push(frame);
    sent.push_back(text);
  }
  EXPECT_EQ(stream->chunks(), 3u);
  std::array<iovec, 64> iov{};
  EXPECT_EQ(ca->gather(iov), 3u) << "one buffer per chunk";
  // cb writes everything (over several writes, as its client reads); ca nothing yet.
  cb->close(close_code::normal, {});
  auto frames_b = b.frames();
  ASSERT_EQ(frames_b.size(), n + 1) << "every frame, then the close";
  frames_b.pop_back();
  EXPECT_EQ(texts_of(frames_b), sent);
  EXPECT_EQ(stream->retained(), n) << "ca has written none of them";
  EXPECT_EQ(stream->chunks(), 3u);
  ca->close(close_code::normal, {});
  auto frames_a = a.frames();
  ASSERT_EQ(frames_a.size(), n + 1);
  frames_a.pop_back();
  EXPECT_EQ(texts_of(frames_a), sent);
  EXPECT_EQ(stream->retained(), 0u);
  EXPECT_EQ(stream->chunks(), 0u) << "a stream nobody is behind holds no memory";
}

TEST(WsStream, AFollowerThatLeavesKeepsItsUnwrittenFramesAsItsOwn) {
  std::vector<char> loop_buffer(65536);
  auto stream = std::make_shared<Stream>();
  Viewer v(loop_buffer);
  v.conn->start({});
  v.conn->subscribe(stream);
  stream->push(text_frame("one"));
  stream->push(text_frame("two"));
  v.conn->unsubscribe();
  EXPECT_EQ(stream->chunks(), 0u) << "copies of the frames went with it";
  stream->push(text_frame("not for it"));
  v.conn->close(close_code::normal, {});
  EXPECT_EQ(texts_of(v.frames()), (std::vector<std::string>{"one", "two"}));
}

TEST(WsStream, OneWriteGathersAtMostKMaxWriteBytes) {
  std::vector<char> loop_buffer(65536);
  auto stream = std::make_shared<Stream>();
  Viewer v(loop_buffer, ConnectionLimits{4 << 20, 4 << 20});
  v.conn->subscribe(stream);
  const auto frame = text_frame(std::string(1020, 'x'));
  for (std::size_t i = 0; i < 2 * Connection::kMaxWriteBytes / 1024; ++i) stream->push(frame);
  std::array<iovec, 64> iov{};
  const std::size_t count = v.conn->gather(iov);
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < count; ++i) bytes += iov[i].iov_len;
  EXPECT_EQ(bytes, Connection::kMaxWriteBytes);
}

// A transport that takes at most `room` bytes until it is given more: a link's session
// with its credit window.
struct FakeChannel : Channel {
  std::string written;
  std::size_t room = 1 << 20;
  std::function<void()> ready;
  bool shut = false;
  bool closed = false;
  long write(std::span<const iovec> iov) override {
    if (room == 0) return -EAGAIN;
    std::size_t taken = 0;
    for (const auto& v : iov) {
      const std::size_t n = std::min(v.iov_len, room - taken);
      written.append(static_cast<const char*>(v.iov_base), n);
      taken += n;
      if (taken == room) break;
    }
    room -= taken;
    return static_cast<long>(taken);
  }
  void wait_writable(std::function<void()> f) override { ready = std::move(f); }
  void shutdown_send() override { shut = true; }
  void close() override { closed = true; }
  /// More room, and the waiting writer told.
  void give(std::size_t bytes) {
    room += bytes;
    if (ready) std::exchange(ready, nullptr)();
  }
};

// A client's text frame, masked (with a zero key, so the payload reads as is).
std::string client_text(const std::string& text) {
  std::string f;
  f.push_back(static_cast<char>(0x81));
  f.push_back(static_cast<char>(0x80 | text.size()));
  f.append(4, '\0');
  return f + text;
}

TEST(WsConnection, OverAChannelWritesThroughItAndIsFedWhatItReads) {
  asio::io_context ctx;
  std::vector<char> loop_buffer(65536);
  RecordingHandler handler{ctx};
  auto channel = std::make_shared<FakeChannel>();
  auto conn = std::make_shared<Connection>(ctx.get_executor(), channel, handler, ConnectionLimits{}, loop_buffer);
  conn->start(client_text("early"));  // bytes that came before the session existed
  EXPECT_FALSE(conn->batchable());
  conn->send(text_frame("hi"));
  ctx.poll();
  EXPECT_EQ(texts_of(parse_frames(channel->written)), std::vector<std::string>{"hi"});

  conn->receive(client_text("hello"));
  EXPECT_EQ(handler.texts, (std::vector<std::string>{"early", "hello"}));

  conn->close(close_code::normal, "bye");
  EXPECT_TRUE(channel->shut);  // the close frame is out: half-closed
  EXPECT_FALSE(channel->closed);
  const auto frames = parse_frames(channel->written);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[1].first, 0x8);
  conn->receive(client_text("ignored after our close"));
  EXPECT_EQ(handler.texts.size(), 2u);
  conn->peer_ended();
  EXPECT_TRUE(channel->closed);
  EXPECT_TRUE(handler.closed);
}

TEST(WsConnection, OverAChannelWithNoRoomLeftAViewerFarBehindIsDroppedWith4008) {
  asio::io_context ctx;
  std::vector<char> loop_buffer(65536);
  RecordingHandler handler{ctx};
  auto channel = std::make_shared<FakeChannel>();
  channel->room = 4096;
  auto conn = std::make_shared<Connection>(ctx.get_executor(), channel, handler, ConnectionLimits{65536, 16 * 1024},
                                           loop_buffer);
  conn->start({});
  const auto frame = text_frame(std::string(1000, 'x'));
  for (int i = 0; i < 40 && conn->open(); ++i) {
    conn->send(frame);
    ctx.poll();
    ctx.restart();
  }
  EXPECT_FALSE(conn->open());  // closing: 4 KiB taken, then 16 KiB queued at most
  EXPECT_EQ(channel->written.size(), 4096u);
  EXPECT_FALSE(channel->shut);  // the close frame waits for room like any other
  channel->give(1 << 20);
  const auto frames = parse_frames(channel->written);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().first, 0x8);
  EXPECT_EQ(close_code_of(frames.back().second), close_code::slow_consumer);
  // The frame cut by the full window was finished before the close frame.
  for (std::size_t i = 0; i + 1 < frames.size(); ++i) EXPECT_EQ(frames[i].second.size(), 1000u);
  EXPECT_TRUE(channel->shut);
}

TEST(WsConnection, AcceptKeyMatchesRfc6455Example) {
  // RFC 6455 section 1.3.
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

}  // namespace
}  // namespace chatorbit::ws
