#pragma once
// `chatorbit migrate`: makes a database the original Go service wrote fully ChatOrbit's.
// Its messages have no `seq` and no `username`; this numbers them per room in time order
// (timestamp, then id), continuing after what the room already holds, and fills in each
// sender's username from `users`. The store's own start-up does the rest (email_lower,
// indexes), and runs first.
//
// Idempotent and resumable: only messages without a seq are touched, each one guarded by
// that condition, so a second run finds nothing to do and a run that was stopped carries
// on where it stopped. A room whose numbered messages are not all older than its
// unnumbered ones (ChatOrbit already served it before the migration) is left as it is
// and reported: numbering its old messages after the new ones would break history order.
// Run it while no chat node serves the database (docs/operations.md).

#include <cstdint>
#include <ostream>
#include <string>

#include "core/config.hpp"

namespace chatorbit::store {

struct MigrationReport {
  std::int64_t numbered = 0;       ///< messages given a seq by this run
  std::int64_t rooms = 0;          ///< rooms that had messages without a seq
  std::int64_t rooms_skipped = 0;  ///< of which left alone (see above)
};

/// Migrates the database `config.mongo_url` names, writing a progress line to `progress`
/// every `progress_every` messages and one per room. Throws StoreError (or ConfigError
/// if MONGO_URL is not set).
MigrationReport migrate_original_messages(const Config& config, std::ostream& progress,
                                          std::int64_t progress_every = 10'000);

}  // namespace chatorbit::store
