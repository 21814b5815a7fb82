#include "net/background.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <future>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

namespace chatorbit::net {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

void spin(std::chrono::microseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

TEST(Background, RunsWhatItIsGivenOnTheLoopInOrder) {
  asio::io_context ctx;
  Background bg(ctx);
  std::vector<int> seen;
  for (int i = 0; i < 5; ++i) bg.execute([&seen, i] { seen.push_back(i); });
  EXPECT_TRUE(seen.empty());  // queued, not run by execute()
  ctx.run();
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(bg.ran(), 5U);
  EXPECT_EQ(bg.waiting(), 0U);
}

TEST(Background, ASliceEndsOnceItsTimeIsUpAndLiveHandlersRunBeforeTheNext) {
  asio::io_context ctx;
  Background bg(ctx, 1ms);
  int done = 0;
  int done_when_live_ran = -1;
  for (int i = 0; i < 10; ++i) {
    bg.execute([&, i] {
      // The first handler queues live work behind the running slice.
      if (i == 0) asio::post(ctx, [&] { done_when_live_ran = done; });
      spin(400us);
      ++done;
    });
  }
  ctx.run();
  EXPECT_EQ(done, 10);
  // 400 µs each: the first slice is over after its third handler (a preempted one may
  // end it sooner, never later), and the live handler runs before the fourth.
  EXPECT_GE(done_when_live_ran, 1);
  EXPECT_LE(done_when_live_ran, 3);
  EXPECT_GE(bg.slices(), 4U);
}

TEST(Background, WithNothingElseQueuedTheSlicesFollowEachOtherUntilAllHaveRun) {
  asio::io_context ctx;
  Background bg(ctx, 1us);
  int done = 0;
  for (int i = 0; i < 100; ++i) bg.execute([&] { ++done; });
  ctx.run();
  EXPECT_EQ(done, 100);
  EXPECT_GT(bg.slices(), 1U);
}

TEST(Background, WorkGivenFromAnotherThreadRunsOnTheLoopThread) {
  asio::io_context ctx;
  Background bg(ctx);
  auto guard = asio::make_work_guard(ctx);
  std::thread loop([&] { ctx.run(); });
  std::thread::id ran_on;
  std::promise<void> ran;
  std::thread([&] {
    bg.execute([&] {
      ran_on = std::this_thread::get_id();
      ran.set_value();
    });
  }).join();
  ran.get_future().wait();
  EXPECT_EQ(ran_on, loop.get_id());
  guard.reset();
  loop.join();
}

TEST(Background, ACoroutineSpawnedOnItResumesAsBackgroundWorkAfterEachAwait) {
  asio::io_context ctx;
  Background bg(ctx);
  std::vector<bool> resumed_in_slice;
  bool finished = false;
  auto body = [&]() -> asio::awaitable<void> {
    asio::steady_timer t(co_await asio::this_coro::executor);
    for (int i = 0; i < 3; ++i) {
      const auto before = bg.ran();
      t.expires_after(1ms);
      co_await t.async_wait(asio::use_awaitable);
      // The timer completed on the loop; the coroutine went on only as a new handler of
      // the background queue.
      resumed_in_slice.push_back(bg.ran() > before);
    }
    finished = true;
  };
  asio::co_spawn(bg.executor(), body(), asio::detached);
  EXPECT_EQ(bg.ran(), 0U);  // even its start waits for a slice
  ctx.run();
  EXPECT_TRUE(finished);
  EXPECT_EQ(resumed_in_slice, (std::vector<bool>{true, true, true}));
}

TEST(Background, AHandlerThatThrowsDoesNotStrandTheOnesBehindIt) {
  asio::io_context ctx;
  Background bg(ctx);
  bool later_ran = false;
  bg.execute([] { throw std::runtime_error("boom"); });
  bg.execute([&] { later_ran = true; });
  // As EventLoops does: log and run the loop again.
  for (;;) {
    try {
      ctx.run();
      break;
    } catch (const std::runtime_error&) {
      ctx.restart();
    }
  }
  EXPECT_TRUE(later_ran);
}

TEST(Background, OnceClosedItDropsWhatItHoldsAndWhatItIsGivenUnrun) {
  asio::io_context ctx;
  Background bg(ctx);
  auto held = std::make_shared<int>(1);
  bool ran = false;
  asio::post(ctx, [&] {
    bg.execute([held, &ran] { ran = true; });  // on the loop: queued at once
    bg.execute([held, &ran] { ran = true; });
    EXPECT_EQ(bg.waiting(), 2U);
    EXPECT_EQ(held.use_count(), 3);
    bg.close();
    EXPECT_EQ(bg.waiting(), 0U);
    EXPECT_EQ(held.use_count(), 1);  // destroyed, not run
    bg.execute([held, &ran] { ran = true; });
    EXPECT_EQ(held.use_count(), 1);
  });
  ctx.run();
  EXPECT_FALSE(ran);
}

TEST(Background, WorkHandedOverFromAnotherThreadBeforeItClosedIsDroppedOnArrival) {
  asio::io_context ctx;
  Background bg(ctx);
  auto held = std::make_shared<int>(1);
  bool ran = false;
  bg.execute([held, &ran] { ran = true; });  // the loop is not running: posted to it
  bg.close();
  ctx.run();
  EXPECT_FALSE(ran);
  EXPECT_EQ(held.use_count(), 1);
}

}  // namespace
}  // namespace chatorbit::net
