// The Store conformance suite (see store_conformance.hpp): what every backend must do.

#include "store/store_conformance.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace chatorbit::store {
namespace {

using Seqs = std::vector<std::uint64_t>;
using Strings = std::vector<std::string>;

template <class T>
std::vector<T> sorted(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v;
}

constexpr std::int64_t kT0 = 1'700'000'000'000;  // a Unix time in ms

// Ids shaped like ObjectIds (24 hex), deterministic so failures are reproducible.
std::string oid(std::uint32_t tag, std::uint64_t n) {
  char buf[25];
  std::snprintf(buf, sizeof buf, "%08x%016llx", tag, static_cast<unsigned long long>(n));
  return buf;
}

User make_user(std::uint64_t n, std::string email) {
  User u;
  u.id = oid(0x05e5, n);
  u.username = "user" + std::to_string(n);
  u.email = std::move(email);
  u.password_hash = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g";
  u.role = "user";
  u.created_at_ms = kT0 + static_cast<std::int64_t>(n);
  u.update_time_ms = u.created_at_ms;
  return u;
}

Message make_message(std::string room, std::uint64_t seq, std::string user_id, std::string content = "",
                     std::string cid = "") {
  Message m;
  // The message id is derived from (room, seq), which is unique per store.
  m.id = oid(static_cast<std::uint32_t>(std::hash<std::string>{}(room)), seq);
  m.room_id = std::move(room);
  m.user_id = std::move(user_id);
  m.username = "name-of-" + m.user_id;
  m.content = content.empty() ? "message " + std::to_string(seq) : std::move(content);
  m.timestamp_ns = (kT0 + static_cast<std::int64_t>(seq)) * 1'000'000 + 123;
  m.seq = seq;
  m.cid = std::move(cid);
  return m;
}

/// Messages seq 1..n in `room`, all from `user_id`.
std::vector<Message> make_messages(const std::string& room, std::uint64_t n, const std::string& user_id = "u1") {
  std::vector<Message> out;
  for (std::uint64_t seq = 1; seq <= n; ++seq) out.push_back(make_message(room, seq, user_id));
  return out;
}

ModerationAction make_action(std::string id, std::string room, std::string action, std::int64_t at_ms) {
  ModerationAction a;
  a.id = std::move(id);
  a.room_id = std::move(room);
  a.actor_id = "mod1";
  a.action = std::move(action);
  a.target_user_id = "target1";
  a.target_message_id = "msg1";
  a.reason = "spam";
  a.duration_seconds = 600;
  a.at_ms = at_ms;
  return a;
}

Ban make_ban(std::string room, std::string user, std::int64_t expires_at_ms) {
  return Ban{std::move(room), std::move(user), "mod1", "spam", kT0, expires_at_ms};
}

// The store structs have no operator==; comparing tuples of their fields gives readable diffs.
auto fields(const User& u) {
  return std::tie(u.id, u.username, u.email, u.password_hash, u.role, u.created_at_ms, u.update_time_ms,
                  u.login_time_ms, u.login_ip);
}
auto fields(const Message& m) {
  return std::tie(m.id, m.room_id, m.user_id, m.username, m.content, m.timestamp_ns, m.seq, m.cid, m.deleted);
}
auto fields(const ModerationAction& a) {
  return std::tie(a.id, a.room_id, a.actor_id, a.action, a.target_user_id, a.target_message_id, a.reason,
                  a.duration_seconds, a.at_ms);
}
auto fields(const Ban& b) {
  return std::tie(b.room_id, b.user_id, b.actor_id, b.reason, b.created_at_ms, b.expires_at_ms);
}

std::vector<std::uint64_t> seqs(const std::vector<Message>& messages) {
  std::vector<std::uint64_t> out;
  for (const auto& m : messages) out.push_back(m.seq);
  return out;
}

std::vector<std::string> ban_keys(std::vector<Ban> bans) {
  std::vector<std::string> out;
  for (const auto& b : bans) out.push_back(b.room_id + "/" + b.user_id);
  std::sort(out.begin(), out.end());
  return out;
}

// --- users -----------------------------------------------------------------------------

TEST_P(StoreConformance, CreatedUserIsFoundByIdAndEmailWithAllFields) {
  const User alice = make_user(1, "alice@example.com");
  ASSERT_TRUE(store().create_user(alice));

  const auto by_id = store().find_user_by_id(alice.id);
  ASSERT_TRUE(by_id.has_value());
  EXPECT_EQ(fields(*by_id), fields(alice));
  EXPECT_FALSE(by_id->login_time_ms.has_value());

  const auto by_email = store().find_user_by_email("alice@example.com");
  ASSERT_TRUE(by_email.has_value());
  EXPECT_EQ(fields(*by_email), fields(alice));
}

TEST_P(StoreConformance, MissingUserIsNotFound) {
  ASSERT_TRUE(store().create_user(make_user(1, "alice@example.com")));
  EXPECT_FALSE(store().find_user_by_id(oid(0x05e5, 99)).has_value());
  EXPECT_FALSE(store().find_user_by_email("bob@example.com").has_value());
}

TEST_P(StoreConformance, EmailLookupIsCaseInsensitiveAndKeepsRegisteredSpelling) {
  ASSERT_TRUE(store().create_user(make_user(1, "Alice.Smith@Example.COM")));
  for (const char* query : {"alice.smith@example.com", "ALICE.SMITH@EXAMPLE.COM", "Alice.Smith@Example.COM"}) {
    const auto found = store().find_user_by_email(query);
    ASSERT_TRUE(found.has_value()) << query;
    EXPECT_EQ(found->email, "Alice.Smith@Example.COM");
  }
}

TEST_P(StoreConformance, DuplicateEmailInAnyCaseIsRejected) {
  const User first = make_user(1, "alice@example.com");
  ASSERT_TRUE(store().create_user(first));
  EXPECT_FALSE(store().create_user(make_user(2, "alice@example.com")));
  EXPECT_FALSE(store().create_user(make_user(3, "ALICE@Example.com")));

  EXPECT_FALSE(store().find_user_by_id(oid(0x05e5, 2)).has_value());
  EXPECT_FALSE(store().find_user_by_id(oid(0x05e5, 3)).has_value());
  EXPECT_EQ(fields(*store().find_user_by_email("alice@example.com")), fields(first));
  EXPECT_TRUE(store().create_user(make_user(4, "alice2@example.com")));
}

TEST_P(StoreConformance, UpdatePasswordHash) {
  const User alice = make_user(1, "alice@example.com");
  ASSERT_TRUE(store().create_user(alice));
  EXPECT_TRUE(store().update_password_hash(alice.id, "$2b$12$newhash", kT0 + 5000));

  const auto found = store().find_user_by_id(alice.id);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->password_hash, "$2b$12$newhash");
  EXPECT_EQ(found->update_time_ms, kT0 + 5000);
  EXPECT_EQ(found->created_at_ms, alice.created_at_ms);

