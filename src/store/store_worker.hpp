#pragma once
// Runs Store calls off the event loops, on lanes: each lane is one thread that owns one
// Store connection (SQLite connections and libmongoc clients are not to be shared
// between threads), so calls on a lane are serialised in submission order while the
// lanes run side by side. The caller's coroutine resumes on its own loop.
//
// Why lanes: the message pipeline writes a batch at a time, and a batch can be slow (a
// large SQLite transaction and its fsync, a MongoDB insert_many over the network).
// Behind one thread every login, history page and moderation call waited for it. The
// pipeline now has a lane of its own; everything else shares the general lane.

#include <boost/asio/thread_pool.hpp>

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "core/offload.hpp"
#include "store/store.hpp"

namespace chatorbit::store {

/// Which lane a job runs on.
enum class Lane {
  general,   ///< every caller but the pipeline: auth, users, chat REST, moderation, history, resume
  messages,  ///< the message pipeline's batches (find_by_cids, max_seq, append_messages) only
};
inline constexpr std::size_t kLaneCount = 2;

/// Opens one connection to the store (a new Store instance over the same database).
/// Called once per lane, on the thread that constructs the StoreWorker; returns a Store
/// (never null) or throws StoreError.
using StoreOpener = std::function<std::unique_ptr<Store>()>;

/// Thread-safety: run() and post() may be called from any thread, concurrently. The
/// constructor, shutdown(), unsafe_store() and the destructor are for one thread, the
/// owner's, while nothing else submits work.
class StoreWorker {
 public:
  /// One thread and one connection per lane: `open` is called kLaneCount times, and a
  /// StoreError it throws propagates (start-up fails fast). The backend must allow
  /// several connections to one database (SqliteStore on a file does).
  explicit StoreWorker(const StoreOpener& open);

  /// Every lane on one thread over the one `store`: calls are serialised across lanes,
  /// as before lanes existed. For a Store that cannot have a second connection to the
  /// same data (SQLite ":memory:", a test's fake).
  explicit StoreWorker(std::unique_ptr<Store> store);

  /// shutdown(), if it has not been called.
  ~StoreWorker();
  StoreWorker(const StoreWorker&) = delete;
  StoreWorker& operator=(const StoreWorker&) = delete;

  ///   auto job = [id](Store& s) { return s.find_user_by_id(id); };
  ///   auto user = co_await worker.run(std::move(job));
  /// Runs `f(store)` on the general lane. StoreError thrown by `f` is rethrown in the
  /// caller. `f` must return a value (see offload.hpp).
  ///
  /// GCC 12 miscompiles a capturing lambda written as a temporary inside a co_await
  /// expression (it is copied bitwise, so a captured std::string points into the old
  /// copy): name the lambda first, then co_await run(std::move(job)). `./dev lint`
  /// rejects the temporary form.
  template <class F>
  auto run(F f) {
    return run(Lane::general, std::move(f));
  }

  /// As run(f), on `lane`: after every job submitted to that lane before it. The job is
  /// submitted when the returned awaitable is co_awaited, not when run() returns.
  template <class F>
  auto run(Lane lane, F f) {
    LaneState& l = route(lane);
    return offload(l.pool.get_executor(), [f = std::move(f), s = l.store.get()]() mutable { return f(*s); });
  }

  /// Submits `f` to the general lane without waiting for it; for fire-and-forget writes
  /// whose failure is only logged by `f` itself (`f` must not throw).
  template <class F>
  void post(F f) {
    post(Lane::general, std::move(f));
  }

  /// As post(f), on `lane`.
  template <class F>
  void post(Lane lane, F f) {
    LaneState& l = route(lane);
    boost::asio::post(l.pool, [f = std::move(f), s = l.store.get()]() mutable { f(*s); });
  }

  /// Waits until every lane has finished the work queued on it, stops the threads, then
  /// closes the stores. A job must not submit to another lane once shutdown has begun
  /// (none does: the pipeline is fed by the event loops, stopped before this).
  void shutdown();

  /// The general lane's Store, for start-up and tests only (no lane is busy yet and no
  /// event loop is running).
  Store& unsafe_store() { return *route(Lane::general).store; }

 private:
  struct LaneState {
    explicit LaneState(std::unique_ptr<Store> s);
    std::unique_ptr<Store> store;
    boost::asio::thread_pool pool{1};
  };

  LaneState& route(Lane lane) { return *route_[static_cast<std::size_t>(lane)]; }

  std::vector<std::unique_ptr<LaneState>> lanes_;  // one, or kLaneCount
  std::array<LaneState*, kLaneCount> route_{};     // Lane -> its state; fixed after construction
  bool stopped_ = false;
};

}  // namespace chatorbit::store
