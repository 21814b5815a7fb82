#include "chat/pipeline.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <future>
#include <mutex>

#include "engine/memory/memory_engine.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace chatorbit::chat {
namespace {

namespace asio = boost::asio;

store::Message draft(std::string id, std::string room, std::string cid = {}) {
  store::Message m;
  m.id = std::move(id);
  m.room_id = std::move(room);
  m.user_id = "u1";
  m.username = "alice";
  m.content = "hi " + m.id;
  m.timestamp_ns = 1;
  m.cid = std::move(cid);
  return m;
}

struct Fixture {
  explicit Fixture(std::unique_ptr<store::Store> s = store::SqliteStore::open(":memory:")) : worker(std::move(s)) {}
  ManualClock clock;
  engine::MemoryEngine engine{clock};
  store::StoreWorker worker;
  std::mutex mu;
  std::vector<store::Message> published;  // in publication order
  MessagePipeline pipeline{worker, engine, [this](const store::Message& m, engine::PublishDone done) {
                             {
                               std::lock_guard lock(mu);
                               published.push_back(m);
                             }
                             done(refuse_publish ? "broker down" : "");
                           }};
  bool refuse_publish = false;
};

asio::awaitable<void> submit_all(MessagePipeline& p, std::vector<store::Message> drafts, std::vector<PostResult>& out) {
  for (auto& d : drafts) out.push_back(co_await p.submit(std::move(d)));
}

TEST(MessagePipeline, NumbersStoresAndPublishesInSequenceOrder) {
  Fixture f;
  asio::io_context ctx;
  std::vector<PostResult> a, b;
  std::vector<store::Message> da, db;
  for (int i = 0; i < 50; ++i) {
    da.push_back(draft("a" + std::to_string(i), "room"));
    db.push_back(draft("b" + std::to_string(i), "room"));
  }
  asio::co_spawn(ctx, submit_all(f.pipeline, std::move(da), a), asio::detached);
  asio::co_spawn(ctx, submit_all(f.pipeline, std::move(db), b), asio::detached);
  ctx.run();
  f.worker.shutdown();

  ASSERT_EQ(a.size(), 50u);
  ASSERT_EQ(b.size(), 50u);
  ASSERT_EQ(f.published.size(), 100u);
  for (std::size_t i = 0; i < f.published.size(); ++i) {
    EXPECT_EQ(f.published[i].seq, i + 1) << "published in seq order, no gaps";
  }
  // Each sender's own messages keep the order it sent them in.
  for (std::size_t i = 1; i < a.size(); ++i) EXPECT_LT(a[i - 1].seq, a[i].seq);
  for (std::size_t i = 1; i < b.size(); ++i) EXPECT_LT(b[i - 1].seq, b[i].seq);
  EXPECT_EQ(f.pipeline.stored(), 100u);
}

TEST(MessagePipeline, ResendWithTheSameCidIsAcknowledgedNotStored) {
  Fixture f;
  asio::io_context ctx;
  std::vector<PostResult> results;
  std::vector<store::Message> drafts{draft("m1", "room", "c-1"), draft("m2", "room", "c-1"), draft("m3", "room")};
  asio::co_spawn(ctx, submit_all(f.pipeline, std::move(drafts), results), asio::detached);
  ctx.run();
  f.worker.shutdown();

  ASSERT_EQ(results.size(), 3u);
  EXPECT_FALSE(results[0].duplicate);
  EXPECT_TRUE(results[1].duplicate);
  EXPECT_EQ(results[1].id, "m1") << "the resend learns the original's id";
  EXPECT_EQ(results[1].seq, results[0].seq);
  EXPECT_EQ(results[2].seq, results[0].seq + 1) << "a resend uses no sequence number";
  EXPECT_EQ(f.published.size(), 2u);
}

TEST(MessagePipeline, SequencesResumeAboveWhatTheStoreHolds) {
  Fixture f;
  // Messages stored by an earlier process: the fresh engine must not reuse 1..7.
  std::vector<store::Message> old;
  for (int i = 1; i <= 7; ++i) {
    auto m = draft("old" + std::to_string(i), "room");
    m.seq = static_cast<std::uint64_t>(i);
    old.push_back(m);
  }
  f.worker.unsafe_store().append_messages(old);
  asio::io_context ctx;
  std::vector<PostResult> results;
  asio::co_spawn(ctx, submit_all(f.pipeline, {draft("new", "room")}, results), asio::detached);
  ctx.run();
  f.worker.shutdown();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].seq, 8u);
}

