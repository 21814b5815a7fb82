#include "core/time_format.hpp"

#include <cstdio>
#include <ctime>

namespace chatorbit {

std::string format_rfc3339(std::int64_t unix_ns, int fraction_digits) {
  std::int64_t secs = unix_ns / 1'000'000'000;
  std::int64_t frac = unix_ns % 1'000'000'000;
  if (frac < 0) {  // floor division for instants before the epoch
    frac += 1'000'000'000;
    --secs;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                        tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (fraction_digits > 0) {
    if (fraction_digits > 9) fraction_digits = 9;
    std::int64_t scaled = frac;
    for (int i = fraction_digits; i < 9; ++i) scaled /= 10;
    n += std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n), ".%0*lld", fraction_digits,
                       static_cast<long long>(scaled));
  }
  std::string out(buf, static_cast<std::size_t>(n));
  out += 'Z';
  return out;
}

}  // namespace chatorbit
