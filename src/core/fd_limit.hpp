#pragma once
// The process's open-file limit. Every connection is a descriptor: a server left at the
// usual soft limit (1,024) runs out long before its hard limit, and then accept() fails
// for everyone at once.

#include <cstdint>

namespace chatorbit {

struct OpenFileLimit {
  std::int64_t soft = 0;  ///< in force after the call
  std::int64_t hard = 0;
};

/// Raises the soft RLIMIT_NOFILE to the hard limit (which needs no privilege) and returns
/// both as they then stand. If the kernel refuses, the limits are returned unchanged.
OpenFileLimit raise_open_file_limit() noexcept;

/// Descriptors kept back from connections for the process's own use: the store's files,
/// each loop's epoll, eventfd, timers and io_uring, the listeners, logs.
inline constexpr std::int64_t kReservedDescriptors = 96;

/// The default connection cap for a soft limit of `soft` descriptors: everything but the
/// reserve and `probe_slots` (connections let in over the cap for monitoring only).
std::int64_t default_max_connections(std::int64_t soft, int probe_slots) noexcept;

}  // namespace chatorbit
