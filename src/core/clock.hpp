#pragma once
// Time is injected (Envoy's TimeSource): TTLs, rate windows and token expiry take a
// Clock so tests can move time without sleeping.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace chatorbit {

using SystemTime = std::chrono::system_clock::time_point;
using Nanos = std::chrono::nanoseconds;

/// Source of wall-clock time. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Current wall-clock time.
  virtual SystemTime now() const = 0;

  /// Convenience: whole seconds since the Unix epoch.
  std::int64_t unix_seconds() const {
    return std::chrono::duration_cast<std::chrono::seconds>(now().time_since_epoch()).count();
  }
  /// Convenience: nanoseconds since the Unix epoch.
  std::int64_t unix_nanos() const { return std::chrono::duration_cast<Nanos>(now().time_since_epoch()).count(); }
  /// Convenience: milliseconds since the Unix epoch.
  std::int64_t unix_millis() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(now().time_since_epoch()).count();
  }
};

/// The real clock.
class SystemClock final : public Clock {
 public:
  SystemTime now() const override { return std::chrono::system_clock::now(); }
  /// A process-wide instance.
  static const SystemClock& instance() {
    static const SystemClock clock;
    return clock;
  }
};

/// A clock that only moves when told to; for tests. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(SystemTime start = SystemTime{std::chrono::seconds{1'700'000'000}})
      : ns_(std::chrono::duration_cast<Nanos>(start.time_since_epoch()).count()) {}
  SystemTime now() const override {
    return SystemTime{std::chrono::duration_cast<SystemTime::duration>(Nanos{ns_.load()})};
  }
  void advance(Nanos d) { ns_ += d.count(); }
  void set(SystemTime t) { ns_ = std::chrono::duration_cast<Nanos>(t.time_since_epoch()).count(); }

 private:
  std::atomic<std::int64_t> ns_;
};

}  // namespace chatorbit
