#include "chat/pipeline.hpp"

#include <boost/asio/post.hpp>

#include <map>
#include <stdexcept>
#include <unordered_map>

#include "core/log.hpp"
#include "core/run_blocking.hpp"

namespace chatorbit::chat {

void MessagePipeline::enqueue(store::Message m, boost::asio::any_io_executor home, Completion done) {
  bool schedule = false;
  {
    std::lock_guard lock(mu_);
    pending_.push_back({std::move(m), std::move(home), std::move(done)});
    schedule = !scheduled_;
    scheduled_ = true;
  }
  // One batch job at a time: whatever arrives while it runs forms the next batch.
  if (schedule) store_.post(store::Lane::messages, [this](store::Store& s) { write_batch(s); });
}

void MessagePipeline::number(store::Store& s, std::vector<Pending>& batch, const std::vector<std::size_t>& fresh) {
  // One block per room for the whole batch, in one reservation.
  std::vector<engine::SequenceRequest> requests;
  std::unordered_map<std::string_view, std::size_t> slot;  // room -> index in requests
  for (std::size_t i : fresh) {
    const auto [it, added] = slot.try_emplace(batch[i].message.room_id, requests.size());
    if (added) {
      requests.push_back({batch[i].message.room_id, 0, std::nullopt});
    }
    ++requests[it->second].count;
  }
  if (requests.empty()) return;
  // The message lane waits for the reservation: one round trip per batch.
  auto firsts = run_blocking(engine_.reserve_sequences(requests));
  // Rooms the engine has no counter for (never numbered, or forgotten by a restart):
  // asked again with the store's highest seq as the floor, so no stored seq is reused.
  std::vector<engine::SequenceRequest> unknown;
  std::vector<std::size_t> unknown_slot;
  for (std::size_t k = 0; k < requests.size(); ++k) {
    if (firsts.at(k) != 0) continue;
    unknown.push_back({requests[k].room_id, requests[k].count, s.max_seq(requests[k].room_id)});
    unknown_slot.push_back(k);
  }
  if (!unknown.empty()) {
    const auto seeded = run_blocking(engine_.reserve_sequences(std::move(unknown)));
    for (std::size_t j = 0; j < unknown_slot.size(); ++j) firsts[unknown_slot[j]] = seeded.at(j);
  }
  for (std::size_t i : fresh) {
    auto& m = batch[i].message;
    const std::size_t k = slot.at(m.room_id);
    if (firsts[k] == 0) throw std::runtime_error("the engine reserved no sequence numbers for room " + m.room_id);
    m.seq = firsts[k]++;
  }
}

void MessagePipeline::write_batch(store::Store& s) {
  std::vector<Pending> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(pending_);
    scheduled_ = false;
  }
  if (batch.empty()) return;

  std::vector<std::pair<std::exception_ptr, PostResult>> results(batch.size());
  std::vector<std::size_t> fresh;  // indexes of messages to store
  try {
    // Resends: a cid already stored (or earlier in this batch) is acknowledged with the
    // original id and seq, and stored nothing.
    std::vector<store::CidKey> keys;
    keys.reserve(batch.size());
    for (const auto& p : batch) keys.push_back({p.message.room_id, p.message.user_id, p.message.cid});
    const auto stored = s.find_by_cids(keys);
    std::map<std::tuple<std::string_view, std::string_view, std::string_view>, std::size_t> seen;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto& m = batch[i].message;
      if (!m.cid.empty()) {
        const auto key =
            std::make_tuple(std::string_view(m.room_id), std::string_view(m.user_id), std::string_view(m.cid));
        if (auto it = seen.find(key); it != seen.end()) {
          results[i].second = {batch[it->second].message.id, 0, true};
          continue;
        }
        if (stored[i]) {
          results[i].second = {stored[i]->id, stored[i]->seq, true};
          continue;
        }
        seen.emplace(key, i);
      }
      fresh.push_back(i);
    }
    number(s, batch, fresh);
    std::vector<store::Message> rows;
    rows.reserve(fresh.size());
    for (std::size_t i : fresh) rows.push_back(batch[i].message);
    if (!rows.empty()) s.append_messages(rows);
    stored_.fetch_add(rows.size(), std::memory_order_relaxed);
    batches_.fetch_add(1, std::memory_order_relaxed);
    for (std::size_t i : fresh) results[i].second = {batch[i].message.id, batch[i].message.seq, false};
    // In-batch resends learn their original's seq now that it has one.
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (results[i].second.duplicate && results[i].second.seq == 0) {
        for (std::size_t j : fresh) {
          if (batch[j].message.id == results[i].second.id) results[i].second.seq = batch[j].message.seq;
        }
      }
    }
  } catch (const std::exception& e) {
    log::error("message_batch_failed", {{"messages", batch.size()}, {"what", e.what()}});
    const auto error = std::current_exception();
    for (auto& r : results) r.first = error;
    fresh.clear();  // nothing stored, nothing to publish
  }
  // Stored: published in seq order; the senders hear of it once the broker took each
  // (at once with the memory engine), with `published` false where it did not.
  auto outcome = std::make_shared<Outcome>(std::move(batch), std::move(results), fresh.size() + 1);
  for (std::size_t i : fresh) {
    publish_(outcome->batch[i].message, [this, outcome, i](std::string_view error) {
      if (!error.empty()) {
        outcome->results[i].second.published = false;
        publish_failures_.fetch_add(1, std::memory_order_relaxed);
        log::error(
            "publish_failed",
            {{"room", outcome->batch[i].message.room_id}, {"seq", outcome->batch[i].message.seq}, {"error", error}});
      }
      if (outcome->unconfirmed.fetch_sub(1, std::memory_order_acq_rel) == 1) complete(*outcome);
    });
  }
  if (outcome->unconfirmed.fetch_sub(1, std::memory_order_acq_rel) == 1) complete(*outcome);
}

void MessagePipeline::complete(Outcome& outcome) {
  auto& batch = outcome.batch;
  auto& results = outcome.results;
  // One hand-off per event loop for the whole batch, not one per message: each post
  // to a sleeping loop is a wake-up, and with the store thread on the same core every
  // wake-up is a context switch (the largest single cost in the ingress profile).
  std::vector<bool> handed(batch.size(), false);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (handed[i]) continue;
    auto group = std::make_shared<std::vector<std::pair<Completion, std::pair<std::exception_ptr, PostResult>>>>();
    for (std::size_t j = i; j < batch.size(); ++j) {
      if (handed[j] || batch[j].home != batch[i].home) continue;
      handed[j] = true;
      group->emplace_back(std::move(batch[j].done), std::move(results[j]));
    }
    boost::asio::post(batch[i].home, [group] {
      for (auto& [done, result] : *group) done(result.first, std::move(result.second));
    });
  }
}

}  // namespace chatorbit::chat