  EXPECT_FALSE(store().update_password_hash(oid(0x05e5, 99), "$2b$12$x", kT0));
}

TEST_P(StoreConformance, RecordLogin) {
  const User alice = make_user(1, "alice@example.com");
  ASSERT_TRUE(store().create_user(alice));
  EXPECT_TRUE(store().record_login(alice.id, kT0 + 7000, "203.0.113.7"));
  EXPECT_TRUE(store().record_login(alice.id, kT0 + 8000, "2001:db8::1"));

  const auto found = store().find_user_by_id(alice.id);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->login_time_ms, kT0 + 8000);
  EXPECT_EQ(found->login_ip, "2001:db8::1");
  EXPECT_EQ(found->password_hash, alice.password_hash);

  EXPECT_FALSE(store().record_login(oid(0x05e5, 99), kT0, "203.0.113.7"));
}

TEST_P(StoreConformance, SetRole) {
  const User alice = make_user(1, "alice@example.com");
  ASSERT_TRUE(store().create_user(alice));
  EXPECT_TRUE(store().set_role(alice.id, "moderator", kT0 + 9000));

  const auto found = store().find_user_by_id(alice.id);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->role, "moderator");
  EXPECT_EQ(found->update_time_ms, kT0 + 9000);

  EXPECT_FALSE(store().set_role(oid(0x05e5, 99), "admin", kT0));
}

