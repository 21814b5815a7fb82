#pragma once
// Runs blocking work (database calls, password hashing) on another executor and
// resumes the calling coroutine on its own executor when the work is done; an
// exception thrown by the work is rethrown in the caller.

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

namespace chatorbit {

/// co_await offload(pool.get_executor(), [&] { return slow(); });
/// `f` must return a default-constructible, movable, non-void value.
template <class Executor, class F>
auto offload(Executor ex, F f) {
  using R = std::invoke_result_t<F&>;
  static_assert(!std::is_void_v<R>, "offload needs a value; return a bool");
  // The work travels behind a unique_ptr: asio's use_awaitable initiation is itself a
  // coroutine taking its arguments by value, and GCC 12 relocates closure-typed
  // coroutine arguments bitwise, which corrupts any std::string they capture.
  auto work = std::make_unique<F>(std::move(f));
  auto initiate = [ex](auto handler, std::unique_ptr<F> job) {
    // The guard keeps the caller's executor alive until the result is handed back.
    auto guard = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler));
    boost::asio::post(ex, [handler = std::move(handler), job = std::move(job), guard = std::move(guard)]() mutable {
      std::exception_ptr error;
      R result{};
      try {
        result = (*job)();
      } catch (...) {
        error = std::current_exception();
      }
      job.reset();  // release captured state on the worker, before handing back
      auto home = guard.get_executor();
      boost::asio::dispatch(home, [handler = std::move(handler), error, result = std::move(result)]() mutable {
        std::move(handler)(error, std::move(result));
      });
    });
  };
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>, void(std::exception_ptr, R)>(
      std::move(initiate), boost::asio::use_awaitable, std::move(work));
}

}  // namespace chatorbit
