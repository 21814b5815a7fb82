#pragma once
// The message pipeline: every accepted message is numbered, stored and then published,
// in that order, in batches. It runs on the store worker's messages lane, alone there:
//   take everything submitted since the last batch -> drop resends (same cid) ->
//   reserve per-room sequence numbers -> one transaction -> publish each message in
//   sequence order -> resume each sender.
// Because one thread does all three steps, publication order equals sequence order
// (within this process) and a message is never published before it is stored.
//
// A failed batch (store::PartialAppend: the store says which prefix of it is stored):
// the stored messages are published and acknowledged as usual; every other sender gets
// the exception, whether its message is not stored or of unknown outcome (a connection
// lost mid-batch: it may be stored). Neither is published, so nothing unstored ever
// reaches a viewer. An error for a message that was in fact stored is safe: a resend with
// the same cid is found and acknowledged with its stored id and seq, never stored twice;
// it stays unpublished, but is in the room's history. (A message without a cid cannot be
// matched: its resend is a new message.) Sequence numbers of unstored messages are not
// handed out again: the room's seq has a gap there.
//
// How a resend is found. Before numbering, so that it takes no seq, by find_by_cids: for
// every message on a store that cannot refuse a stored cid itself (SQLite, where the
// lookup is a local index probe), and, on one that can (Store::refuses_duplicate_cids,
// MongoDB), only for messages the caller says may be resends (enqueue()). Any other
// resend is refused by the append that would store it twice, naming the original: it is
// acknowledged with the original, and the seq it was given stays unused (a gap, which
// viewers' sequencers skip after their order wait).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "store/store_worker.hpp"

namespace chatorbit::chat {

struct PostResult {
  std::string id;
  std::uint64_t seq = 0;
  bool duplicate = false;  ///< a resend of an already stored cid: nothing new was stored
  /// False: stored, but the broker did not take the publication, so no viewer got it
  /// live (it is in the room's history).
  bool published = true;
};

/// Publishes a stored message (v1 JSON) on the room's channel, and reports to `done`
/// whether the broker took it. Runs on the messages lane; `done` may run on any thread.
using Publisher = std::function<void(const store::Message& m, engine::PublishDone done)>;

class MessagePipeline {
 public:
  MessagePipeline(store::StoreWorker& store, engine::Engine& engine, Publisher publish)
      : store_(store), engine_(engine), publish_(std::move(publish)) {}

  /// Numbers, stores and publishes `m` (id, room, user, content, timestamp, cid set by
  /// the caller). Completes on the caller's executor; throws if `m` is not known to be
  /// stored (it was then not published): a store::PartialAppend if its batch failed in
  /// the append (rest() says whether `m` is not stored or of unknown outcome), the
  /// error itself (a StoreError, an engine failure) if the batch failed before that:
  /// nothing of it was then stored.
  /// `may_be_resend`: as for enqueue().
  auto submit(store::Message m, bool may_be_resend = true) {
    // The message travels behind a unique_ptr (see offload.hpp: GCC 12 and coroutine
    // arguments).
    auto boxed = std::make_unique<store::Message>(std::move(m));
    auto initiate = [this, may_be_resend](auto handler, std::unique_ptr<store::Message> msg) {
      auto h = std::make_shared<decltype(handler)>(std::move(handler));
      boost::asio::any_io_executor home = boost::asio::get_associated_executor(*h);
      enqueue(
          std::move(*msg), std::move(home),
          [h](std::exception_ptr e, PostResult r) { std::move (*h)(e, std::move(r)); }, may_be_resend);
    };
    return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>, void(std::exception_ptr, PostResult)>(
        std::move(initiate), boost::asio::use_awaitable, std::move(boxed));
  }

  /// Resumes the sender; runs on the `home` executor given to enqueue().
  using Completion = std::function<void(std::exception_ptr, PostResult)>;

  /// The callback form of submit(): `done` runs on `home` once `m` is stored, or with
  /// the error submit() would throw. Messages enqueued one after another are numbered, stored, published
  /// and completed in that order. `may_be_resend` false: the caller knows that `m`'s cid
  /// was not sent before on its connection and the client did not mark it as a resend
  /// (chat/resend_window.hpp), so a store that refuses stored cids need not be asked
  /// first (see the file comment).
  void enqueue(store::Message m, boost::asio::any_io_executor home, Completion done, bool may_be_resend = true);

  /// Messages stored so far (for metrics).
  std::uint64_t stored() const { return stored_.load(std::memory_order_relaxed); }
  /// Batches written so far (for metrics).
  std::uint64_t batches() const { return batches_.load(std::memory_order_relaxed); }
  /// Messages whose senders got an error: not stored, or not known to be (for metrics).
  std::uint64_t unstored() const { return unstored_.load(std::memory_order_relaxed); }
  /// Messages looked up by cid before their batch was numbered (for metrics).
  std::uint64_t cid_lookups() const { return cid_lookups_.load(std::memory_order_relaxed); }
  /// Resends found only by the append's refusal: each left its seq unused (for metrics).
  std::uint64_t resends_refused() const { return resends_refused_.load(std::memory_order_relaxed); }
  /// Stored messages whose publication the broker refused (for metrics).
  std::uint64_t publish_failures() const { return publish_failures_.load(std::memory_order_relaxed); }

 private:
  struct Pending {
    store::Message message;
    boost::asio::any_io_executor home;
    Completion done;
    bool may_be_resend = true;
  };
  /// A batch between its commit and its senders' completions: those wait until the
  /// broker has answered for every publication (`unconfirmed` reaches 0).
  struct Outcome {
    Outcome(std::vector<Pending> b, std::vector<std::pair<std::exception_ptr, PostResult>> r, std::size_t n)
        : batch(std::move(b)), results(std::move(r)), unconfirmed(n) {}
    std::vector<Pending> batch;
    std::vector<std::pair<std::exception_ptr, PostResult>> results;
    std::atomic<std::size_t> unconfirmed;
  };
  void write_batch(store::Store& s);
  /// Hands each sender its result, one post per event loop.
  static void complete(Outcome& outcome);
  /// Gives each message batch[i], i in `fresh`, its seq: one reservation for the batch,
  /// a block per room, numbered in batch order.
  void number(store::Store& s, std::vector<Pending>& batch, const std::vector<std::size_t>& fresh);

  store::StoreWorker& store_;
  engine::Engine& engine_;
  Publisher publish_;
  std::mutex mu_;
  std::vector<Pending> pending_;
  bool scheduled_ = false;
  std::atomic<std::uint64_t> stored_{0};
  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> publish_failures_{0};
  std::atomic<std::uint64_t> unstored_{0};
  std::atomic<std::uint64_t> cid_lookups_{0};
  std::atomic<std::uint64_t> resends_refused_{0};
};

}  // namespace chatorbit::chat
