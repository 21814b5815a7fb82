#include "core/fd_limit.hpp"

#include <sys/resource.h>

#include <algorithm>

namespace chatorbit {

OpenFileLimit raise_open_file_limit() noexcept {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return {};
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  const auto as_int = [](rlim_t v) {
    return v == RLIM_INFINITY ? INT64_MAX : static_cast<std::int64_t>(std::min<rlim_t>(v, INT64_MAX));
  };
  return {as_int(lim.rlim_cur), as_int(lim.rlim_max)};
}

std::int64_t default_max_connections(std::int64_t soft, int probe_slots) noexcept {
  return std::max<std::int64_t>(1, soft - kReservedDescriptors - probe_slots);
}

}  // namespace chatorbit
