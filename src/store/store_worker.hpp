#pragma once
// Runs Store calls off the event loops. One thread owns the Store (SQLite connections
// and libmongoc clients are not to be shared between threads), so calls are
// serialised in submission order; the caller's coroutine resumes on its own loop.

#include <boost/asio/thread_pool.hpp>

#include <memory>

#include "core/offload.hpp"
#include "core/thread_policy.hpp"
#include "store/store.hpp"

namespace chatorbit::store {

class StoreWorker {
 public:
  explicit StoreWorker(std::unique_ptr<Store> store) : store_(std::move(store)) {
    // The store thread yields to the event loops: batches then gather while a loop
    // works instead of the store thread taking the core at every hand-off.
    boost::asio::post(pool_, [] { run_as_batch_thread(); });
  }
  ~StoreWorker() { pool_.join(); }
  StoreWorker(const StoreWorker&) = delete;
  StoreWorker& operator=(const StoreWorker&) = delete;

  ///   auto job = [id](Store& s) { return s.find_user_by_id(id); };
  ///   auto user = co_await worker.run(std::move(job));
  /// StoreError thrown by `f` is rethrown in the caller.
  ///
  /// GCC 12 miscompiles a capturing lambda written as a temporary inside a co_await
  /// expression (it is copied bitwise, so a captured std::string points into the old
  /// copy): name the lambda first, then co_await run(std::move(job)). `./dev lint`
  /// rejects the temporary form.
  template <class F>
  auto run(F f) {
    return offload(pool_.get_executor(), [f = std::move(f), s = store_.get()]() mutable { return f(*s); });
  }

  /// Submits `f` without waiting for it; for fire-and-forget writes whose failure is
  /// only logged by `f` itself.
  template <class F>
  void post(F f) {
    boost::asio::post(pool_, [f = std::move(f), s = store_.get()]() mutable { f(*s); });
  }

  /// Waits for queued work to finish and stops the thread; the Store is then closed.
  void shutdown() {
    pool_.join();
    store_.reset();
  }

  /// Direct access, for start-up and tests only (no event loop is running yet).
  Store& unsafe_store() { return *store_; }

 private:
  std::unique_ptr<Store> store_;
  boost::asio::thread_pool pool_{1};
};

}  // namespace chatorbit::store