TEST(MessagePipeline, APublicationTheBrokerRefusedIsReportedToItsSender) {
  Fixture f;
  f.refuse_publish = true;
  asio::io_context ctx;
  std::vector<PostResult> results;
  asio::co_spawn(ctx, submit_all(f.pipeline, {draft("m1", "room")}, results), asio::detached);
  ctx.run();
  f.worker.shutdown();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].seq, 1u) << "stored all the same";
  EXPECT_FALSE(results[0].published);
  EXPECT_EQ(f.pipeline.publish_failures(), 1u);
  EXPECT_EQ(f.pipeline.stored(), 1u);
}

TEST(MessagePipeline, AnEngineThatForgetsItsCountersMidLifeDoesNotReuseASeq) {
  Fixture f;
  asio::io_context ctx;
  std::vector<PostResult> first, second;
  asio::co_spawn(ctx, submit_all(f.pipeline, {draft("a", "room"), draft("b", "room"), draft("c", "other")}, first),
                 asio::detached);
  ctx.run();
  f.engine.forget_sequences();  // as a Redis restarted without persistence
  ctx.restart();
  asio::co_spawn(ctx, submit_all(f.pipeline, {draft("d", "room"), draft("e", "other")}, second), asio::detached);
  ctx.run();
  f.worker.shutdown();
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0].seq, 3u);
  EXPECT_EQ(second[1].seq, 2u);
}

// --- a failed append ---------------------------------------------------------------------

using Rest = store::PartialAppend::Rest;

/// A real SQLite store whose appends can be made to fail part-way, as a MongoDB ordered
/// insert_many does: the first `keep` messages of the batch are stored, then PartialAppend
/// (keep, rest) is thrown. With Rest::unknown (a connection lost mid-call) `also_stored`
/// more of the rest went in all the same, unbeknown to the caller. Everything else is
/// the real store's.
class FailingAppendStore final : public store::Store {
 public:
  struct Failure {
    std::size_t keep = 0;
    Rest rest = Rest::not_stored;
    std::size_t also_stored = 0;
  };
  /// The next append fails as `failure` says; set before the pipeline's batch runs.
  void fail_next_append(Failure failure) { failure_ = failure; }
  /// Behave as MongoStore does (refuses_duplicate_cids): an append refuses a message
  /// whose cid is stored, naming the stored one.
  void refuse_stored_cids() { refuse_cids_ = true; }
  std::size_t cid_lookups() const { return cid_lookups_; }

  bool refuses_duplicate_cids() const override { return refuse_cids_; }

  void append_messages(std::span<const store::Message> batch) override {
    if (refuse_cids_) {
      for (std::size_t i = 0; i < batch.size(); ++i) {
        const store::CidKey key{batch[i].room_id, batch[i].user_id, batch[i].cid};
        if (batch[i].cid.empty()) continue;
        if (auto stored = real_->find_by_cids(std::span(&key, 1)).at(0)) {
          real_->append_messages(batch.first(i));
          throw store::PartialAppend(i, "injected: a stored cid", std::move(*stored));
        }
      }
    }
    if (!failure_) return real_->append_messages(batch);
    const auto f = *failure_;
    failure_.reset();
    real_->append_messages(batch.first(std::min(batch.size(), f.keep + f.also_stored)));
    throw store::PartialAppend(f.keep, f.rest, "injected: the append failed after " + std::to_string(f.keep));
  }

