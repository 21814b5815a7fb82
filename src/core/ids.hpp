#pragma once
// ObjectId-shaped identifiers (24 lower-case hex characters), so that users and
// messages created on the embedded store can move to MongoDB unchanged.

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/clock.hpp"
#include "core/random.hpp"

namespace chatorbit {

/// True if `s` is exactly 24 hex characters (either case), the shape of a MongoDB ObjectId.
bool is_object_id(std::string_view s);

/// Makes ObjectIds: 4 bytes of Unix seconds, 5 random bytes fixed per generator, and a
/// 3-byte counter, as MongoDB's drivers do. Thread-safe.
class ObjectIdGenerator {
 public:
  ObjectIdGenerator(const Clock& clock, RandomSource& random);
  /// A new id, unique within this generator and, with overwhelming probability, globally.
  std::string next();

 private:
  const Clock& clock_;
  unsigned char process_unique_[5];
  std::atomic<std::uint32_t> counter_;
};

}  // namespace chatorbit
