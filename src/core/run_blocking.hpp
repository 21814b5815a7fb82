#pragma once
// Runs an awaitable to completion on the calling thread, for the few places that are
// not coroutines and may wait: the message lane reserving a batch's numbers, start-up,
// the store lane refilling an engine. Never on an event loop.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace chatorbit {

/// The result of `op`, or its exception rethrown. `op` completes on a private
/// io_context run here (engine operations complete on their caller's executor), so this
/// returns as soon as it is done: at once for the memory engine, after its round trip
/// for a networked one.
template <class T>
T run_blocking(boost::asio::awaitable<T> op) {
  boost::asio::io_context io;
  auto result = boost::asio::co_spawn(io, std::move(op), boost::asio::use_future);
  io.run();
  return result.get();
}

}  // namespace chatorbit
