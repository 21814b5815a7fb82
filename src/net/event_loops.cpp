#include "net/event_loops.hpp"

#include "core/log.hpp"

namespace chatorbit::net {

EventLoops::EventLoops(int count) {
  if (count <= 0) count = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < count; ++i) {
    // Concurrency hint 1: each context is run by exactly one thread, so Asio can skip
    // its internal locking.
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    backgrounds_.push_back(std::make_unique<Background>(*contexts_.back()));
  }
}

EventLoops::~EventLoops() {
  stop_and_join();
  for (auto& b : backgrounds_) b->close();
  contexts_.clear();
}

void EventLoops::start() {
  for (auto& ctx : contexts_) guards_.emplace_back(ctx->get_executor());
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([this, i] {
      for (;;) {
        try {
          contexts_[i]->run();
          return;
        } catch (const std::exception& e) {
          // A handler let an exception escape: log it and keep the loop serving.
          log::error("event_loop_exception", {{"loop", static_cast<std::int64_t>(i)}, {"what", e.what()}});
        }
      }
    });
  }
}

void EventLoops::stop_and_join() {
  guards_.clear();
  for (auto& ctx : contexts_) ctx->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace chatorbit::net
