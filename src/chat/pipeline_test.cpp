#include "chat/pipeline.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

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
  ManualClock clock;
  engine::MemoryEngine engine{clock};
  store::StoreWorker worker{store::SqliteStore::open(":memory:")};
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

}  // namespace
}  // namespace chatorbit::chat
