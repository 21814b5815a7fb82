#include "chat/pipeline.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <unordered_map>

#include "core/log.hpp"
#include "core/run_blocking.hpp"

namespace chatorbit::chat {

void MessagePipeline::enqueue(store::Message m, boost::asio::any_io_executor home, Completion done,
                              bool may_be_resend) {
  bool schedule = false;
  {
    std::lock_guard lock(mu_);
    pending_.push_back({std::move(m), std::move(home), std::move(done), may_be_resend});
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

  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::vector<std::pair<std::exception_ptr, PostResult>> results(batch.size());
  std::vector<std::size_t> fresh;                          // indexes of messages to store, in seq order
  std::vector<std::size_t> original(batch.size(), kNone);  // in-batch resend -> its original
  std::vector<bool> resent(batch.size(), false);           // found stored by the append itself
  std::size_t kept = 0;                                    // fresh[0, kept) are stored
  auto rest = store::PartialAppend::Rest::not_stored;      // what fresh[kept, ...) are
  bool appending = false;                                  // false: failed before the append
  std::exception_ptr failure;
  try {
    // Resends: a cid already stored (or earlier in this batch) is acknowledged with the
    // original id and seq, and stored nothing.
    // A store whose appends refuse a stored cid themselves is asked only about possible
    // resends; any other is found by the write that would store it twice (below).
    std::vector<std::optional<store::Message>> stored(batch.size());
    {
      const bool refuses = s.refuses_duplicate_cids();
      std::vector<store::CidKey> keys;
      std::vector<std::size_t> asked;  // keys[k] is batch[asked[k]]'s
      for (std::size_t i = 0; i < batch.size(); ++i) {
        const auto& m = batch[i].message;
        if (m.cid.empty() || (refuses && !batch[i].may_be_resend)) continue;
        keys.push_back({m.room_id, m.user_id, m.cid});
        asked.push_back(i);
      }
      if (!keys.empty()) {
        auto found = s.find_by_cids(keys);
        for (std::size_t k = 0; k < asked.size(); ++k) stored[asked[k]] = std::move(found.at(k));
      }
      cid_lookups_.fetch_add(keys.size(), std::memory_order_relaxed);
    }
    std::map<std::tuple<std::string_view, std::string_view, std::string_view>, std::size_t> seen;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto& m = batch[i].message;
      if (!m.cid.empty()) {
        const auto key =
            std::make_tuple(std::string_view(m.room_id), std::string_view(m.user_id), std::string_view(m.cid));
        if (auto it = seen.find(key); it != seen.end()) {
          original[i] = it->second;
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
    appending = true;
    std::size_t pos = 0;  // rows[0, pos) are stored
    try {
      while (pos < rows.size()) {
        try {
          s.append_messages(std::span(rows).subspan(pos));
          pos = rows.size();
        } catch (const store::PartialAppend& e) {
          const std::size_t at = pos + e.stored();
          const auto& original = e.duplicate_of();
          if (!original || at >= rows.size()) throw;
          // A resend of a stored message, refused by the store's unique cid: answered with
          // the original, and out of the batch (the seq it was given stays unused).
          results[fresh[at]].second = {original->id, original->seq, true};
          resent[fresh[at]] = true;
          resends_refused_.fetch_add(1, std::memory_order_relaxed);
          fresh.erase(fresh.begin() + static_cast<std::ptrdiff_t>(at));
          rows.erase(rows.begin() + static_cast<std::ptrdiff_t>(at));
          pos = at;
        }
      }
      kept = rows.size();
    } catch (const store::PartialAppend& e) {
      kept = std::min(pos + e.stored(), rows.size());
      rest = e.rest();
      throw;
    } catch (...) {
      kept = pos;
      rest = store::PartialAppend::Rest::unknown;  // outside the contract: assume the worst
      throw;
    }
    batches_.fetch_add(1, std::memory_order_relaxed);
  } catch (const std::exception& e) {
    failure = std::current_exception();
    const std::size_t unstored = appending ? fresh.size() - kept : batch.size();
    const bool unknown = rest == store::PartialAppend::Rest::unknown;
    log::error("message_batch_failed", {{"messages", batch.size()},
                                        {"stored", kept},
                                        {"not_stored", unknown ? std::size_t{0} : unstored},
                                        {"unknown", unknown ? unstored : std::size_t{0}},
                                        {"what", e.what()}});
    if (!appending) {
      // find_by_cids or numbering failed: nothing was stored, and no resend was resolved.
      for (auto& r : results) r.first = failure;
      fresh.clear();
      kept = 0;
    }
  }
  stored_.fetch_add(kept, std::memory_order_relaxed);
  // The stored prefix is acknowledged; the rest (not stored, or of unknown outcome) hears
  // the error. Resends in the batch share their original's fate.
  std::vector<bool> is_stored(batch.size(), false);
  for (std::size_t k = 0; k < fresh.size(); ++k) {
    const std::size_t i = fresh[k];
    if (k < kept) {
      is_stored[i] = true;
      results[i].second = {batch[i].message.id, batch[i].message.seq, false};
    } else {
      results[i].first = failure;
    }
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const std::size_t j = original[i];
    if (j == kNone || results[i].first) continue;
    if (resent[j]) {
      results[i].second = results[j].second;
    } else if (is_stored[j]) {
      results[i].second = {batch[j].message.id, batch[j].message.seq, true};
    } else {
      results[i].first = failure;
    }
  }
  const auto failed = std::count_if(results.begin(), results.end(), [](const auto& r) { return r.first != nullptr; });
  unstored_.fetch_add(static_cast<std::uint64_t>(failed), std::memory_order_relaxed);
  fresh.resize(kept);  // only what is stored is published
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