  bool create_user(const store::User& u) override { return real_->create_user(u); }
  std::optional<store::User> find_user_by_email(std::string_view e) override { return real_->find_user_by_email(e); }
  std::optional<store::User> find_user_by_id(std::string_view id) override { return real_->find_user_by_id(id); }
  bool update_password_hash(std::string_view u, std::string_view h, std::int64_t t) override {
    return real_->update_password_hash(u, h, t);
  }
  bool record_login(std::string_view u, std::int64_t t, std::string_view ip) override {
    return real_->record_login(u, t, ip);
  }
  bool set_role(std::string_view u, std::string_view r, std::int64_t t) override { return real_->set_role(u, r, t); }
  void revoke_token(std::string_view j, std::int64_t t) override { real_->revoke_token(j, t); }
  std::vector<std::pair<std::string, std::int64_t>> active_revocations(std::int64_t t) override {
    return real_->active_revocations(t);
  }
  void put_token_floor(const store::TokenFloor& f) override { real_->put_token_floor(f); }
  std::vector<store::TokenFloor> active_token_floors(std::int64_t t) override { return real_->active_token_floors(t); }
  bool ensure_room(std::string_view r, std::int64_t t) override { return real_->ensure_room(r, t); }
  std::optional<store::Room> find_room(std::string_view r) override { return real_->find_room(r); }
  std::vector<store::Room> list_rooms() override { return real_->list_rooms(); }
  bool set_slow_mode(std::string_view r, int s) override { return real_->set_slow_mode(r, s); }
  std::vector<store::Message> history(std::string_view r, int n, std::optional<std::uint64_t> b) override {
    return real_->history(r, n, b);
  }
  std::uint64_t max_seq(std::string_view r) override { return real_->max_seq(r); }
  std::vector<std::optional<store::Message>> find_by_cids(std::span<const store::CidKey> k) override {
    ++cid_lookups_;
    return real_->find_by_cids(k);
  }
  bool delete_message(std::string_view r, std::string_view m) override { return real_->delete_message(r, m); }
  std::vector<std::string> purge_user_messages(std::string_view r, std::string_view u, int n) override {
    return real_->purge_user_messages(r, u, n);
  }
  std::int64_t clear_room(std::string_view r) override { return real_->clear_room(r); }
  void record_moderation(const store::ModerationAction& a) override { real_->record_moderation(a); }
  std::vector<store::ModerationAction> moderation_log(std::string_view r, int n) override {
    return real_->moderation_log(r, n);
  }
  void put_ban(const store::Ban& b) override { real_->put_ban(b); }
  bool remove_ban(std::string_view r, std::string_view u) override { return real_->remove_ban(r, u); }
  std::vector<store::Ban> active_bans(std::string_view r, std::int64_t t) override { return real_->active_bans(r, t); }
  std::vector<store::Ban> all_active_bans(std::int64_t t) override { return real_->all_active_bans(t); }

 private:
  std::unique_ptr<store::Store> real_ = store::SqliteStore::open(":memory:");
  std::optional<Failure> failure_;
  bool refuse_cids_ = false;
  std::size_t cid_lookups_ = 0;
};

/// A Fixture over a FailingAppendStore, which `failing` points to.
struct FailingFixture {
  FailingFixture() {
    auto s = std::make_unique<FailingAppendStore>();
    store = s.get();
    f = std::make_unique<Fixture>(std::move(s));
  }
  FailingAppendStore* store = nullptr;
  std::unique_ptr<Fixture> f;
};

struct Outcome {
  std::exception_ptr error;
  PostResult result;
};

/// Submits `drafts` as one batch (the messages lane is held until all are enqueued) and
/// returns what each sender heard.
/// `may_be_resend` is what the caller tells enqueue() for every message.
std::vector<Outcome> submit_one_batch(Fixture& f, std::vector<store::Message> drafts, bool may_be_resend = true) {
  asio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  std::promise<void> go;
  auto gate = go.get_future().share();
  auto hold = [gate](store::Store&) { gate.wait(); };
  f.worker.post(store::Lane::messages, std::move(hold));
  std::vector<Outcome> out(drafts.size());
  std::size_t done = 0;
  for (std::size_t i = 0; i < drafts.size(); ++i) {
    f.pipeline.enqueue(
        std::move(drafts[i]), ctx.get_executor(),
        [&out, &done, &guard, i, n = drafts.size()](std::exception_ptr e, PostResult r) {
          out[i] = {e, std::move(r)};
          if (++done == n) guard.reset();
        },
        may_be_resend);
  }
  go.set_value();
  ctx.run();
  return out;
}

/// The rest() of the PartialAppend in `e`; fails the test if `e` is something else.
std::optional<Rest> rest_of(const std::exception_ptr& e) {
  if (!e) return std::nullopt;
  try {
    std::rethrow_exception(e);
  } catch (const store::PartialAppend& p) {
    return p.rest();
  } catch (...) {
    ADD_FAILURE() << "a sender got something other than PartialAppend";
  }
  return std::nullopt;
}

std::vector<std::string> ids(const std::vector<store::Message>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) out.push_back(m.id);
  return out;
}

/// The ids the store holds for `room`, newest first, read on the messages lane (after
/// the batches before it; the worker must not be shut down yet).
std::vector<std::string> stored_ids(Fixture& f, const std::string& room) {
  std::promise<std::vector<store::Message>> read;
  auto job = [&read, &room](store::Store& s) { read.set_value(s.history(room, 100, std::nullopt)); };
  f.worker.post(store::Lane::messages, std::move(job));
  return ids(read.get_future().get());
}

