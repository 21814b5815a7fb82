#include "net/background.hpp"

namespace chatorbit::net {

void Background::close() {
  closed_.store(true, std::memory_order_release);
  // Destroying a handler may hand another to execute(), which drops it now.
  std::deque<Task> unrun;
  unrun.swap(tasks_);
  unrun.clear();
}

void Background::push(Task task) {
  if (closed_.load(std::memory_order_acquire)) return;  // handed over before close(): dropped
  tasks_.push_back(std::move(task));
  if (slice_queued_) return;
  slice_queued_ = true;
  boost::asio::post(loop_, [this] { run_slice(); });
}

void Background::run_slice() {
  ++slices_;
  // Queues the next slice however this one ends: a handler that throws leaves the loop
  // (EventLoops logs it and goes on), and the handlers behind it must not be stranded.
  struct Next {
    Background& b;
    ~Next() {
      if (b.tasks_.empty()) {
        b.slice_queued_ = false;
      } else {
        boost::asio::post(b.loop_, [bg = &b] { bg->run_slice(); });
      }
    }
  } next{*this};
  const auto until = std::chrono::steady_clock::now() + slice_;
  while (!tasks_.empty()) {
    Task task = std::move(tasks_.front());
    tasks_.pop_front();
    ++ran_;
    task();
    if (std::chrono::steady_clock::now() >= until) break;
  }
}

}  // namespace chatorbit::net
