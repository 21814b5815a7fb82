#include "net/link.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <string>
#include <tuple>
#include <vector>

#include "net/loopback_test_util.hpp"

namespace chatorbit::link {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

struct Seen {
  Kind kind;
  std::uint64_t session;
  std::string payload;
  bool operator==(const Seen&) const = default;
};

std::string stream_of(const std::vector<Seen>& records) {
  std::string out;
  for (const auto& r : records) append_record(out, r.kind, r.session, r.payload);
  return out;
}

TEST(LinkRecords, ComeOutWholeWhereverTheReadsCutThem) {
  const std::vector<Seen> records{{Kind::open, 1, "GET /ws/chat HTTP/1.1\r\n\r\n"},
                                  {Kind::data, 1, std::string(70'000, 'x')},
                                  {Kind::credit, 0xfedcba9876543210ull, std::string("\0\1\0\0", 4)},
                                  {Kind::end, 7, ""},
                                  {Kind::shut, 8, ""}};
  const std::string bytes = stream_of(records);
  // Every cut in the small records' bytes, and every 997th in the large one's.
  for (std::size_t cut = 0; cut <= bytes.size(); cut += cut < 100 || cut > bytes.size() - 100 ? 1 : 997) {
    RecordReader reader;
    std::vector<Seen> seen;
    auto keep = [&](const Record& r) { seen.push_back({r.kind, r.session, std::string(r.payload)}); };
    ASSERT_TRUE(reader.feed(std::string_view(bytes).substr(0, cut), keep));
    ASSERT_TRUE(reader.feed(std::string_view(bytes).substr(cut), keep));
    ASSERT_EQ(seen, records) << "cut at " << cut;
  }
}

TEST(LinkRecords, ByteByByteToo) {
  const std::vector<Seen> records{{Kind::data, 3, "abc"}, {Kind::end, 3, ""}};
  const std::string bytes = stream_of(records);
  RecordReader reader;
  std::vector<Seen> seen;
  for (char c : bytes) {
    ASSERT_TRUE(reader.feed(std::string_view(&c, 1), [&](const Record& r) {
      seen.push_back({r.kind, r.session, std::string(r.payload)});
    }));
  }
  EXPECT_EQ(seen, records);
}

TEST(LinkRecords, AnUnknownKindOrAnOversizedRecordFailsTheStream) {
  std::string bad_kind;
  append_record(bad_kind, Kind::data, 1, "x");
  bad_kind[4] = 9;
  RecordReader a;
  EXPECT_FALSE(a.feed(bad_kind, [](const Record&) {}));
  EXPECT_TRUE(a.failed());

  std::string huge;
  append_header(huge, Kind::data, 1, kMaxPayload + 1);
  RecordReader b;
  EXPECT_FALSE(b.feed(huge, [](const Record&) {}));

  std::string short_length("\0\0\0\3abc", 7);  // shorter than a header
  RecordReader c;
  EXPECT_FALSE(c.feed(short_length, [](const Record&) {}));
}

struct Recorder : Handler {
  std::vector<Seen> seen;
  bool closed = false;
  void on_record(const Record& r) override { seen.push_back({r.kind, r.session, std::string(r.payload)}); }
  void on_link_closed() override { closed = true; }
};

struct SocketPair {
  asio::io_context ctx;
  tcp::socket a{ctx};
  tcp::socket b{ctx};
  SocketPair() { std::tie(a, b) = loopback::pair(ctx, ctx); }
  template <class Pred>
  bool run_until(Pred done) {
    return loopback::run_until(ctx, done);
  }
};

TEST(LinkSocket, CarriesRecordsInOrderAndTellsTheOtherSideOfItsEnd) {
  SocketPair p;
  Recorder ra, rb;
  auto a = std::make_shared<Socket>(std::move(p.a), ra);
  auto b = std::make_shared<Socket>(std::move(p.b), rb);
  a->start({});
  b->start({});
  std::vector<Seen> sent;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    sent.push_back({Kind::data, i % 7, std::string(i % 300, static_cast<char>('a' + i % 26))});
    a->send(sent.back().kind, sent.back().session, sent.back().payload);
  }
  const std::string part1 = "gathered ", part2 = "from two buffers";
  const iovec iov[2] = {{const_cast<char*>(part1.data()), part1.size()},
                        {const_cast<char*>(part2.data()), part2.size()}};
  a->send(42, iov, part1.size() + 4);  // a prefix of them, as a session's window allows
  sent.push_back({Kind::data, 42, "gathered from"});
  ASSERT_TRUE(p.run_until([&] { return rb.seen.size() == sent.size(); }));
  EXPECT_EQ(rb.seen, sent);

  a->close();
  ASSERT_TRUE(p.run_until([&] { return rb.closed; }));
  EXPECT_TRUE(ra.closed);
  EXPECT_FALSE(b->open());
}

TEST(LinkSocket, IsCongestedWhileItsPeerDoesNotReadAndSaysWhenItHasDrained) {
  SocketPair p;
  Recorder ra, rb;
  auto a = std::make_shared<Socket>(std::move(p.a), ra);
  auto b = std::make_shared<Socket>(std::move(p.b), rb);
  a->start({});  // b is not started: nothing reads its end
  const std::string payload(64 * 1024, 'z');
  std::size_t records = 0;
  while (!a->congested()) {
    a->send(Kind::data, 1, payload);
    ++records;
    p.ctx.poll();
    p.ctx.restart();
  }
  bool drained = false;
  a->when_drained([&] { drained = true; });
  EXPECT_FALSE(drained);
  b->start({});
  ASSERT_TRUE(p.run_until([&] { return drained && rb.seen.size() == records; }));
  EXPECT_LT(a->backlog(), Socket::kLowWater);
}

}  // namespace
}  // namespace chatorbit::link
