#pragma once
// RFC 3339 timestamps in UTC, as the original's clients parse them (Go's
// time.RFC3339Nano for chat messages: "2025-11-04T13:21:51.729935846Z").

#include <cstdint>
#include <string>

namespace chatorbit {

/// `unix_ns` as "YYYY-MM-DDTHH:MM:SS.fffZ" with `fraction_digits` (0-9) digits of the
/// second's fraction (truncated, never rounded up into the next second).
std::string format_rfc3339(std::int64_t unix_ns, int fraction_digits);

}  // namespace chatorbit
