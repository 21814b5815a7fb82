#include "store/sqlite/wal_checkpointer.hpp"

#include <sqlite3.h>

#include "core/log.hpp"
#include "core/thread_policy.hpp"
#include "store/store.hpp"

namespace chatorbit::store {

WalCheckpointer::WalCheckpointer(const std::string& path, std::chrono::milliseconds interval) : interval_(interval) {
  const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    const std::string why = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    throw StoreError("sqlite: cannot open a checkpoint connection to '" + path + "': " + why);
  }
  // Checkpointing is this connection's only job: it must not also checkpoint on close
  // while the writer is still at work (the writer's own close does the final one).
  sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  // A connection only finds out that the database is in WAL mode when it first reads
  // it; until then a checkpoint is a silent no-op.
  if (sqlite3_exec(db_, "SELECT count(*) FROM sqlite_schema", nullptr, nullptr, nullptr) != SQLITE_OK) {
    const std::string why = sqlite3_errmsg(db_);
    sqlite3_close_v2(db_);
    throw StoreError("sqlite: cannot read '" + path + "' for checkpoints: " + why);
  }
  thread_ = std::thread([this] { run(); });
}

WalCheckpointer::~WalCheckpointer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  sqlite3_close_v2(db_);
}

std::uint64_t WalCheckpointer::runs() const {
  std::lock_guard lock(mu_);
  return runs_;
}

void WalCheckpointer::run() {
  run_as_batch_thread();  // mostly waits for the disk; never worth preempting a loop
  std::unique_lock lock(mu_);
  while (!wake_.wait_for(lock, interval_, [this] { return stop_; })) {
    lock.unlock();
    const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    // BUSY: another checkpoint is running (the writer's fallback); try again next time.
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      log::warn("sqlite_checkpoint_failed", {{"error", sqlite3_errmsg(db_)}});
    }
    lock.lock();
    ++runs_;
  }
}

}  // namespace chatorbit::store
