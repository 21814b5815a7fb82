#include "engine/redis/resp.hpp"

#include <gtest/gtest.h>

namespace chatorbit::engine::redis {
namespace {

TEST(Resp, CommandsAreArraysOfBulkStrings) {
  EXPECT_EQ(Command("SET").arg("k").arg(std::int64_t{42}).encode(), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n42\r\n");
  std::string out;
  const std::string payload("a\0\r\nb", 5);
  encode_command(out, {"PUBLISH", "c", payload});
  EXPECT_EQ(out, std::string("*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$5\r\na\0\r\nb\r\n", 35)) << "binary-safe";
  out.clear();
  encode_command(out, std::vector<std::string>{""});
  EXPECT_EQ(out, "*1\r\n$0\r\n\r\n");
}

TEST(Resp, RepliesOfEveryTypeAreDecoded) {
  RespReader r;
  const std::string wire = "+OK\r\n-ERR bad\r\n:-7\r\n$3\r\nabc\r\n$-1\r\n*2\r\n*1\r\n:1\r\n$0\r\n\r\n";
  r.feed(wire.data(), wire.size());
  auto status = r.next();
  ASSERT_TRUE(status);
  EXPECT_EQ(status->type, Reply::Type::status);
  EXPECT_EQ(status->str, "OK");
  auto error = r.next();
  EXPECT_TRUE(error->is_error());
  EXPECT_EQ(error->str, "ERR bad");
  EXPECT_EQ(r.next()->as_int(), -7);
  EXPECT_EQ(r.next()->str, "abc");
  EXPECT_TRUE(r.next()->is_nil());
  auto nested = r.next();
  ASSERT_EQ(nested->type, Reply::Type::array);
  ASSERT_EQ(nested->elements.size(), 2u);
  EXPECT_EQ(nested->elements[0].elements.at(0).integer, 1);
  EXPECT_EQ(nested->elements[1].type, Reply::Type::string);
  EXPECT_EQ(nested->elements[1].str, "");
  EXPECT_FALSE(r.next()) << "nothing more fed";
}

TEST(Resp, AReplySplitAcrossReadsIsDecodedOnceComplete) {
  RespReader r;
  const std::string wire = "*3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$5\r\nhello\r\n";
  for (std::size_t i = 0; i + 1 < wire.size(); ++i) {
    r.feed(&wire[i], 1);
    EXPECT_FALSE(r.next()) << "complete after " << i + 1 << " bytes?";
  }
  r.feed(&wire.back(), 1);
  auto push = r.next();
  ASSERT_TRUE(push);
  EXPECT_EQ(push->elements.at(2).str, "hello");
}

TEST(Resp, NotRespIsAProtocolError) {
  RespReader r;
  const std::string wire = "HTTP/1.1 400 Bad Request\r\n";
  r.feed(wire.data(), wire.size());
  EXPECT_THROW(r.next(), ProtocolError);
}

TEST(Resp, AsIntAcceptsDigitStringsOnly) {
  Reply digits{Reply::Type::string, "123"};
  EXPECT_EQ(digits.as_int(), 123);
  Reply words{Reply::Type::string, "12a"};
  EXPECT_THROW(words.as_int(), ProtocolError);
  Reply nil;
  EXPECT_THROW(nil.as_int(), ProtocolError);
}

}  // namespace
}  // namespace chatorbit::engine::redis
