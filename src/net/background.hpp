#pragma once
// Work of one event loop that yields to its live traffic. A crowd that joins at once
// (10,000 handshakes, then as many closes) is thousands of small handlers; in the
// loop's one FIFO queue a live room's message would wait behind all that were queued
// before it, once for each step of its way (read, store, delivery, pass). Handlers run
// through a Background instead wait in a queue of their own, which the loop drains in
// slices: each slice runs for at most `slice` and then goes to the back of the loop's
// queue, so live handlers queued meanwhile run between two slices. When nothing else is
// queued the slices follow each other at once: background work takes every moment the
// loop has free, and at least one slice per turn of its queue when it has none.
//
// The executor runs everything it is given through that queue, including the resumption
// of a coroutine co_spawn()ed on it after each operation it awaits: a whole handshake
// becomes background work with one change where it is spawned. I/O objects keep the
// loop's own executor; only the handlers bound to this one wait.
//
// Threading: one per loop, owned with it (EventLoops::background()). executor() and
// execute() may be called from any thread; the queue is touched on the loop's thread
// only (a call from another thread is posted there first).

#include <boost/asio/execution/blocking.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution/executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <type_traits>
#include <utility>

namespace chatorbit::net {

class Background {
 public:
  /// How long one slice of background work may hold the loop before live handlers get
  /// their turn. A handshake step takes 5-30 µs; half a millisecond is some 20 of them,
  /// few enough that a message crossing the loop several times waits a few ms at most.
  static constexpr std::chrono::microseconds kDefaultSlice{500};

  explicit Background(boost::asio::io_context& loop, std::chrono::microseconds slice = kDefaultSlice)
      : loop_(loop), slice_(slice) {}
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  class Executor;
  Executor executor() noexcept;

  /// Queues `f` (a move-only callable taking no arguments) to run on the loop as
  /// background work. Any thread.
  template <class F>
  void execute(F&& f) {
    if (closed_.load(std::memory_order_acquire)) return;  // `f` is destroyed by the caller, unrun
    Task task(std::forward<F>(f));
    if (loop_.get_executor().running_in_this_thread()) {
      push(std::move(task));
    } else {
      boost::asio::post(loop_, [this, t = std::move(task)]() mutable { push(std::move(t)); });
    }
  }

  /// After the loop has stopped, before its context is destroyed: destroys the handlers
  /// still queued, unrun, and drops those it is given from then on (the context's
  /// shutdown hands it the last steps of the coroutines it destroys).
  void close();

  boost::asio::io_context& loop() noexcept { return loop_; }
  /// Handlers waiting for a slice. Loop thread.
  std::size_t waiting() const { return tasks_.size(); }
  /// Slices run so far, and handlers run in them. Loop thread.
  std::uint64_t slices() const { return slices_; }
  std::uint64_t ran() const { return ran_; }

 private:
  /// A move-only callable, type-erased (asio's handlers cannot be copied).
  class Task {
   public:
    template <class F>
    explicit Task(F&& f) : impl_(std::make_unique<Impl<std::decay_t<F>>>(std::forward<F>(f))) {}
    void operator()() { impl_->run(); }

   private:
    struct Base {
      virtual ~Base() = default;
      virtual void run() = 0;
    };
    template <class F>
    struct Impl final : Base {
      explicit Impl(F&& f) : fn(std::move(f)) {}
      explicit Impl(const F& f) : fn(f) {}
      void run() override { std::move(fn)(); }
      F fn;
    };
    std::unique_ptr<Base> impl_;
  };

  void push(Task task);
  /// One slice: runs queued handlers until the queue is empty or the slice is over, and
  /// queues the next slice behind the loop's other handlers if work is left.
  void run_slice();

  boost::asio::io_context& loop_;
  const std::chrono::microseconds slice_;
  std::deque<Task> tasks_;
  bool slice_queued_ = false;
  std::atomic<bool> closed_{false};
  std::uint64_t slices_ = 0;
  std::uint64_t ran_ = 0;
};

/// Runs what it is given as background work of one loop (see Background). Satisfies
/// Asio's executor requirements, so it converts to any_io_executor: co_spawn() on it,
/// and bind handlers to it.
class Background::Executor {
 public:
  explicit Executor(Background& b) noexcept : b_(&b) {}

  boost::asio::execution_context& query(boost::asio::execution::context_t) const noexcept { return b_->loop_; }
  static constexpr boost::asio::execution::blocking_t query(boost::asio::execution::blocking_t) noexcept {
    return boost::asio::execution::blocking.never;
  }
  Executor require(boost::asio::execution::blocking_t::never_t) const noexcept { return *this; }

  template <class F>
  void execute(F&& f) const {
    b_->execute(std::forward<F>(f));
  }

  friend bool operator==(const Executor& a, const Executor& b) noexcept { return a.b_ == b.b_; }
  friend bool operator!=(const Executor& a, const Executor& b) noexcept { return a.b_ != b.b_; }

 private:
  Background* b_;
};

inline Background::Executor Background::executor() noexcept { return Executor(*this); }

static_assert(boost::asio::execution::is_executor<Background::Executor>::value);

}  // namespace chatorbit::net
