#include "chat/fanout_passes.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>

#include "chat/hub.hpp"

namespace chatorbit::chat {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using Duration = FlushPacer::Duration;

// Passes of `writing` each, starting `gap` apart, until the smoothing has settled.
void steady(FlushPacer& pacer, Duration gap, Duration writing, int passes = 40) {
  for (int i = 0; i < passes; ++i) pacer.passed(gap, writing);
}

TEST(FlushPacer, BeforeAnyPassNothingWaits) {
  FlushPacer pacer(milliseconds{20});
  EXPECT_FALSE(pacer.busy());
  EXPECT_EQ(pacer.wait(Duration::zero()), Duration::zero());
}

TEST(FlushPacer, AQuietLoopWritesAtTheEndOfTheTurn) {
  FlushPacer pacer(milliseconds{20});
  steady(pacer, milliseconds{50}, microseconds{300});  // 500 viewers, 20 messages/s
  EXPECT_FALSE(pacer.busy());
  EXPECT_EQ(pacer.wait(Duration::zero()), Duration::zero()) << "due at once after the last pass: still no wait";
}

TEST(FlushPacer, ALoopWritingUnderFourFifthsOfItsTimeDoesNotWait) {
  FlushPacer pacer(milliseconds{20});
  steady(pacer, milliseconds{20}, milliseconds{15});  // 3/4 of the time writing
  EXPECT_FALSE(pacer.busy());
  EXPECT_EQ(pacer.wait(milliseconds{1}), Duration::zero());
}

TEST(FlushPacer, PastFourFifthsPassesAreSpacedToThatShare) {
  FlushPacer pacer(milliseconds{20});
  steady(pacer, milliseconds{9}, milliseconds{8});  // frames arrive faster than passes end
  EXPECT_TRUE(pacer.busy());
  EXPECT_EQ(pacer.spacing(), milliseconds{10}) << "8 ms of writing in every 10";
  EXPECT_EQ(pacer.wait(milliseconds{8}), milliseconds{2}) << "due at the end of a pass: waits for the rest";
  EXPECT_EQ(pacer.wait(milliseconds{10}), Duration::zero());
  // Spaced so, the share settles at four fifths and the loop stays in this mode.
  steady(pacer, milliseconds{10}, milliseconds{8});
  EXPECT_TRUE(pacer.busy());
  EXPECT_EQ(pacer.spacing(), milliseconds{10});
}

TEST(FlushPacer, TheSpacingNeverExceedsTheBound) {
  FlushPacer pacer(milliseconds{20});
  steady(pacer, milliseconds{70}, milliseconds{65});  // saturated: 10,000 viewers
  EXPECT_EQ(pacer.spacing(), milliseconds{20});
  EXPECT_EQ(pacer.wait(Duration::zero()), milliseconds{20});
  EXPECT_EQ(pacer.wait(milliseconds{70}), Duration::zero()) << "a pass longer than the bound: the next at once";
}

TEST(FlushPacer, ABoundOfZeroKeepsEveryPassAtTheEndOfTheTurn) {
  FlushPacer pacer(Duration::zero());
  steady(pacer, milliseconds{10}, milliseconds{10});
  EXPECT_TRUE(pacer.busy());
  EXPECT_EQ(pacer.wait(Duration::zero()), Duration::zero());
}

TEST(FlushPacer, TheLoadIsFollowedDownAsWellAsUp) {
  FlushPacer pacer(milliseconds{20});
  steady(pacer, milliseconds{12}, milliseconds{12});
  ASSERT_TRUE(pacer.busy());
  // The room went quiet: within a few passes the loop writes at once again.
  for (int i = 0; i < 6; ++i) pacer.passed(milliseconds{100}, microseconds{100});
  EXPECT_FALSE(pacer.busy());
  EXPECT_EQ(pacer.wait(Duration::zero()), Duration::zero());
  // One pass the scheduler stretched, after quiet ones, does not make the loop busy.
  pacer.passed(milliseconds{30}, milliseconds{30});
  EXPECT_FALSE(pacer.busy());
}

TEST(FlushPacer, ALongQuietSpellCountsAsOneSecond) {
  FlushPacer pacer(milliseconds{20});
  steady(pacer, milliseconds{10}, milliseconds{10});
  pacer.passed(std::chrono::hours{1}, milliseconds{10});  // the first message after an hour
  EXPECT_FALSE(pacer.busy());
  // A busy room again is followed within a fifth of a second of its passes, not after
  // an hour of them.
  for (int i = 0; i < 20; ++i) pacer.passed(milliseconds{10}, milliseconds{10});
  EXPECT_TRUE(pacer.busy());
}

std::shared_ptr<LoopRoom> room_of(std::size_t members) {
  auto r = std::make_shared<LoopRoom>();
  r->members.assign(members, nullptr);  // only the count matters to the order
  return r;
}

TEST(OrderPass, SmallRoomsAreWrittenBeforeBigOnes) {
  const auto crowd = room_of(10'000), live = room_of(500), few = room_of(3);
  std::vector<std::shared_ptr<LoopRoom>> pass{crowd, live, few};
  order_pass(pass);
  EXPECT_EQ(pass, (std::vector<std::shared_ptr<LoopRoom>>{few, live, crowd}));
}

TEST(OrderPass, RoomsOfOneSizeKeepTheOrderTheyWereListedIn) {
  const auto a = room_of(20), b = room_of(20), c = room_of(5), d = room_of(20);
  std::vector<std::shared_ptr<LoopRoom>> pass{a, b, c, d};
  order_pass(pass);
  EXPECT_EQ(pass, (std::vector<std::shared_ptr<LoopRoom>>{c, a, b, d}));
}

// Members of a room on loopback sockets, following its version 1 stream.
struct Crowd {
  struct Handler final : ws::ConnectionHandler {
    void on_text(ws::Connection&, std::string) override {}
    void on_binary(ws::Connection&, std::string) override {}
    void on_closed(ws::Connection&) override {}
    void on_dirty(ws::Connection&, bool) override {}
  };
  Crowd(boost::asio::io_context& ctx, boost::asio::ip::tcp::acceptor& acc, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      clients.emplace_back(ctx);
      clients.back().connect(acc.local_endpoint());
      boost::asio::ip::tcp::socket server(ctx);
      acc.accept(server);
      auto s = std::make_unique<Session>();
      s->conn = std::make_shared<ws::Connection>(std::move(server), handler, ws::ConnectionLimits{}, buffer);
      s->conn->subscribe(room->streams[0]);
      room->members.push_back(s.get());
      sessions.push_back(std::move(s));
    }
  }
  /// Members whose socket has received something.
  std::size_t reached() {
    std::size_t n = 0;
    for (auto& c : clients) n += c.available() > 0 ? 1 : 0;
    return n;
  }
  void say(const char* text) {
    room->streams[0]->push(std::make_shared<const std::string>(ws::make_frame(ws::Opcode::text, text)));
  }
  Handler handler;
  std::vector<char> buffer = std::vector<char>(64 * 1024);
  std::shared_ptr<LoopRoom> room = std::make_shared<LoopRoom>();
  std::vector<boost::asio::ip::tcp::socket> clients;
  std::vector<std::unique_ptr<Session>> sessions;
};

TEST(FanoutPasses, ASmallRoomIsWrittenBesideABigRoomsPassNotAfterIt) {
  boost::asio::io_context ctx;
  boost::asio::ip::tcp::acceptor acc(ctx, {boost::asio::ip::make_address("127.0.0.1"), 0});
  Crowd big(ctx, acc, 4 * FanoutPasses::kSlice), small(ctx, acc, 2);
  FanoutPasses passes(ctx, milliseconds{20}, /*io_uring=*/false);
  big.say("count");
  passes.list(big.room);
  ctx.run_one();  // the pass begins: its first slice
  ASSERT_EQ(big.reached(), FanoutPasses::kSlice);
  small.say("hello");
  passes.list(small.room);
  while (small.reached() < 2 && ctx.run_one() > 0) {
  }
  EXPECT_EQ(small.reached(), 2U);
  // The big room's pass was still under way when the small room was done.
  EXPECT_LT(big.reached(), 4 * FanoutPasses::kSlice);
  ctx.run();
  EXPECT_EQ(big.reached(), 4 * FanoutPasses::kSlice);
}

}  // namespace
}  // namespace chatorbit::chat
