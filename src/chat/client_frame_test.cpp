#include "chat/client_frame.hpp"

#include <gtest/gtest.h>

namespace chatorbit::chat {
namespace {

using Type = ClientFrame::Type;

TEST(ClientFrame, TheOriginalsFrameIsAMessage) {
  const auto p = parse_client_frame(R"({"room_id":"music","content":"hi"})");
  ASSERT_TRUE(p.frame) << p.error;
  EXPECT_EQ(p.frame->type, Type::message);
  EXPECT_EQ(p.frame->room_id, "music");
  EXPECT_EQ(p.frame->content, "hi");
  EXPECT_EQ(p.frame->cid, "");
}

TEST(ClientFrame, NullMeansAbsentAndUnknownFieldsAreIgnored) {
  const auto p = parse_client_frame(R"({"type":null,"room_id":null,"content":"x","extra":[1,2]})");
  ASSERT_TRUE(p.frame) << p.error;
  EXPECT_EQ(p.frame->type, Type::message);
  EXPECT_FALSE(p.frame->room_id);
}

TEST(ClientFrame, WronglyTypedFieldsAreInvalid) {
  for (const char* text : {R"({"content":5})", R"({"type":1})", R"({"room_id":["a"]})", R"({"cid":{}})",
                           R"({"type":"history","limit":"5"})", R"({"type":"history","limit":5.5})",
                           R"({"type":"history","before":"9"})", R"({"type":"history","before":true})"}) {
    const auto p = parse_client_frame(text);
    EXPECT_FALSE(p.frame) << text;
    EXPECT_FALSE(p.error.empty()) << text;
  }
}

TEST(ClientFrame, AResendIsMarkedWithABooleanOnly) {
  const auto marked = parse_client_frame(R"({"type":"message","content":"hi","cid":"c-1","resend":true})");
  ASSERT_TRUE(marked.frame) << marked.error;
  EXPECT_TRUE(marked.frame->resend);
  const auto plain = parse_client_frame(R"({"type":"message","content":"hi","cid":"c-1","resend":null})");
  ASSERT_TRUE(plain.frame) << plain.error;
  EXPECT_FALSE(plain.frame->resend);
  const auto wrong = parse_client_frame(R"({"type":"message","content":"hi","cid":"c-1","resend":1})");
  EXPECT_FALSE(wrong.frame);
  EXPECT_EQ(wrong.cid, "c-1") << "the refusal names the cid";
  EXPECT_NE(wrong.error.find("resend"), std::string::npos) << wrong.error;
}

TEST(ClientFrame, RefusalsNameTheirCid) {
  const auto p = parse_client_frame(R"({"cid":"c-1","content":7})");
  ASSERT_FALSE(p.frame);
  EXPECT_EQ(p.cid, "c-1");
  EXPECT_FALSE(parse_client_frame(R"({"cid":")" + std::string(65, 'x') + R"(","content":"a"})").frame);
}

TEST(ClientFrame, HistoryBoundsAndDefaults) {
  auto p = parse_client_frame(R"({"type":"history"})");
  ASSERT_TRUE(p.frame);
  EXPECT_EQ(p.frame->limit, 50);
  EXPECT_FALSE(p.frame->before);
  p = parse_client_frame(R"({"type":"history","before":5,"limit":2})");
  ASSERT_TRUE(p.frame);
  EXPECT_EQ(p.frame->before, 5u);
  EXPECT_EQ(p.frame->limit, 2);
  p = parse_client_frame(R"({"type":"history","limit":100000})");
  ASSERT_TRUE(p.frame);
  EXPECT_EQ(p.frame->limit, kMaxHistoryLimit);
  p = parse_client_frame(R"({"type":"history","before":18446744073709551615,"limit":18446744073709551615})");
  ASSERT_TRUE(p.frame);
  EXPECT_EQ(p.frame->before, 18446744073709551615u);
  EXPECT_EQ(p.frame->limit, kMaxHistoryLimit);
  EXPECT_FALSE(parse_client_frame(R"({"type":"history","limit":0})").frame);
  EXPECT_FALSE(parse_client_frame(R"({"type":"history","before":0})").frame);
  EXPECT_FALSE(parse_client_frame(R"({"type":"history","before":-3})").frame);
}

TEST(ClientFrame, OtherTypesAndGarbage) {
  EXPECT_EQ(parse_client_frame(R"({"type":"ping"})").frame->type, Type::ping);
  EXPECT_EQ(parse_client_frame(R"({"type":"join","room_id":"r"})").frame->type, Type::join);
  EXPECT_EQ(parse_client_frame(R"({"type":"dance"})").error, "unknown frame type");
  EXPECT_EQ(parse_client_frame("[1]").error, "frames must be JSON objects");
  EXPECT_EQ(parse_client_frame("{").error, "frames must be JSON objects");
  EXPECT_EQ(parse_client_frame(std::string(100, '[')).error, "frames must be JSON objects");
}

}  // namespace
}  // namespace chatorbit::chat
