#include "net/ws_handshake.hpp"

#include <gtest/gtest.h>

namespace chatorbit::ws {
namespace {

http::Request upgrade_request() {
  http::Request req{http::bhttp::verb::get, "/ws/chat", 11};
  req.set(http::bhttp::field::upgrade, "websocket");
  req.set(http::bhttp::field::connection, "Upgrade");
  req.set(http::bhttp::field::sec_websocket_version, "13");
  req.set(http::bhttp::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  return req;
}

TEST(WsHandshake, TheRfcSampleRequestPasses) { EXPECT_FALSE(check_upgrade_headers(upgrade_request())); }

TEST(WsHandshake, ConnectionMustListUpgrade) {
  auto req = upgrade_request();
  req.set(http::bhttp::field::connection, "keep-alive, Upgrade");
  EXPECT_FALSE(check_upgrade_headers(req)) << "a token among others, any case";
  req.set(http::bhttp::field::connection, "keep-alive");
  auto refused = check_upgrade_headers(req);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, http::Status::bad_request);
  EXPECT_NE(refused->detail.find("Connection"), std::string::npos);
  req.erase(http::bhttp::field::connection);
  EXPECT_TRUE(check_upgrade_headers(req));
  req.set(http::bhttp::field::connection, "upgrades");
  EXPECT_TRUE(check_upgrade_headers(req)) << "whole tokens only";
}

TEST(WsHandshake, KeyMustDecodeToSixteenBytes) {
  EXPECT_TRUE(valid_client_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_TRUE(valid_client_key("AAAAAAAAAAAAAAAAAAAAAA=="));
  EXPECT_TRUE(valid_client_key("/+/+/+/+/+/+/+/+/+/+/w=="));
  EXPECT_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25jZR=="))
      << "R leaves bits set past the 16th byte: not a canonical encoding of 16 bytes";
  EXPECT_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25jZQ="));
  EXPECT_FALSE(valid_client_key("dGhlIHNhbXBsZSBub25jZQ=A"));
  EXPECT_FALSE(valid_client_key("dGhlIHNhbXBsZSBub2*jZQ=="));
  EXPECT_FALSE(valid_client_key("x23456789012345678901234")) << "24 characters, but no padding: 18 bytes";
  EXPECT_FALSE(valid_client_key(""));

  auto req = upgrade_request();
  req.set(http::bhttp::field::sec_websocket_key, "c2hvcnQ=");
  auto refused = check_upgrade_headers(req);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, http::Status::bad_request);
}

TEST(WsHandshake, VersionOtherThan13IsUpgradeRequired) {
  auto req = upgrade_request();
  req.set(http::bhttp::field::sec_websocket_version, "8");
  auto refused = check_upgrade_headers(req);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, http::Status::upgrade_required);
}

TEST(WsHandshake, Http10AndOtherMethodsAreRefused) {
  auto req = upgrade_request();
  req.version(10);
  EXPECT_TRUE(check_upgrade_headers(req));
  req = upgrade_request();
  req.method(http::bhttp::verb::post);
  EXPECT_TRUE(check_upgrade_headers(req));
}

}  // namespace
}  // namespace chatorbit::ws
