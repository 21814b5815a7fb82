#include "net/router.hpp"

#include <gtest/gtest.h>

namespace chatorbit::http {
namespace {

using verb = bhttp::verb;

Handler noop() {
  return [](Context&) -> boost::asio::awaitable<Response> { co_return Response{}; };
}

Router sample() {
  Router r;
  r.add(verb::get, "/user/{id}", noop());
  r.add(verb::get, "/users/me", noop());
  r.add(verb::put, "/users/{id}/role", noop());
  r.add(verb::post, "/login", noop());
  r.add(verb::get, "/swagger/{file}", noop());
  r.add(verb::get, "/files/{*rest}", noop());
  return r;
}

TEST(Router, MatchesLiteralAndParameters) {
  const auto r = sample();
  auto m = r.match(verb::get, "/user/abc");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/user/{id}");
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0].first, "id");
  EXPECT_EQ(m.params[0].second, "abc");

  m = r.match(verb::put, "/users/42/role");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.params[0].second, "42");
}

TEST(Router, LiteralBeatsParameter) {
  Router r;
  r.add(verb::get, "/users/{id}", noop());
  r.add(verb::get, "/users/me", noop());
  const auto m = r.match(verb::get, "/users/me");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/users/me");
}

TEST(Router, UnknownPathHasNoAllowedMethods) {
  const auto r = sample();
  const auto m = r.match(verb::get, "/nope");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_TRUE(m.allowed.empty());
  EXPECT_EQ(r.match(verb::get, "/user").route, nullptr);
  EXPECT_EQ(r.match(verb::get, "/user/").route, nullptr) << "an empty parameter does not match";
  EXPECT_EQ(r.match(verb::get, "/user/a/b").route, nullptr);
}

TEST(Router, WrongMethodListsAllowed) {
  const auto r = sample();
  const auto m = r.match(verb::get, "/login");
  EXPECT_EQ(m.route, nullptr);
  ASSERT_EQ(m.allowed.size(), 1u);
  EXPECT_EQ(m.allowed[0], verb::post);
}

TEST(Router, DecodesPercentEscapesInParameters) {
  const auto r = sample();
  auto m = r.match(verb::get, "/user/a%20b%2Fc");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.params[0].second, "a b/c");
  m = r.match(verb::get, "/user/bad%zz");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_TRUE(m.bad_encoding);
  m = r.match(verb::get, "/user/trunc%2");
  EXPECT_TRUE(m.bad_encoding);
}

TEST(Router, RestParameterTakesRemainder) {
  const auto r = sample();
  const auto m = r.match(verb::get, "/files/a/b/c.txt");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.params[0].first, "rest");
  EXPECT_EQ(m.params[0].second, "a/b/c.txt");
}

TEST(Router, DuplicateRouteIsRejected) {
  Router r;
  r.add(verb::get, "/x", noop());
  EXPECT_THROW(r.add(verb::get, "/x", noop()), std::logic_error);
  EXPECT_NO_THROW(r.add(verb::post, "/x", noop()));
}

TEST(PercentDecode, PlusIsSpaceOnlyInQueries) {
  EXPECT_EQ(percent_decode("a+b", true), "a b");
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
  EXPECT_EQ(percent_decode("%41%62", false), "Ab");
  EXPECT_EQ(percent_decode("%", false), std::nullopt);
  EXPECT_EQ(percent_decode("%4", false), std::nullopt);
}

TEST(Context, QueryCookieAndBearer) {
  Request req{bhttp::verb::get, "/ws/chat?token=abc&room_id=my%2Droom&empty", 11};
  req.set(bhttp::field::cookie, "a=1; token=\"xyz\"; b=2");
  req.set(bhttp::field::authorization, "bearer   tok.en.sig");
  Context ctx{req, "/ws/chat", "token=abc&room_id=my%2Droom&empty", {}, "127.0.0.1", "rid", ""};
  EXPECT_EQ(ctx.query("token"), "abc");
  EXPECT_EQ(ctx.query("room_id"), "my-room");
  EXPECT_EQ(ctx.query("empty"), "");
  EXPECT_EQ(ctx.query("missing"), std::nullopt);
  EXPECT_EQ(ctx.cookie("token"), "xyz");
  EXPECT_EQ(ctx.cookie("b"), "2");
  EXPECT_EQ(ctx.cookie("c"), std::nullopt);
  EXPECT_EQ(ctx.bearer(), "tok.en.sig");
  req.set(bhttp::field::authorization, "Basic dXNlcjpwYXNz");
  EXPECT_EQ(ctx.bearer(), std::nullopt);
  req.set(bhttp::field::authorization, "Bearer ");
  EXPECT_EQ(ctx.bearer(), std::nullopt);
}

}  // namespace
}  // namespace chatorbit::http
