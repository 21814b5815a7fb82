#include "core/fd_limit.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

namespace chatorbit {
namespace {

TEST(OpenFileLimit, SoftIsRaisedToHard) {
  rlimit before{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
  rlimit lowered = before;
  lowered.rlim_cur = std::min<rlim_t>(before.rlim_max, 256);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);

  const auto lim = raise_open_file_limit();
  rlimit after{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &after), 0);
  EXPECT_EQ(after.rlim_cur, before.rlim_max);
  EXPECT_EQ(static_cast<rlim_t>(lim.soft), after.rlim_cur);
  EXPECT_EQ(lim.soft, lim.hard);
  ::setrlimit(RLIMIT_NOFILE, &before);
}

TEST(OpenFileLimit, DefaultCapLeavesTheReserveAndTheProbeSlots) {
  EXPECT_EQ(default_max_connections(20000, 32), 20000 - kReservedDescriptors - 32);
  EXPECT_EQ(default_max_connections(50, 32), 1) << "never zero, which would mean no cap";
}

}  // namespace
}  // namespace chatorbit
