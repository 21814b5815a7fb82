#pragma once
// The Lua scripts of the Redis engine, each one atomic step over keys of one hash slot
// (docs/redis.md says which keys and why they share a tag). Every script takes `now`
// (ms, the calling node's Clock) as an argument: expiries are stored as values and
// compared with it, and Redis's own TTLs only collect what is left behind.
//
// Thread-safety: immutable after construction.

#include <map>
#include <string>

namespace chatorbit::engine::redis {

struct Script {
  std::string source;
  std::string sha;  ///< SHA-1 of the source, lower-case hex, for EVALSHA
};

struct Scripts {
  Scripts();
  /// The script called `name`; throws std::out_of_range for an unknown name (a bug).
  const Script& at(const std::string& name) const { return by_name.at(name); }
  std::map<std::string, Script> by_name;
};

}  // namespace chatorbit::engine::redis
