#pragma once
// One io_context per thread ("loop"), one thread per core by default. Each loop owns
// the connections it accepted: nothing about a connection is touched from another
// thread, so connection state needs no locks. Each loop has a Background beside it, for
// the work that yields to live traffic (new connections, handshakes, housekeeping).

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <thread>
#include <vector>

#include "net/background.hpp"

namespace chatorbit::net {

class EventLoops {
 public:
  explicit EventLoops(int count);
  ~EventLoops();
  EventLoops(const EventLoops&) = delete;
  EventLoops& operator=(const EventLoops&) = delete;

  std::size_t size() const { return contexts_.size(); }
  boost::asio::io_context& loop(std::size_t i) { return *contexts_[i]; }
  /// Loop i's background work (see background.hpp).
  Background& background(std::size_t i) { return *backgrounds_[i]; }

  /// Starts one thread per loop. Returns at once.
  void start();
  /// Lets the loops finish their queued work and return; joins the threads.
  void stop_and_join();

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  /// Before contexts_, so that they outlive them: a context that is destroyed destroys the
  /// handlers it still holds, and those of coroutines spawned on a Background hand their
  /// last step to it (closed by then: it drops them).
  std::vector<std::unique_ptr<Background>> backgrounds_;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<Guard> guards_;
  std::vector<std::thread> threads_;
};

}  // namespace chatorbit::net