// --- revoked tokens ------------------------------------------------------------------------

TEST_P(StoreConformance, ActiveRevocationsExcludeExpired) {
  EXPECT_TRUE(store().active_revocations(1000).empty());
  store().revoke_token("jti-old", 1100);
  store().revoke_token("jti-new", 1200);

  using Revocations = std::vector<std::pair<std::string, std::int64_t>>;
  EXPECT_EQ(sorted(store().active_revocations(1000)), (Revocations{{"jti-new", 1200}, {"jti-old", 1100}}));
  EXPECT_EQ(store().active_revocations(1150), (Revocations{{"jti-new", 1200}}));
  EXPECT_TRUE(store().active_revocations(1300).empty());
}

TEST_P(StoreConformance, RevokingTheSameTokenTwiceKeepsOneEntry) {
  store().revoke_token("jti-1", 1100);
  store().revoke_token("jti-1", 1100);
  EXPECT_EQ(store().active_revocations(1000).size(), 1u);
}

TEST_P(StoreConformance, TokenFloorsReplaceAndExpire) {
  EXPECT_TRUE(store().active_token_floors(1000).empty());
  store().put_token_floor({"user-a", 900, 1100});
  store().put_token_floor({"user-b", 950, 1200});
  store().put_token_floor({"user-a", 1050, 1300});  // a second change replaces the first

  auto floors = store().active_token_floors(1000);
  ASSERT_EQ(floors.size(), 2u);
  std::sort(floors.begin(), floors.end(), [](const auto& x, const auto& y) { return x.user_id < y.user_id; });
  EXPECT_EQ(floors[0].user_id, "user-a");
  EXPECT_EQ(floors[0].not_before_s, 1050);
  EXPECT_EQ(floors[0].expires_at_s, 1300);
  EXPECT_EQ(floors[1].user_id, "user-b");
  EXPECT_EQ(floors[1].not_before_s, 950);

  floors = store().active_token_floors(1250);
  ASSERT_EQ(floors.size(), 1u);
  EXPECT_EQ(floors[0].user_id, "user-a");
  EXPECT_TRUE(store().active_token_floors(1300).empty());
}

// --- rooms -----------------------------------------------------------------------------

TEST_P(StoreConformance, EnsureRoomCreatesOnce) {
  EXPECT_TRUE(store().ensure_room("general", kT0));
  EXPECT_FALSE(store().ensure_room("general", kT0 + 1000));

  const auto room = store().find_room("general");
  ASSERT_TRUE(room.has_value());
  EXPECT_EQ(room->room_id, "general");
  EXPECT_EQ(room->created_at_ms, kT0);
  EXPECT_EQ(room->slow_mode_seconds, 0);
  EXPECT_FALSE(store().find_room("random").has_value());
}

TEST_P(StoreConformance, ListRoomsIsOrderedByRoomId) {
  EXPECT_TRUE(store().list_rooms().empty());
  for (const char* id : {"zeta", "alpha", "mid", "Beta"}) ASSERT_TRUE(store().ensure_room(id, kT0));

  std::vector<std::string> ids;
  for (const auto& room : store().list_rooms()) ids.push_back(room.room_id);
  // Byte order: upper case before lower case.
  EXPECT_EQ(ids, (Strings{"Beta", "alpha", "mid", "zeta"}));
}