TEST(MessagePipeline, AFailedAppendAcknowledgesAndPublishesTheStoredPrefixOnly) {
  FailingFixture ff;
  auto& f = *ff.f;
  ff.store->fail_next_append({2, Rest::not_stored});
  std::vector<store::Message> drafts;
  for (int i = 0; i < 5; ++i) drafts.push_back(draft("m" + std::to_string(i), "room", "c" + std::to_string(i)));
  const auto out = submit_one_batch(f, std::move(drafts));
  const auto rows = stored_ids(f, "room");
  f.worker.shutdown();

  ASSERT_EQ(out.size(), 5u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_FALSE(out[i].error) << "message " << i << " is stored: its sender gets the ack";
    EXPECT_EQ(out[i].result.id, "m" + std::to_string(i));
    EXPECT_EQ(out[i].result.seq, i + 1);
    EXPECT_FALSE(out[i].result.duplicate);
  }
  for (std::size_t i = 2; i < 5; ++i) EXPECT_EQ(rest_of(out[i].error), Rest::not_stored) << "message " << i;
  EXPECT_EQ(ids(f.published), (std::vector<std::string>{"m0", "m1"})) << "nothing unstored is published";
  EXPECT_EQ(rows, (std::vector<std::string>{"m1", "m0"}));
  EXPECT_EQ(f.pipeline.stored(), 2u);
  EXPECT_EQ(f.pipeline.unstored(), 3u);
}

TEST(MessagePipeline, AStoreThatRefusesStoredCidsIsNotAskedFirstAndItsRefusalsAreAcknowledged) {
  FailingFixture ff;
  auto& f = *ff.f;
  ff.store->refuse_stored_cids();
  const auto first = submit_one_batch(f, {draft("old", "room", "c-old"), draft("old-b", "room", "c-old-b")}, false);
  ASSERT_FALSE(first[0].error);
  // Two resends of stored messages among fresh ones, and a resend of one of them, none of
  // them said to be possible resends (a client resending long after it sent).
  const auto out =
      submit_one_batch(f,
                       {draft("a", "room", "c-a"), draft("old2", "room", "c-old"), draft("b", "room", "c-b"),
                        draft("old-b2", "room", "c-old-b"), draft("old3", "room", "c-old"), draft("c", "room", "c-c")},
                       false);
  const auto rows = stored_ids(f, "room");
  const std::size_t lookups = ff.store->cid_lookups();  // read before shutdown() closes the store
  f.worker.shutdown();

  EXPECT_EQ(lookups, 0u) << "no lookup before an append; the store's own are in the store";
  EXPECT_EQ(f.pipeline.cid_lookups(), 0u);
  EXPECT_EQ(f.pipeline.resends_refused(), 2u) << "old2 and old-b2; old3 is old2's resend within the batch";
  ASSERT_EQ(out.size(), 6u);
  for (std::size_t i : {0u, 2u, 5u}) {
    ASSERT_FALSE(out[i].error) << i;
    EXPECT_FALSE(out[i].result.duplicate) << i;
  }
  for (std::size_t i : {1u, 4u}) {
    ASSERT_FALSE(out[i].error) << i;
    EXPECT_TRUE(out[i].result.duplicate) << i;
    EXPECT_EQ(out[i].result.id, "old");
    EXPECT_EQ(out[i].result.seq, first[0].result.seq);
  }
  ASSERT_FALSE(out[3].error);
  EXPECT_EQ(out[3].result.id, "old-b");
  EXPECT_EQ(rows, (std::vector<std::string>{"c", "b", "a", "old-b", "old"})) << "nothing stored twice";
  EXPECT_EQ(ids(f.published), (std::vector<std::string>{"old", "old-b", "a", "b", "c"}));
  EXPECT_LT(out[2].result.seq, out[5].result.seq);
}

