#include "chat/wire.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace chatorbit::chat {
namespace {

TEST(RoomId, NormalisesAndRejects) {
  EXPECT_EQ(normalize_room_id("General"), "general");
  EXPECT_EQ(normalize_room_id("my-room_2"), "my-room_2");
  EXPECT_EQ(normalize_room_id(std::string(64, 'a')), std::string(64, 'a'));
  std::string why;
  EXPECT_EQ(normalize_room_id("", &why), std::nullopt);
  EXPECT_FALSE(why.empty());
  for (const char* bad : {"a b", "a/b", "a.b", "*", "chat_room:x", "\xc3\xa9", "a\n"}) {
    EXPECT_EQ(normalize_room_id(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(normalize_room_id(std::string(65, 'a')), std::nullopt);
}

TEST(Content, TrimsAndCountsCharacters) {
  EXPECT_EQ(check_content("  hi \n", 500).content, "hi");
  EXPECT_EQ(check_content("   ", 500).error_code, "invalid");
  EXPECT_EQ(check_content(std::string(500, 'x'), 500).error_code, "");
  EXPECT_EQ(check_content(std::string(501, 'x'), 500).error_code, "too_long");
  std::string cjk;
  for (int i = 0; i < 500; ++i) cjk += "\xe7\x8c\xab";
  EXPECT_EQ(check_content(cjk, 500).error_code, "") << "500 characters of 3 bytes each";
  EXPECT_EQ(check_content("a\x01"
                          "b",
                          500)
                .error_code,
            "invalid");
  EXPECT_EQ(check_content("a\x7f", 500).error_code, "invalid");
  EXPECT_EQ(check_content("a\xc2\x85"
                          "b",
                          500)
                .error_code,
            "invalid")
      << "C1 control NEL";
  EXPECT_EQ(check_content("caf\xc3\xa9", 500).error_code, "");
  EXPECT_EQ(check_content("line\none", 500).error_code, "invalid") << "inner newlines are control characters";
}

TEST(Wire, MessageKeysInTheOriginalsOrder) {
  store::Message m;
  m.id = "6925a1f0c3b4e1a2b3c4d5e6";
  m.room_id = "general";
  m.user_id = "690766ae876dd929bee54fcd";
  m.content = "Hello \"world\" \xf0\x9f\x98\x80";
  m.timestamp_ns = 1762262511LL * 1'000'000'000 + 729'935'846;
  m.username = "alice";
  m.seq = 42;
  const auto v1 = message_json_v1(m);
  EXPECT_EQ(v1,
            "{\"id\":\"6925a1f0c3b4e1a2b3c4d5e6\",\"room_id\":\"general\",\"user_id\":\"690766ae876dd929bee54fcd\","
            "\"content\":\"Hello \\\"world\\\" \xf0\x9f\x98\x80\",\"timestamp\":\"2025-11-04T13:21:51.729935846Z\","
            "\"username\":\"alice\",\"seq\":42}");
  const auto v2 = boost::json::parse(message_json_v2_from_v1(v1)).as_object();
  EXPECT_EQ(v2.at("type"), "message");
  EXPECT_EQ(v2.at("seq"), 42);
  EXPECT_EQ(v2.at("content").as_string(), m.content);
}

TEST(Wire, ErrorFrames) {
  EXPECT_EQ(error_json("rate_limited", "slow down", 1500, "c1"),
            "{\"type\":\"error\",\"code\":\"rate_limited\",\"message\":\"slow down\",\"retry_after_ms\":1500,"
            "\"cid\":\"c1\"}");
  EXPECT_EQ(error_json("invalid", "x"), "{\"type\":\"error\",\"code\":\"invalid\",\"message\":\"x\"}");
}

}  // namespace
}  // namespace chatorbit::chat
