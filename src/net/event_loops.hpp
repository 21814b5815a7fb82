#pragma once
// One io_context per thread ("loop"), one thread per core by default. Each loop owns
// the connections it accepted: nothing about a connection is touched from another
// thread, so connection state needs no locks.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <thread>
#include <vector>

namespace chatorbit::net {

class EventLoops {
 public:
  explicit EventLoops(int count);
  ~EventLoops();
  EventLoops(const EventLoops&) = delete;
  EventLoops& operator=(const EventLoops&) = delete;

  std::size_t size() const { return contexts_.size(); }
  boost::asio::io_context& loop(std::size_t i) { return *contexts_[i]; }

  /// Starts one thread per loop. Returns at once.
  void start();
  /// Lets the loops finish their queued work and return; joins the threads.
  void stop_and_join();

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<Guard> guards_;
  std::vector<std::thread> threads_;
};

}  // namespace chatorbit::net