// On such a store, a post that may be a resend (a connection's first, or a cid it sent
// before) is still looked up before numbering: it is acknowledged with its original and
// takes no seq, so the room's numbers stay without a gap.
TEST(MessagePipeline, APossibleResendIsLookedUpFirstEvenWhereTheStoreWouldRefuseIt) {
  FailingFixture ff;
  auto& f = *ff.f;
  ff.store->refuse_stored_cids();
  const auto first = submit_one_batch(f, {draft("old", "room", "c-old")}, false);
  ASSERT_FALSE(first[0].error);
  ASSERT_EQ(first[0].result.seq, 1u);
  const auto resent = submit_one_batch(f, {draft("old2", "room", "c-old"), draft("new", "room", "c-new")}, true);
  const std::size_t lookups = ff.store->cid_lookups();
  f.worker.shutdown();

  EXPECT_EQ(lookups, 1u) << "one lookup for the batch";
  EXPECT_EQ(f.pipeline.cid_lookups(), 2u) << "both messages asked about";
  EXPECT_EQ(f.pipeline.resends_refused(), 0u);
  ASSERT_FALSE(resent[0].error);
  EXPECT_TRUE(resent[0].result.duplicate);
  EXPECT_EQ(resent[0].result.id, "old");
  EXPECT_EQ(resent[0].result.seq, 1u);
  ASSERT_FALSE(resent[1].error);
  EXPECT_EQ(resent[1].result.seq, 2u) << "the resend took no number";
}

TEST(MessagePipeline, ResendsInAFailedBatchShareTheirOriginalsFate) {
  FailingFixture ff;
  auto& f = *ff.f;
  // An earlier batch stored c-old; this one fails after its first fresh message.
  const auto first = submit_one_batch(f, {draft("old", "room", "c-old")});
  ASSERT_FALSE(first[0].error);
  ff.store->fail_next_append({1, Rest::not_stored});
  const auto out =
      submit_one_batch(f, {draft("a", "room", "c-a"), draft("b", "room", "c-b"), draft("a2", "room", "c-a"),
                           draft("b2", "room", "c-b"), draft("old2", "room", "c-old")});
  f.worker.shutdown();

  ASSERT_EQ(out.size(), 5u);
  EXPECT_FALSE(out[0].error);
  EXPECT_EQ(rest_of(out[1].error), Rest::not_stored);
  ASSERT_FALSE(out[2].error) << "a resend of a stored message is acknowledged";
  EXPECT_EQ(out[2].result.id, "a");
  EXPECT_EQ(out[2].result.seq, out[0].result.seq);
  EXPECT_TRUE(out[2].result.duplicate);
  EXPECT_EQ(rest_of(out[3].error), Rest::not_stored) << "a resend of an unstored message is not";
  ASSERT_FALSE(out[4].error) << "stored by an earlier batch: the failure does not concern it";
  EXPECT_EQ(out[4].result.id, "old");
  EXPECT_TRUE(out[4].result.duplicate);
  EXPECT_EQ(ids(f.published), (std::vector<std::string>{"old", "a"}));
}

TEST(MessagePipeline, AMessageOfUnknownOutcomeIsAnErrorAndItsResendFindsTheStoredOne) {
  FailingFixture ff;
  auto& f = *ff.f;
  // The connection is lost after m0 was acknowledged; m1 went in regardless, m2 did not.
  ff.store->fail_next_append({1, Rest::unknown, 1});
  const auto out =
      submit_one_batch(f, {draft("m0", "room", "c0"), draft("m1", "room", "c1"), draft("m2", "room", "c2")});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_FALSE(out[0].error);
  EXPECT_EQ(rest_of(out[1].error), Rest::unknown);
  EXPECT_EQ(rest_of(out[2].error), Rest::unknown);
  EXPECT_EQ(ids(f.published), (std::vector<std::string>{"m0"})) << "not known to be stored: not published";

  // The senders resend with the same cids (and, as a client does, new ids).
  const auto again = submit_one_batch(f, {draft("m1-again", "room", "c1"), draft("m2-again", "room", "c2")});
  const auto rows = stored_ids(f, "room");
  f.worker.shutdown();
  ASSERT_EQ(again.size(), 2u);
  ASSERT_FALSE(again[0].error);
  EXPECT_TRUE(again[0].result.duplicate) << "m1 was stored after all: acknowledged, not stored again";
  EXPECT_EQ(again[0].result.id, "m1");
  EXPECT_EQ(again[0].result.seq, 2u);
  ASSERT_FALSE(again[1].error);
  EXPECT_FALSE(again[1].result.duplicate) << "m2 was not stored: stored now, under a new seq";
  EXPECT_EQ(again[1].result.id, "m2-again");
  EXPECT_EQ(again[1].result.seq, 4u);
  EXPECT_EQ(rows, (std::vector<std::string>{"m2-again", "m1", "m0"})) << "one row per cid";
  EXPECT_EQ(ids(f.published), (std::vector<std::string>{"m0", "m2-again"}));
}

}  // namespace
}  // namespace chatorbit::chat
