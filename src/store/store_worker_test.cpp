// StoreWorker: lanes run side by side, each in submission order, each on its own store;
// a job's StoreError reaches the awaiting coroutine, which resumes on its own loop.
// Real threads and a real io_context; futures are waited on with a generous timeout only
// so that a broken worker fails the test instead of hanging it.

#include "store/store_worker.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace chatorbit::store {
namespace {

namespace asio = boost::asio;

// Only ever reached when the worker is broken: a passing test never waits this long.
constexpr std::chrono::seconds kHangGuard{20};

/// Holds append_messages inside the store until the test releases it.
class Gate {
 public:
  /// Called by the store: announces the batch, then blocks until release().
  void pass() {
    std::unique_lock lock(mu_);
    inside_ = true;
    changed_.notify_all();
    changed_.wait(lock, [this] { return released_; });
    inside_ = false;
  }
  bool wait_until_inside() {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, kHangGuard, [this] { return inside_; });
  }
  /// True while a batch is blocked in pass().
  bool batch_in_progress() {
    std::lock_guard lock(mu_);
    return inside_;
  }
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  bool inside_ = false;
  bool released_ = false;
};

/// What the stores tell the test; shared by every FakeStore of a test.
struct Probe {
  Gate gate;
  std::atomic<int> opened{0};
  std::atomic<int> closed{0};
  std::atomic<int> jobs_run{0};
  std::atomic<int> jobs_run_when_first_closed{-1};
  std::atomic<bool> batch_blocked_during_lookup{false};
};

/// A Store with no data: append_messages waits at the probe's gate, find_user_by_id
/// notes whether a batch was blocked meanwhile, the rest answers "nothing".
class FakeStore final : public Store {
 public:
  explicit FakeStore(Probe& probe) : probe_(probe), number_(probe.opened++) {}
  ~FakeStore() override {
    int unset = -1;
    probe_.jobs_run_when_first_closed.compare_exchange_strong(unset, probe_.jobs_run.load());
    ++probe_.closed;
  }
  /// 0 for the first store the opener made, 1 for the second, ...
  int number() const { return number_; }

  void append_messages(std::span<const Message>) override { probe_.gate.pass(); }
  std::optional<User> find_user_by_id(std::string_view id) override {
    probe_.batch_blocked_during_lookup = probe_.gate.batch_in_progress();
    User u;
    u.id = std::string(id);
    return u;
  }

  bool create_user(const User&) override { return false; }
  std::optional<User> find_user_by_email(std::string_view) override { return std::nullopt; }
  bool update_password_hash(std::string_view, std::string_view, std::int64_t) override { return false; }
  bool record_login(std::string_view, std::int64_t, std::string_view) override { return false; }
  bool set_role(std::string_view, std::string_view, std::int64_t) override { return false; }
  void revoke_token(std::string_view, std::int64_t) override {}
  std::vector<std::pair<std::string, std::int64_t>> active_revocations(std::int64_t) override { return {}; }
  void put_token_floor(const TokenFloor&) override {}
  std::vector<TokenFloor> active_token_floors(std::int64_t) override { return {}; }
  bool ensure_room(std::string_view, std::int64_t) override { return false; }
  std::optional<Room> find_room(std::string_view) override { return std::nullopt; }
  std::vector<Room> list_rooms() override { return {}; }
  bool set_slow_mode(std::string_view, int) override { return false; }
  std::vector<Message> history(std::string_view, int, std::optional<std::uint64_t>) override { return {}; }
  std::uint64_t max_seq(std::string_view) override { return 0; }
  std::vector<std::optional<Message>> find_by_cids(std::span<const CidKey> keys) override {
    return std::vector<std::optional<Message>>(keys.size());
  }
  bool delete_message(std::string_view, std::string_view) override { return false; }
  std::vector<std::string> purge_user_messages(std::string_view, std::string_view, int) override { return {}; }
  std::int64_t clear_room(std::string_view) override { return 0; }
  void record_moderation(const ModerationAction&) override {}
  std::vector<ModerationAction> moderation_log(std::string_view, int) override { return {}; }
  void put_ban(const Ban&) override {}
  bool remove_ban(std::string_view, std::string_view) override { return false; }
  std::vector<Ban> active_bans(std::string_view, std::int64_t) override { return {}; }
  std::vector<Ban> all_active_bans(std::int64_t) override { return {}; }

