#include "chat/publication.hpp"

#include <gtest/gtest.h>

namespace chatorbit::chat {
namespace {

TEST(Publication, MessagesRoundTripWithTheirSeq) {
  const auto wire = encode_message(42, R"({"id":"x","seq":42})");
  EXPECT_EQ(wire, "M 42 v=1\n{\"id\":\"x\",\"seq\":42}");
  const auto d = decode_publication(wire);
  ASSERT_TRUE(d.publication);
  EXPECT_EQ(d.publication->kind, PublicationKind::message);
  EXPECT_EQ(d.publication->seq, 42u);
  EXPECT_EQ(d.publication->version, 1);
  EXPECT_EQ(d.publication->json, R"({"id":"x","seq":42})");
}

TEST(Publication, TheFirstReleasesFormatStillDecodes) {
  // Before this codec: "M <seq>\n", "D\n", "P\n", with no version field.
  auto d = decode_publication("M 7\n{}");
  ASSERT_TRUE(d.publication);
  EXPECT_EQ(d.publication->seq, 7u);
  EXPECT_EQ(d.publication->version, 1);
  d = decode_publication("D\n{\"action\":\"clear\"}");
  ASSERT_TRUE(d.publication);
  EXPECT_EQ(d.publication->kind, PublicationKind::moderation);
  EXPECT_EQ(decode_publication("P\n{}").publication->kind, PublicationKind::presence);
}

TEST(Publication, WhatTheFirstReleaseReadsOfTheNewFormat) {
  // That release read a message's seq with from_chars from offset 2 to the newline, and
  // the JSON after it: both unchanged by the version field.
  const auto wire = encode_message(123, "{}");
  const auto nl = wire.find('\n');
  EXPECT_EQ(wire.substr(2, 3), "123");
  EXPECT_EQ(wire[5], ' ') << "from_chars stops here";
  EXPECT_EQ(wire.substr(nl + 1), "{}");
}

TEST(Publication, NewerVersionsAndUnknownKindsAreRefusedNotMisread) {
  EXPECT_EQ(decode_publication("M 5 v=2\n{}").error, PublicationError::newer_version);
  EXPECT_EQ(decode_publication("X\n{}").error, PublicationError::unknown_kind);
  EXPECT_EQ(decode_publication("M\n{}").error, PublicationError::malformed) << "a message needs its seq";
  EXPECT_EQ(decode_publication("M 0\n{}").error, PublicationError::malformed);
  EXPECT_EQ(decode_publication("M x\n{}").error, PublicationError::malformed);
  EXPECT_EQ(decode_publication("M 5 v=0\n{}").error, PublicationError::malformed);
  EXPECT_EQ(decode_publication("M5\n{}").error, PublicationError::malformed);
  EXPECT_EQ(decode_publication("no newline").error, PublicationError::malformed);
  EXPECT_EQ(decode_publication("").error, PublicationError::malformed);
  // Header fields added later within version 1 are ignored.
  const auto d = decode_publication("M 5 v=1 origin=node-b\n{}");
  ASSERT_TRUE(d.publication);
  EXPECT_EQ(d.publication->seq, 5u);
}

TEST(Publication, AccountEventsRoundTrip) {
  const auto wire = encode_role_changed("u1", "moderator");  // the decoded json is a view into it
  auto d = decode_publication(wire);
  ASSERT_TRUE(d.publication);
  EXPECT_EQ(d.publication->kind, PublicationKind::account);
  auto e = parse_account_event(d.publication->json);
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->revoke);
  EXPECT_EQ(e->user_id, "u1");
  EXPECT_EQ(e->role, "moderator");

  const auto revoked = encode_tokens_revoked({"u2", "", 5000, 1000});
  e = parse_account_event(decode_publication(revoked).publication->json);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->revoke);
  EXPECT_EQ(e->jti, "");
  EXPECT_EQ(e->expires_at_s, 5000);
  EXPECT_EQ(e->not_before_s, 1000);

  EXPECT_FALSE(parse_account_event(R"({"action":"role"})")) << "no user";
  EXPECT_FALSE(parse_account_event(R"({"action":"dance","user_id":"u"})"));
  EXPECT_FALSE(parse_account_event("[]"));
}

TEST(Publication, ModerationEventsKeepTheFieldsNodesActOn) {
  const auto mod = encode_moderation(
      {{"type", "moderation"}, {"action", "timeout"}, {"user_id", "u"}, {"room_id", "r"}, {"duration_seconds", 60}});
  const auto e = parse_moderation_event(decode_publication(mod).publication->json);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->action, "timeout");
  EXPECT_EQ(e->user_id, "u");
  EXPECT_EQ(e->room_id, "r");
  EXPECT_EQ(e->duration_seconds, 60);
  EXPECT_FALSE(e->seconds);
  EXPECT_FALSE(parse_moderation_event(R"({"user_id":"u"})")) << "no action";
}

}  // namespace
}  // namespace chatorbit::chat
