#pragma once
// How many WebSocket sessions each client address has open on this node, against
// CHATORBIT_MAX_CONNECTIONS_PER_IP. The handshake acquires a slot before it upgrades;
// the session gives it back when it closes (or the handshake, if it fails after).
//
// Counting is per node for now; the interface is synchronous and narrow so that a
// count shared through the engine can take its place.
//
// Threading: every method may be called from any thread.

#include <mutex>
#include <string>
#include <unordered_map>

namespace chatorbit::chat {

class AddressCaps {
 public:
  /// At most `max_per_address` open at once per address.
  explicit AddressCaps(int max_per_address) : max_(max_per_address) {}

  /// Counts one more connection from `address`; false, counting nothing, if it already
  /// has the maximum open.
  bool try_acquire(const std::string& address);
  /// Gives back a slot that try_acquire() counted.
  void release(const std::string& address);
  /// Connections counted for `address` now.
  int open(const std::string& address) const;

 private:
  const int max_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, int> open_;  ///< addresses with at least one open
};

}  // namespace chatorbit::chat
