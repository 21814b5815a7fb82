#include "core/callback_slot.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

namespace chatorbit {
namespace {

TEST(CallbackSlot, RunsTheCallbackAndSaysWhenThereIsNone) {
  CallbackSlot<const std::string&, int> slot;
  EXPECT_FALSE(slot("x", 1));
  std::string got;
  slot.set([&](const std::string& s, int n) { got = s + std::to_string(n); });
  EXPECT_TRUE(slot("a", 7));
  EXPECT_EQ(got, "a7");
  slot.set({});
  EXPECT_FALSE(slot("b", 8));
  EXPECT_EQ(got, "a7");
}

// The property App relies on at shutdown: once set() returns, the replaced callback is
// not running on any thread, so what it points at may go. Calls of the new callback
// meanwhile are not held up by the wait.
TEST(CallbackSlot, SetReturnsOnlyOnceACallInFlightOnAnotherThreadHasEnded) {
  CallbackSlot<> slot;
  std::promise<void> started;
  std::promise<void> release;
  std::atomic<bool> finished{false};
  slot.set([&, gate = release.get_future().share()] {
    started.set_value();
    gate.wait();
    finished = true;
  });
  std::thread caller([&] { slot(); });
  started.get_future().wait();

  std::atomic<bool> returned{false};
  std::atomic<bool> finished_when_returned{false};
  std::atomic<int> new_calls{0};
  std::thread replacer([&] {
    slot.set([&] { ++new_calls; });
    finished_when_returned = finished.load();
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds{50});
  EXPECT_FALSE(returned.load()) << "set() returned while the old callback was still running";
  // The new callback is in place already and runs while set() waits for the old one.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
  while (new_calls.load() == 0 && std::chrono::steady_clock::now() < deadline) slot();
  EXPECT_EQ(new_calls.load(), 1);
  EXPECT_FALSE(returned.load());

  release.set_value();
  caller.join();
  replacer.join();
  EXPECT_TRUE(returned.load());
  EXPECT_TRUE(finished_when_returned.load());
}

TEST(CallbackSlot, ACallbackMayReplaceItselfWithoutWaitingForItself) {
  CallbackSlot<> slot;
  int second = 0;
  slot.set([&] { slot.set([&] { ++second; }); });
  EXPECT_TRUE(slot());  // would hang if set() waited for the call it is made from
  EXPECT_EQ(second, 0);
  EXPECT_TRUE(slot());
  EXPECT_EQ(second, 1);
}

TEST(CallbackSlot, ACallThatThrowsIsNoLongerCountedAsRunning) {
  CallbackSlot<> slot;
  slot.set([] { throw std::runtime_error("subscriber failed"); });
  EXPECT_THROW(slot(), std::runtime_error);
  auto cleared = std::async(std::launch::async, [&] { slot.set({}); });
  EXPECT_EQ(cleared.wait_for(std::chrono::seconds{5}), std::future_status::ready)
      << "set() waits for a call that ended";
}

}  // namespace
}  // namespace chatorbit