TEST_P(StoreConformance, SetSlowMode) {
  ASSERT_TRUE(store().ensure_room("general", kT0));
  EXPECT_TRUE(store().set_slow_mode("general", 30));
  EXPECT_EQ(store().find_room("general")->slow_mode_seconds, 30);
  EXPECT_TRUE(store().set_slow_mode("general", 0));
  EXPECT_EQ(store().find_room("general")->slow_mode_seconds, 0);
  EXPECT_FALSE(store().set_slow_mode("missing", 30));
  EXPECT_FALSE(store().find_room("missing").has_value());
}

// --- messages: history -----------------------------------------------------------------------

TEST_P(StoreConformance, HistoryIsNewestFirstWithLimitAndAllFields) {
  const auto batch = make_messages("general", 5);
  store().append_messages(batch);

  const auto page = store().history("general", 3, std::nullopt);
  ASSERT_EQ(seqs(page), (Seqs{5u, 4u, 3u}));
  EXPECT_EQ(fields(page[0]), fields(batch[4]));
  EXPECT_EQ(fields(page[2]), fields(batch[2]));

  EXPECT_EQ(seqs(store().history("general", 100, std::nullopt)), (Seqs{5u, 4u, 3u, 2u, 1u}));
}

TEST_P(StoreConformance, HistoryPagesWithBeforeSeq) {
  store().append_messages(make_messages("general", 5));
  EXPECT_EQ(seqs(store().history("general", 2, 4u)), (Seqs{3u, 2u}));
  EXPECT_EQ(seqs(store().history("general", 10, 3u)), (Seqs{2u, 1u}));
  EXPECT_TRUE(store().history("general", 10, 1u).empty());
  EXPECT_EQ(seqs(store().history("general", 10, 100u)), (Seqs{5u, 4u, 3u, 2u, 1u}));
}

TEST_P(StoreConformance, HistoryWithNonPositiveLimitIsEmpty) {
  store().append_messages(make_messages("general", 3));
  EXPECT_TRUE(store().history("general", 0, std::nullopt).empty());
  EXPECT_TRUE(store().history("general", -1, std::nullopt).empty());
}

TEST_P(StoreConformance, HistoryExcludesDeletedMessages) {
  store().append_messages(make_messages("general", 5));
  ASSERT_TRUE(store().delete_message("general", make_message("general", 4, "u1").id));
  EXPECT_EQ(seqs(store().history("general", 3, std::nullopt)), (Seqs{5u, 3u, 2u}));
  EXPECT_EQ(seqs(store().history("general", 10, 5u)), (Seqs{3u, 2u, 1u}));
}

TEST_P(StoreConformance, HistoryExcludesOtherRoomsAndEmptyRoomIsEmpty) {
  store().append_messages(make_messages("general", 3));
  store().append_messages(make_messages("random", 2));
  const auto general = store().history("general", 10, std::nullopt);
  EXPECT_EQ(seqs(general), (Seqs{3u, 2u, 1u}));
  for (const auto& m : general) EXPECT_EQ(m.room_id, "general");
  EXPECT_EQ(seqs(store().history("random", 10, std::nullopt)), (Seqs{2u, 1u}));
  EXPECT_TRUE(store().history("empty", 10, std::nullopt).empty());
}

TEST_P(StoreConformance, BatchesAccumulateAndEmptyBatchIsHarmless) {
  auto messages = make_messages("general", 4);
  store().append_messages(std::span(messages).first(2));
  store().append_messages({});
  store().append_messages(std::span(messages).subspan(2));
  EXPECT_EQ(seqs(store().history("general", 10, std::nullopt)), (Seqs{4u, 3u, 2u, 1u}));
}

