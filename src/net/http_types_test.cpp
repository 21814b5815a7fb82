#include "net/http_types.hpp"

#include <gtest/gtest.h>

namespace chatorbit::http {
namespace {

TEST(HttpTypes, JsonContentType) {
  EXPECT_TRUE(is_json_content_type("application/json"));
  EXPECT_TRUE(is_json_content_type("Application/JSON; charset=utf-8"));
  EXPECT_TRUE(is_json_content_type(" application/json ;"));
  EXPECT_FALSE(is_json_content_type("text/plain"));
  EXPECT_FALSE(is_json_content_type("application/json-seq"));
  EXPECT_FALSE(is_json_content_type("application/x-www-form-urlencoded"));
  EXPECT_FALSE(is_json_content_type(""));
}

TEST(HttpTypes, SameOriginComparesHostAndPortWhateverTheScheme) {
  EXPECT_TRUE(same_origin("http://chat.example:8080", "chat.example:8080"));
  EXPECT_TRUE(same_origin("https://Chat.Example", "chat.example"));
  EXPECT_FALSE(same_origin("http://chat.example:8081", "chat.example:8080"));
  EXPECT_FALSE(same_origin("http://evil.chat.example", "chat.example"));
  EXPECT_FALSE(same_origin("null", "chat.example"));
  EXPECT_FALSE(same_origin("http://chat.example", ""));
}

TEST(HttpTypes, CookieOriginRule) {
  Request req{bhttp::verb::post, "/logout", 11};
  req.set(bhttp::field::host, "chat.example");
  const std::vector<std::string> none;
  const std::vector<std::string> listed{"https://app.example"};
  EXPECT_TRUE(cookie_origin_ok(req, none)) << "no Origin, no list: not a browser";
  EXPECT_FALSE(cookie_origin_ok(req, listed)) << "with a list, a missing Origin is not allowed";
  req.set(bhttp::field::origin, "https://app.example");
  EXPECT_TRUE(cookie_origin_ok(req, listed));
  EXPECT_FALSE(cookie_origin_ok(req, none)) << "without a list, only this host";
  req.set(bhttp::field::origin, "https://chat.example");
  EXPECT_TRUE(cookie_origin_ok(req, none));
  EXPECT_FALSE(cookie_origin_ok(req, listed));
  req.set(bhttp::field::origin, "http://localhost:8080");
  EXPECT_TRUE(cookie_origin_ok(req, none)) << "without a list, a page on this machine too (a dev server)";
  EXPECT_FALSE(cookie_origin_ok(req, listed)) << "with a list, only the list";
}

TEST(HttpTypes, LoopbackOriginsAreLocalhostAnd127001AndIpv6OnAnyPortOnly) {
  for (const char* yes : {"http://localhost", "http://localhost:8080", "https://LOCALHOST:443", "http://127.0.0.1:5173",
                          "http://[::1]", "http://[::1]:3000"}) {
    EXPECT_TRUE(is_loopback_origin(yes)) << yes;
  }
  for (const char* no :
       {"http://localhost.evil.example", "http://localhost@evil.example", "http://localhost:80/x",
        "http://localhost:", "http://localhost:8080x", "http://localhost:1234567", "http://127.0.0.1.nip.io",
        "http://127.0.0.2", "ws://localhost", "localhost:8080", "null", "", "http://[::1].evil"}) {
    EXPECT_FALSE(is_loopback_origin(no)) << no;
  }
}

TEST(HttpTypes, CorsOriginsAreTheListExactlyOrWithoutOneLoopbackOnes) {
  const std::vector<std::string> none;
  const std::vector<std::string> listed{"https://app.example"};
  EXPECT_TRUE(cors_origin_allowed("http://localhost:8080", none));
  EXPECT_FALSE(cors_origin_allowed("https://app.example", none));
  EXPECT_TRUE(cors_origin_allowed("https://app.example", listed));
  EXPECT_FALSE(cors_origin_allowed("https://app.example:8443", listed));
  EXPECT_FALSE(cors_origin_allowed("http://localhost:8080", listed));
}

}  // namespace
}  // namespace chatorbit::http
