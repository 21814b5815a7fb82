#include "store/store_worker.hpp"

#include <boost/asio/post.hpp>

#include "core/thread_policy.hpp"

namespace chatorbit::store {

StoreWorker::LaneState::LaneState(std::unique_ptr<Store> s) : store(std::move(s)) {
  if (!store) throw StoreError("store worker: no store for a lane (the opener returned null)");
  // A lane thread yields to the event loops: work then gathers while a loop runs
  // instead of the lane taking the core at every hand-off (pipeline batches grow).
  boost::asio::post(pool, [] { run_as_batch_thread(); });
}

StoreWorker::StoreWorker(const StoreOpener& open) {
  lanes_.reserve(kLaneCount);
  for (std::size_t i = 0; i < kLaneCount; ++i) {
    // If an open fails, the lanes already made are joined and closed by their destructors.
    lanes_.push_back(std::make_unique<LaneState>(open()));
    route_[i] = lanes_.back().get();
  }
}

StoreWorker::StoreWorker(std::unique_ptr<Store> store) {
  lanes_.push_back(std::make_unique<LaneState>(std::move(store)));
  route_.fill(lanes_.back().get());
}

StoreWorker::~StoreWorker() { shutdown(); }

void StoreWorker::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  // Every lane drains before any store closes, so each store outlives the jobs that
  // hold it, and the last connection to close (SQLite's final checkpoint) sees every
  // lane's writes.
  for (auto& lane : lanes_) lane->pool.join();
  for (auto& lane : lanes_) lane->store.reset();
}

}  // namespace chatorbit::store