/// Appends seq 3, 4, `clash`, 5, 6 over stored seq 1, 2: the clash is refused, and the
/// store must hold exactly the prefix the PartialAppend reports (a backend may keep it,
/// as an ordered insert_many does, or roll the batch back, as a transaction does).
void expect_failed_append_leaves_what_it_reports(Store& store, const Message& clash) {
  const auto before = make_messages("general", 2);
  store.append_messages(before);
  const std::vector<Message> batch{make_message("general", 3, "u1"), make_message("general", 4, "u1"), clash,
                                   make_message("general", 5, "u1"), make_message("general", 6, "u1")};
  std::optional<PartialAppend> failure;
  try {
    store.append_messages(batch);
  } catch (const PartialAppend& e) {
    failure = e;
  }
  ASSERT_TRUE(failure.has_value()) << "a refused message fails the append with PartialAppend";
  EXPECT_EQ(failure->rest(), PartialAppend::Rest::not_stored) << "a refusal is not a lost connection";
  ASSERT_LE(failure->stored(), 2u) << "nothing from the refused message on is stored";

  Seqs expected{2u, 1u};
  for (std::size_t i = 0; i < failure->stored(); ++i) expected.insert(expected.begin(), batch[i].seq);
  const auto stored = store.history("general", 10, std::nullopt);
  EXPECT_EQ(seqs(stored), expected);
  // The clash replaced nothing: what was stored before is as it was.
  ASSERT_GE(stored.size(), 2u);
  EXPECT_EQ(fields(stored[stored.size() - 2]), fields(before[1]));
  EXPECT_EQ(fields(stored.back()), fields(before[0]));

  // "Not stored" means it: the rest of the batch, less the clash, now goes in without a clash.
  std::vector<Message> rest;
  for (std::size_t i = failure->stored(); i < batch.size(); ++i) {
    if (i != 2) rest.push_back(batch[i]);
  }
  store.append_messages(rest);
  EXPECT_EQ(seqs(store.history("general", 10, std::nullopt)), (Seqs{6u, 5u, 4u, 3u, 2u, 1u}));
}

TEST_P(StoreConformance, AnAppendFailingOnADuplicateSeqLeavesWhatItReports) {
  auto clash = make_message("general", 2, "u2", "same seq as a stored message");
  clash.id = oid(0xc1a5, 1);
  expect_failed_append_leaves_what_it_reports(store(), clash);
}

TEST_P(StoreConformance, AnAppendFailingOnADuplicateIdLeavesWhatItReports) {
  auto clash = make_message("general", 7, "u2", "same id as a stored message");
  clash.id = make_message("general", 1, "u1").id;
  expect_failed_append_leaves_what_it_reports(store(), clash);
}

TEST_P(StoreConformance, MaxSeqIsHighestStoredIncludingDeleted) {
  EXPECT_EQ(store().max_seq("general"), 0u);
  store().append_messages(make_messages("general", 7));
  store().append_messages(make_messages("random", 2));
  EXPECT_EQ(store().max_seq("general"), 7u);
  EXPECT_EQ(store().max_seq("random"), 2u);
  ASSERT_EQ(store().clear_room("general"), 7);
  EXPECT_EQ(store().max_seq("general"), 7u);
}

// --- messages: idempotency and deletion ---------------------------------------------------------

TEST_P(StoreConformance, AStoreThatRefusesStoredCidsNamesTheOriginal) {
  if (!store().refuses_duplicate_cids()) GTEST_SKIP() << "this store is asked with find_by_cids first";
  const Message sent = make_message("general", 1, "u1", "hello", "cid-1");
  store().append_messages(std::vector<Message>{sent});
  auto resend = make_message("general", 3, "u1", "hello again", "cid-1");
  const std::vector<Message> batch{make_message("general", 2, "u1", "fresh", "cid-2"), resend,
                                   make_message("general", 4, "u2", "other user, same cid", "cid-1")};
  std::optional<PartialAppend> failure;
  try {
    store().append_messages(batch);
  } catch (const PartialAppend& e) {
    failure = e;
  }
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->stored(), 1u);
  EXPECT_EQ(failure->rest(), PartialAppend::Rest::not_stored);
  ASSERT_NE(failure->duplicate_of(), nullptr);
  EXPECT_EQ(fields(*failure->duplicate_of()), fields(sent));
  store().append_messages(std::span(batch).subspan(2));
  EXPECT_EQ(seqs(store().history("general", 10, std::nullopt)), (Seqs{4u, 2u, 1u}));
}

