#include "auth/credentials.hpp"

#include <gtest/gtest.h>

namespace chatorbit::auth {
namespace {

TEST(Credentials, Emails) {
  for (const char* ok : {"abc@example.com", "a.b+tag@sub.example.co", "x@y.io", "UPPER@Example.COM"}) {
    EXPECT_EQ(check_email(ok), "") << ok;
  }
  for (const char* bad : {"", "plain", "@example.com", "a@", "a@b", "a@@b.com", "a@b..com", "a b@c.com", "a@.com",
                          "a@com.", "a@exa mple.com", "a@ex$ample.com"}) {
    EXPECT_NE(check_email(bad), "") << bad;
  }
  EXPECT_NE(check_email(std::string(250, 'a') + "@x.io"), "");
  // Lengths are characters, as in the OpenAPI document: 64 two-byte characters fit the local part.
  std::string e_acute;
  for (int i = 0; i < 64; ++i) e_acute += "\xc3\xa9";
  EXPECT_EQ(check_email(e_acute + "@example.com"), "");
  EXPECT_NE(check_email(e_acute + "\xc3\xa9@example.com"), "");
}

TEST(Credentials, UsernamesCountCharactersNotBytes) {
  EXPECT_EQ(check_username("ab"), "");
  EXPECT_NE(check_username("a"), "");
  EXPECT_EQ(check_username("\xe7\x8c\xab\xe7\x8c\xab"), "") << "two CJK characters are two characters";
  EXPECT_EQ(check_username(std::string(100, 'x')), "");
  EXPECT_NE(check_username(std::string(101, 'x')), "");
  EXPECT_NE(check_username("tab\there"), "");
}

TEST(Credentials, Passwords) {
  EXPECT_NE(check_password("12345"), "");
  EXPECT_EQ(check_password("123456"), "");
  EXPECT_EQ(check_password(std::string(1024, 'p')), "");
  EXPECT_NE(check_password(std::string(1025, 'p')), "");
}

TEST(Credentials, LowerAscii) { EXPECT_EQ(lower_ascii("MiXeD@Ex.COM"), "mixed@ex.com"); }

}  // namespace
}  // namespace chatorbit::auth