 private:
  Probe& probe_;
  int number_;
};

StoreOpener fake_opener(Probe& probe) {
  return [&probe] { return std::make_unique<FakeStore>(probe); };
}

/// An event loop on a thread of its own, as the server's are.
class Loop {
 public:
  Loop() : thread_([this] { ctx_.run(); }) {}
  ~Loop() {
    guard_.reset();
    thread_.join();
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  /// Starts `task` on the loop; its result arrives in the future.
  template <class T>
  std::future<T> spawn(asio::awaitable<T> task) {
    return asio::co_spawn(ctx_, std::move(task), asio::use_future);
  }
  std::thread::id thread_id() const { return thread_.get_id(); }

 private:
  asio::io_context ctx_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{ctx_.get_executor()};
  std::thread thread_;  // last: runs ctx_ once everything else exists
};

template <class T>
bool ready_in_time(std::future<T>& f) {
  return f.wait_for(kHangGuard) == std::future_status::ready;
}

asio::awaitable<std::string> lookup_user(StoreWorker& worker, std::string id) {
  auto job = [id](Store& s) { return s.find_user_by_id(id); };
  const auto user = co_await worker.run(std::move(job));
  co_return user ? user->id : std::string("(none)");
}

struct Failure {
  std::string what;
  bool resumed_on_loop = false;
};

asio::awaitable<Failure> failing_job(StoreWorker& worker, Lane lane, std::thread::id loop) {
  auto job = [](Store&) -> bool { throw StoreError("disk on fire"); };
  Failure out;
  try {
    co_await worker.run(lane, std::move(job));
    out.what = "(no error)";
  } catch (const StoreError& e) {
    out.what = e.what();
  }
  out.resumed_on_loop = std::this_thread::get_id() == loop;
  co_return out;
}

/// Submits jobs 0..n-1 to `lane`, alternating post() and co_await run(); each appends its
/// number to `order` (touched only by that lane's thread until the test joins it).
asio::awaitable<bool> mixed_submissions(StoreWorker& worker, Lane lane, int n, std::vector<int>& order) {
  for (int i = 0; i < n; ++i) {
    if (i % 2 == 0) {
      worker.post(lane, [&order, i](Store&) { order.push_back(i); });
    } else {
      auto job = [&order, i](Store&) {
        order.push_back(i);
        return true;
      };
      co_await worker.run(lane, std::move(job));
    }
  }
  co_return true;
}

/// Which store (FakeStore::number) and which thread a job on `lane` runs on.
asio::awaitable<std::pair<int, std::thread::id>> where_it_runs(StoreWorker& worker, Lane lane) {
  auto job = [](Store& s) { return std::make_pair(static_cast<FakeStore&>(s).number(), std::this_thread::get_id()); };
  co_return co_await worker.run(lane, std::move(job));
}

// The point of lanes: a slow message batch does not hold up a login's lookup.
TEST(StoreWorker, BlockedMessagesLaneDoesNotDelayTheGeneralLane) {
  Probe probe;
  Loop loop;
  StoreWorker worker(fake_opener(probe));
  worker.post(Lane::messages, [](Store& s) { s.append_messages({}); });
  ASSERT_TRUE(probe.gate.wait_until_inside());

  auto found = loop.spawn(lookup_user(worker, "65a1b2c3d4e5f60718293a4b"));
  const bool completed = ready_in_time(found);
  probe.gate.release();  // before any assertion can return, so that shutdown does not hang
  ASSERT_TRUE(completed) << "run() on the general lane waited for the blocked messages lane";
  EXPECT_EQ(found.get(), "65a1b2c3d4e5f60718293a4b");
  EXPECT_TRUE(probe.batch_blocked_during_lookup.load());
}

TEST(StoreWorker, JobsOnALaneRunInSubmissionOrder) {
  Probe probe;
  Loop loop;
  StoreWorker worker(fake_opener(probe));
  constexpr int kJobs = 200;
  std::vector<int> general, messages;
  auto on_general = loop.spawn(mixed_submissions(worker, Lane::general, kJobs, general));
  auto on_messages = loop.spawn(mixed_submissions(worker, Lane::messages, kJobs, messages));
  ASSERT_TRUE(ready_in_time(on_general));
  ASSERT_TRUE(ready_in_time(on_messages));
  worker.shutdown();  // joins the lanes: both vectors are complete and safe to read
  std::vector<int> expected(kJobs);
  for (int i = 0; i < kJobs; ++i) expected[static_cast<std::size_t>(i)] = i;
  EXPECT_EQ(general, expected);
  EXPECT_EQ(messages, expected);
}

TEST(StoreWorker, StoreErrorIsRethrownInTheAwaitingCoroutineOnItsLoop) {
  Probe probe;
  Loop loop;
  StoreWorker worker(fake_opener(probe));
  for (const Lane lane : {Lane::general, Lane::messages}) {
    auto failed = loop.spawn(failing_job(worker, lane, loop.thread_id()));
    ASSERT_TRUE(ready_in_time(failed));
    const Failure f = failed.get();
    EXPECT_EQ(f.what, "disk on fire");
    EXPECT_TRUE(f.resumed_on_loop);
  }
}

TEST(StoreWorker, EachLaneHasItsOwnStoreAndThread) {
  Probe probe;
  Loop loop;
  StoreWorker worker(fake_opener(probe));
  EXPECT_EQ(probe.opened.load(), static_cast<int>(kLaneCount));
  auto general = loop.spawn(where_it_runs(worker, Lane::general));
  auto messages = loop.spawn(where_it_runs(worker, Lane::messages));
  ASSERT_TRUE(ready_in_time(general));
  ASSERT_TRUE(ready_in_time(messages));
  const auto [general_store, general_thread] = general.get();
  const auto [messages_store, messages_thread] = messages.get();
  EXPECT_NE(general_store, messages_store);
  EXPECT_NE(general_thread, messages_thread);
  EXPECT_NE(general_thread, loop.thread_id());
  EXPECT_EQ(static_cast<FakeStore&>(worker.unsafe_store()).number(), general_store);
}

TEST(StoreWorker, OneStoreServesEveryLaneOnOneThread) {
  Probe probe;
  Loop loop;
  StoreWorker worker(std::make_unique<FakeStore>(probe));
  auto general = loop.spawn(where_it_runs(worker, Lane::general));
  auto messages = loop.spawn(where_it_runs(worker, Lane::messages));
  ASSERT_TRUE(ready_in_time(general));
  ASSERT_TRUE(ready_in_time(messages));
  EXPECT_EQ(general.get(), messages.get());
}

TEST(StoreWorker, ShutdownDrainsEveryLaneBeforeClosingAnyStore) {
  Probe probe;
  StoreWorker worker(fake_opener(probe));
  constexpr int kJobsPerLane = 100;
  for (int i = 0; i < kJobsPerLane; ++i) {
    worker.post(Lane::general, [&probe](Store&) { ++probe.jobs_run; });
    worker.post(Lane::messages, [&probe](Store&) { ++probe.jobs_run; });
  }
  worker.shutdown();
  EXPECT_EQ(probe.closed.load(), static_cast<int>(kLaneCount));
  EXPECT_EQ(probe.jobs_run_when_first_closed.load(), 2 * kJobsPerLane);
  worker.shutdown();  // a second call (and the destructor's) does nothing
  EXPECT_EQ(probe.closed.load(), static_cast<int>(kLaneCount));
}

TEST(StoreWorker, FailedOpenFailsConstructionAndClosesWhatWasOpened) {
  Probe probe;
  auto second_fails = [&probe]() -> std::unique_ptr<Store> {
    if (probe.opened > 0) throw StoreError("cannot open a second connection");
    return std::make_unique<FakeStore>(probe);
  };
  EXPECT_THROW(StoreWorker{second_fails}, StoreError);
  EXPECT_EQ(probe.closed.load(), 1);
}

}  // namespace
}  // namespace chatorbit::store