TEST_P(StoreConformance, FindByCidMatchesRoomUserAndCid) {
  const Message sent = make_message("general", 1, "u1", "hello", "cid-1");
  store().append_messages(std::vector<Message>{sent, make_message("general", 2, "u2", "hi", "cid-1"),
                                               make_message("general", 3, "u1"), make_message("general", 4, "u1")});

  const std::vector<CidKey> keys{{"general", "u1", "cid-2"}, {"general", "u1", "cid-1"}, {"general", "u2", "cid-1"},
                                 {"random", "u1", "cid-1"},  {"general", "u3", "cid-1"}, {"general", "u1", ""},
                                 {"general", "u1", "cid-1"}};
  const auto found = store().find_by_cids(keys);
  ASSERT_EQ(found.size(), keys.size());
  EXPECT_FALSE(found[0].has_value());
  ASSERT_TRUE(found[1].has_value());
  EXPECT_EQ(fields(*found[1]), fields(sent));
  ASSERT_TRUE(found[2].has_value());
  EXPECT_EQ(found[2]->seq, 2u);
  EXPECT_FALSE(found[3].has_value());
  EXPECT_FALSE(found[4].has_value());
  EXPECT_FALSE(found[5].has_value()) << "an empty cid never matches";
  ASSERT_TRUE(found[6].has_value()) << "a key asked twice is answered twice";
  EXPECT_EQ(found[6]->seq, 1u);
  EXPECT_TRUE(store().find_by_cids({}).empty());
}

TEST_P(StoreConformance, DeleteMessageOnlyOnceAndOnlyInItsRoom) {
  store().append_messages(make_messages("general", 2));
  const std::string id = make_message("general", 1, "u1").id;
  EXPECT_FALSE(store().delete_message("random", id));
  EXPECT_TRUE(store().delete_message("general", id));
  EXPECT_FALSE(store().delete_message("general", id));
  EXPECT_FALSE(store().delete_message("general", oid(0xdead, 1)));
  EXPECT_EQ(seqs(store().history("general", 10, std::nullopt)), (Seqs{2u}));
}

TEST_P(StoreConformance, PurgeDeletesTheUsersNewestMessagesOnly) {
  std::vector<Message> batch;
  // seq:  1  2  3  4  5  6  7
  // user: A  B  A  A  B  A  A   (and A also writes in another room)
  const char* users[] = {"A", "B", "A", "A", "B", "A", "A"};
  for (std::uint64_t seq = 1; seq <= 7; ++seq) batch.push_back(make_message("general", seq, users[seq - 1]));
  store().append_messages(batch);
  store().append_messages(make_messages("random", 2, "A"));

  const auto purged = store().purge_user_messages("general", "A", 3);
  EXPECT_EQ(sorted(purged), sorted(Strings{batch[6].id, batch[5].id, batch[3].id}));
  EXPECT_EQ(seqs(store().history("general", 10, std::nullopt)), (Seqs{5u, 3u, 2u, 1u}));
  EXPECT_EQ(seqs(store().history("random", 10, std::nullopt)), (Seqs{2u, 1u}));

  // Already-deleted messages are not purged again.
  EXPECT_EQ(sorted(store().purge_user_messages("general", "A", 10)), sorted(Strings{batch[2].id, batch[0].id}));
  EXPECT_TRUE(store().purge_user_messages("general", "A", 10).empty());
  EXPECT_TRUE(store().purge_user_messages("general", "nobody", 10).empty());
  EXPECT_EQ(seqs(store().history("general", 10, std::nullopt)), (Seqs{5u, 2u}));
}

