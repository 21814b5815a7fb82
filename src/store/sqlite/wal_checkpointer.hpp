#pragma once
// Moves committed pages from SQLite's write-ahead log into the database file on a
// thread of its own, so that the store thread never stops for it.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

struct sqlite3;

namespace chatorbit::store {

/// By default SQLite checkpoints inside the commit that pushes the log past 1,000 pages:
/// that commit then copies pages and waits for fsync, and every message of its batch
/// (and of the batches queued behind it) waits too. This runs PASSIVE checkpoints from a
/// second connection every `interval` instead: they never block the writer (nor wait for
/// it), and once a checkpoint has caught up the writer starts the log over from its
/// beginning, so the file stays small. The writer keeps a high automatic threshold
/// (kWriterFallbackPages) only as a fallback should this thread fall far behind.
class WalCheckpointer {
 public:
  static constexpr int kWriterFallbackPages = 20000;

  /// Opens its own connection to `path` (a WAL-mode database) and starts the thread.
  /// Throws StoreError if the connection cannot be opened.
  WalCheckpointer(const std::string& path, std::chrono::milliseconds interval);
  /// Stops the thread (a checkpoint in progress finishes first) and closes the connection.
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  /// Checkpoints attempted so far (for tests and diagnostics).
  std::uint64_t runs() const;

 private:
  void run();

  sqlite3* db_ = nullptr;
  const std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::uint64_t runs_ = 0;
  std::thread thread_;  // last: starts after every other member is ready
};

}  // namespace chatorbit::store
