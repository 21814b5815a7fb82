#pragma once
// A callback that one thread replaces while others may be running it.

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace chatorbit {

/// Holds a callback that other threads call (an engine's subscriber, its resubscribed
/// hook). set() replaces it and returns only once no other thread is still running the
/// one it replaced: whatever that callback points at may be destroyed as soon as set({})
/// returns. A call on the thread that calls set() (a callback replacing itself) is not
/// waited for, since it would wait for itself.
///
/// Calls themselves run concurrently; the slot's lock is held only to take the callback
/// and to count the call, never while it runs.
template <class... Args>
class CallbackSlot {
 public:
  using Callback = std::function<void(Args...)>;

  CallbackSlot() = default;
  CallbackSlot(const CallbackSlot&) = delete;
  CallbackSlot& operator=(const CallbackSlot&) = delete;
  ~CallbackSlot() { set({}); }

  void set(Callback f) {
    auto next = f ? std::make_shared<Entry>(std::move(f)) : nullptr;
    std::unique_lock lock(mu_);
    auto old = std::exchange(current_, std::move(next));
    if (!old) return;
    const std::size_t mine = calls_here(old.get());
    idle_.wait(lock, [&] { return old->running <= mine; });
  }

  /// Runs the callback on this thread, if there is one; false if there was none.
  bool operator()(Args... args) const {
    std::shared_ptr<Entry> e;
    {
      std::lock_guard lock(mu_);
      if (!current_) return false;
      e = current_;
      ++e->running;
    }
    const Running running{*this, e};
    e->f(std::forward<Args>(args)...);
    return true;
  }

 private:
  struct Entry {
    explicit Entry(Callback fn) : f(std::move(fn)) {}
    Callback f;
    std::size_t running = 0;  // guarded by the slot's mu_
  };

  // The entries this thread is inside now (innermost last), to tell a call from inside
  // the callback itself from one on another thread.
  static std::vector<const Entry*>& here() {
    thread_local std::vector<const Entry*> entries;
    return entries;
  }

  static std::size_t calls_here(const Entry* e) {
    std::size_t n = 0;
    for (const Entry* x : here()) n += x == e ? 1 : 0;
    return n;
  }

  // Counts one call from its start to its end, also when the callback throws.
  struct Running {
    Running(const CallbackSlot& s, const std::shared_ptr<Entry>& e) : slot(s), entry(e) { here().push_back(e.get()); }
    ~Running() {
      here().pop_back();
      std::lock_guard lock(slot.mu_);
      --entry->running;
      if (entry != slot.current_) slot.idle_.notify_all();  // a set() may be waiting for it
    }
    Running(const Running&) = delete;
    Running& operator=(const Running&) = delete;
    const CallbackSlot& slot;
    const std::shared_ptr<Entry>& entry;
  };

  mutable std::mutex mu_;
  mutable std::condition_variable idle_;
  std::shared_ptr<Entry> current_;
};

}  // namespace chatorbit