TEST_P(StoreConformance, ClearRoomDeletesEveryMessageOfThatRoom) {
  store().append_messages(make_messages("general", 4));
  store().append_messages(make_messages("random", 2));
  ASSERT_TRUE(store().delete_message("general", make_message("general", 2, "u1").id));

  EXPECT_EQ(store().clear_room("general"), 3);
  EXPECT_TRUE(store().history("general", 10, std::nullopt).empty());
  EXPECT_EQ(seqs(store().history("random", 10, std::nullopt)), (Seqs{2u, 1u}));
  EXPECT_EQ(store().clear_room("general"), 0);
  EXPECT_EQ(store().clear_room("empty"), 0);
}

// --- moderation log ----------------------------------------------------------------------------

TEST_P(StoreConformance, ModerationLogIsNewestFirstWithLimit) {
  const auto first = make_action(oid(0x0a, 1), "general", "ban", kT0 + 1000);
  const auto second = make_action(oid(0x0a, 2), "general", "timeout", kT0 + 2000);
  const auto third = make_action(oid(0x0a, 3), "general", "delete", kT0 + 3000);
  // Recorded out of time order: the log is ordered by time, not by insertion.
  store().record_moderation(second);
  store().record_moderation(third);
  store().record_moderation(first);

  const auto log = store().moderation_log("general", 2);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(fields(log[0]), fields(third));
  EXPECT_EQ(fields(log[1]), fields(second));
  EXPECT_EQ(store().moderation_log("general", 10).size(), 3u);
  EXPECT_TRUE(store().moderation_log("general", 0).empty());
}

TEST_P(StoreConformance, ModerationLogSeparatesRoomsAndGlobal) {
  store().record_moderation(make_action(oid(0x0a, 1), "general", "ban", kT0 + 1000));
  store().record_moderation(make_action(oid(0x0a, 2), "", "role", kT0 + 2000));
  store().record_moderation(make_action(oid(0x0a, 3), "random", "clear", kT0 + 3000));

  const auto global = store().moderation_log("", 10);
  ASSERT_EQ(global.size(), 1u);
  EXPECT_EQ(global[0].action, "role");
  const auto general = store().moderation_log("general", 10);
  ASSERT_EQ(general.size(), 1u);
  EXPECT_EQ(general[0].action, "ban");
  EXPECT_TRUE(store().moderation_log("quiet", 10).empty());
}

// --- bans ----------------------------------------------------------------------------------

