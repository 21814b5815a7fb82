#pragma once
// Shared by the fuzz targets: how a broken invariant is reported. abort() is what
// libFuzzer (and ASan) treat as a crash, so the input is saved as crash-<sha1> and the
// run fails; the message says which invariant it was.

#include <cstdio>
#include <cstdlib>

namespace chatorbit::fuzz {

[[noreturn]] inline void fail(const char* target, const char* what) {
  std::fprintf(stderr, "%s: invariant broken: %s\n", target, what);
  std::abort();
}

/// Aborts with `what` unless `ok`.
inline void check(bool ok, const char* target, const char* what) {
  if (!ok) fail(target, what);
}

}  // namespace chatorbit::fuzz
