#include "core/log.hpp"

#include <gtest/gtest.h>

#include <string>

namespace chatorbit::log {
namespace {

std::string escaped(std::string_view s) {
  std::string out = "[";
  append_json_escaped(out, s);
  return out;
}

TEST(JsonEscape, PlainTextIsCopiedAsIs) {
  EXPECT_EQ(escaped(""), "[");
  EXPECT_EQ(escaped("hello, world"), "[hello, world");
  EXPECT_EQ(escaped("caf\xc3\xa9 \xf0\x9f\x8e\xae"), "[caf\xc3\xa9 \xf0\x9f\x8e\xae") << "UTF-8 passes through";
}

TEST(JsonEscape, QuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(escaped("say \"hi\""), "[say \\\"hi\\\"");
  EXPECT_EQ(escaped("a\\b"), "[a\\\\b");
  EXPECT_EQ(escaped("l1\nl2\r\tx"), "[l1\\nl2\\r\\tx");
  EXPECT_EQ(escaped(std::string("\x01\x1f\x00", 3)), "[\\u0001\\u001f\\u0000");
  EXPECT_EQ(escaped("\x7f"), "[\x7f") << "DEL needs no escape in JSON";
}

TEST(JsonEscape, EscapesAtTheEdgesAndBackToBack) {
  EXPECT_EQ(escaped("\"x\""), "[\\\"x\\\"");
  EXPECT_EQ(escaped("\"\"\\\n"), "[\\\"\\\"\\\\\\n");
  EXPECT_EQ(escaped("x\x02"), "[x\\u0002");
}

}  // namespace
}  // namespace chatorbit::log