TEST_P(StoreConformance, PutBanReplacesTheExistingBan) {
  store().put_ban(make_ban("general", "u1", kT0 + 60'000));
  Ban replacement{"general", "u1", "mod2", "flooding", kT0 + 10, 0};
  store().put_ban(replacement);

  const auto bans = store().active_bans("general", kT0 + 120'000);
  ASSERT_EQ(bans.size(), 1u);
  EXPECT_EQ(fields(bans[0]), fields(replacement));
}

TEST_P(StoreConformance, RemoveBan) {
  store().put_ban(make_ban("general", "u1", 0));
  store().put_ban(make_ban("", "u1", 0));
  EXPECT_FALSE(store().remove_ban("random", "u1"));
  EXPECT_TRUE(store().remove_ban("general", "u1"));
  EXPECT_FALSE(store().remove_ban("general", "u1"));
  EXPECT_TRUE(store().active_bans("general", kT0).empty());
  EXPECT_EQ(store().active_bans("", kT0).size(), 1u);
}

TEST_P(StoreConformance, ActiveBansIncludePermanentAndExcludeExpired) {
  const Ban permanent = make_ban("general", "forever", 0);
  store().put_ban(permanent);
  store().put_ban(make_ban("general", "short", kT0 + 1000));
  store().put_ban(make_ban("general", "long", kT0 + 100'000));
  store().put_ban(make_ban("random", "other-room", 0));
  store().put_ban(make_ban("", "global", 0));

  EXPECT_EQ(ban_keys(store().active_bans("general", kT0)),
            (std::vector<std::string>{"general/forever", "general/long", "general/short"}));
  EXPECT_EQ(ban_keys(store().active_bans("general", kT0 + 50'000)),
            (std::vector<std::string>{"general/forever", "general/long"}));
  const auto later = store().active_bans("general", kT0 + 200'000);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(fields(later[0]), fields(permanent));
  EXPECT_EQ(ban_keys(store().active_bans("", kT0)), (std::vector<std::string>{"/global"}));
  EXPECT_TRUE(store().active_bans("quiet", kT0).empty());
}

TEST_P(StoreConformance, AllActiveBansSpanRoomsAndGlobal) {
  EXPECT_TRUE(store().all_active_bans(kT0).empty());
  store().put_ban(make_ban("general", "u1", 0));
  store().put_ban(make_ban("general", "u2", kT0 + 1000));
  store().put_ban(make_ban("random", "u1", kT0 + 100'000));
  store().put_ban(make_ban("", "u3", 0));
  store().put_ban(make_ban("", "u4", kT0 + 1000));

  EXPECT_EQ(ban_keys(store().all_active_bans(kT0)),
            (std::vector<std::string>{"/u3", "/u4", "general/u1", "general/u2", "random/u1"}));
  EXPECT_EQ(ban_keys(store().all_active_bans(kT0 + 50'000)),
            (std::vector<std::string>{"/u3", "general/u1", "random/u1"}));
}

// --- content fidelity ------------------------------------------------------------------------

TEST_P(StoreConformance, UnicodeRoundTripsByteExact) {
  const std::string content =
      "emoji \xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD family \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9"
      "\xE2\x80\x8D\xF0\x9F\x91\xA7 CJK \xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C \xE3\x81\x93\xE3\x82\x93"
      " combining e\xCC\x81 RTL \xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D";
  Message m = make_message("\xE6\x88\xBF\xE9\x97\xB4", 1, "u1", content, "\xF0\x9F\x94\x91");
  m.username = "\xE7\x94\xA8\xE6\x88\xB7\xF0\x9F\x90\xB1";
  store().append_messages(std::vector<Message>{m});

  const auto page = store().history(m.room_id, 1, std::nullopt);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(fields(page[0]), fields(m));
  EXPECT_EQ(page[0].content.size(), content.size());
  const std::vector<CidKey> key{{m.room_id, "u1", m.cid}};
  ASSERT_TRUE(store().find_by_cids(key).at(0).has_value());

  User u = make_user(1,
                     "\xC3\xBC"
                     "ber@example.com");
  u.username = m.username;
  ASSERT_TRUE(store().create_user(u));
  EXPECT_EQ(fields(*store().find_user_by_email(u.email)), fields(u));
}

TEST_P(StoreConformance, SqlAndQueryMetacharactersAreStoredVerbatim) {
  const std::string content =
      R"(Robert'); DROP TABLE messages;-- "quoted" \back\slash 100% _under_ `tick` $where {"$gt": ""} ? ?1 :name)";
  store().append_messages(std::vector<Message>{make_message("general", 1, "u1", content, "x'; --")});
  const auto page = store().history("general", 10, std::nullopt);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].content, content);
  const std::vector<CidKey> key{{"general", "u1", "x'; --"}};
  EXPECT_TRUE(store().find_by_cids(key).at(0).has_value());

  ASSERT_TRUE(store().create_user(make_user(1, "o'brien+tag@example.com")));
  EXPECT_TRUE(store().find_user_by_email("O'Brien+tag@example.com").has_value());
  // Wildcards in a lookup are literal characters, not patterns.
  EXPECT_FALSE(store().find_user_by_email("%@example.com").has_value());
  EXPECT_FALSE(store().find_user_by_email("o_brien+tag@example.com").has_value());
  EXPECT_FALSE(store().find_user_by_email(".*").has_value());
}

}  // namespace
}  // namespace chatorbit::store
