// The chat-load worker (connects, sends on schedule or closed-loop, checks what viewers
// receive) and the main thread's view of what the workers publish.

#include "chat_load.hpp"

#include <sys/prctl.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <thread>

namespace chatorbit::bench::detail {

namespace {

std::uint64_t parse_u64_at(const char* p, const char* end) {
  std::uint64_t v = 0;
  std::from_chars(p, end, v);
  return v;
}

}  // namespace

void FanoutWorker::run() {
  // Senders first: they are few, and the run cannot start without them.
  for (std::uint32_t i = 0; i < senders.size(); ++i) queue_.push_back(kSenderBit | i);
  for (std::uint32_t i = 0; i < viewers.size(); ++i) queue_.push_back(i);
  std::uint64_t last_expire = mono_ns();
  const int max_pending = sh_.o.connect_concurrency > 0 ? sh_.o.connect_concurrency : 256;
  const auto interval_ns = static_cast<std::uint64_t>(sh_.o.read_interval_us * 1000.0);
  if (interval_ns) prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  for (;;) {
    const int phase = sh_.phase.load(std::memory_order_acquire);
    if (phase == kStop) break;
    while (pending_ < max_pending && next_queued_ < queue_.size()) start(queue_[next_queued_++]);
    int timeout = 50;
    if (phase == kRun) timeout = std::min(timeout, tick_senders());
    const std::uint64_t polled = mono_ns();
    loop_.poll(timeout);
    if (sh_.phase.load(std::memory_order_acquire) == kRun) tick_senders();
    std::uint64_t now = mono_ns();
    if (interval_ns && phase != kConnect && now - polled < interval_ns) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(interval_ns - (now - polled)));
      now = mono_ns();
    }
    if (now - last_expire > 1'000'000'000ULL) {
      loop_.expire(now, static_cast<std::uint64_t>(sh_.o.handshake_timeout * 1e9));
      last_expire = now;
    }
    publish();
  }
  counters = loop_.counters();
}

void FanoutWorker::start(std::uint32_t tag) {
  const bool is_sender = tag & kSenderBit;
  const std::uint32_t i = tag & ~kSenderBit;
  const std::string& target = is_sender ? sh_.sender_targets[senders[i].gid] : sh_.viewer_targets[viewers[i].room];
  const std::uint64_t index = is_sender ? senders[i].gid : static_cast<std::uint64_t>(viewers[i].index) + 1000;
  // Over several nodes: a sender on node g mod K, a viewer on node (i + 1) mod K, so that
  // where rooms, senders and viewers are dealt alike (ingress: room i holds sender i and
  // viewer i) every message crosses from one node to another.
  const std::size_t node = is_sender ? senders[i].gid : static_cast<std::size_t>(viewers[i].index) + 1;
  const auto id = loop_.open(sh_.target.spec(target, index, tag, node));
  if (!id) {
    ConnEnd e;
    e.reason = EndReason::connect_failed;
    e.err = errno;
    ++ends[end_key(is_sender ? "sender" : "viewer", e)];
    if (is_sender) {
      senders[i].ended = true;
      ++senders_failed_;
    } else {
      viewers[i].ended = true;
      ++viewers_failed_;
    }
    return;
  }
  ++pending_;
  if (is_sender) {
    senders[i].conn = *id;
  } else {
    viewers[i].conn = *id;
  }
}

void FanoutWorker::on_open(ClientLoop&, std::uint32_t id, std::uint64_t) {
  --pending_;
  const std::uint32_t tag = loop_.tag(id);
  if (tag & kSenderBit) {
    senders[tag & ~kSenderBit].opened = true;
    ++senders_open_;
  } else {
    viewers[tag].opened = true;
    ++viewers_open_;
    sh_.rooms[viewers[tag].room].viewers_open.fetch_add(1, std::memory_order_relaxed);
  }
}

void FanoutWorker::on_end(ClientLoop&, std::uint32_t id, const ConnEnd& e) {
  const std::uint32_t tag = loop_.tag(id);
  const bool is_sender = tag & kSenderBit;
  ++ends[end_key(is_sender ? "sender" : "viewer", e)];
  if (!e.was_open) --pending_;
  if (is_sender) {
    Sender& s = senders[tag & ~kSenderBit];
    s.ended = true;
    s.in_flight = 0;  // whatever was in flight is unknown now: not expected anywhere
    if (e.was_open) {
      --senders_open_;
      ++senders_closed_;
    } else {
      ++senders_failed_;
    }
  } else {
    Viewer& v = viewers[tag];
    v.ended = true;
    if (e.was_open) {
      --viewers_open_;
      ++viewers_closed_;
      RoomPub& rp = sh_.rooms[v.room];
      rp.viewers_open.fetch_sub(1, std::memory_order_relaxed);
      rp.unique.fetch_sub(v.seq.unique(), std::memory_order_relaxed);
    } else {
      ++viewers_failed_;
    }
  }
}

void FanoutWorker::on_text(ClientLoop&, std::uint32_t id, std::string_view payload, std::uint64_t now) {
  const std::uint32_t tag = loop_.tag(id);
  if (tag & kSenderBit) {
    on_sender_text(senders[tag & ~kSenderBit], payload, now);
    return;
  }
  // Viewers: only chat messages matter; v1 messages start with {"id", v2 ones with
  // {"type":"message". Everything else (presence, welcome, moderation) is skipped
  // after one comparison.
  const char* p = payload.data();
  const char* const end = p + payload.size();
  if (payload.starts_with("{\"id\"")) {
    // v1
  } else if (payload.starts_with("{\"type\":\"message\"")) {
    // v2
  } else {
    return;
  }
  Viewer& v = viewers[tag];
  // "seq":N} closes the message.
  const char* q = end - 1;
  if (q > p && *q == '}') {
    const char* digits_end = q;
    while (q > p && q[-1] >= '0' && q[-1] <= '9') --q;
    if (q < digits_end && q - p > 7 && std::memcmp(q - 6, "\"seq\":", 6) == 0) {
      const std::uint64_t seq = parse_u64_at(q, digits_end);
      if (v.last_seq != 0) {
        if (seq <= v.last_seq) {
          ++seq_backwards;
        } else if (seq != v.last_seq + 1) {
          seq_gaps += seq - v.last_seq - 1;
        }
      }
      v.last_seq = std::max(v.last_seq, seq);
    }
  }
  static constexpr std::string_view kContent = "\"content\":\"";
  const void* c = memmem(p, payload.size(), kContent.data(), kContent.size());
  BenchContent bc;
  if (!c || !parse_bench_content(static_cast<const char*>(c) + kContent.size(), end, bc)) {
    ++foreign;
    return;
  }
  ++deliveries;
  const auto verdict = v.seq.on_receive(bc.sender, bc.counter);
  if (verdict == SequenceChecker::Verdict::in_order || verdict == SequenceChecker::Verdict::reordered) {
    sh_.rooms[v.room].unique.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t took = now > bc.send_ns ? now - bc.send_ns : 0;
    latency.record(took);
    const std::uint64_t t0 = sh_.t0.load(std::memory_order_relaxed);
    if (bc.send_ns >= t0) {
      const std::size_t slot = (bc.send_ns - t0) / kTimelineSlotNs;
      if (slot < kTimelineSlots) {
        if (worst_us_by_slot.size() <= slot) worst_us_by_slot.resize(slot + 1, 0);
        auto& worst = worst_us_by_slot[slot];
        worst = std::max(worst, static_cast<std::uint32_t>(std::min<std::uint64_t>(took / 1000, UINT32_MAX)));
      }
    }
  }
}

void FanoutWorker::on_sender_text(Sender& s, std::string_view payload, std::uint64_t now) {
  if (payload.starts_with("{\"type\":\"ack\"")) {
    const auto cid = json_string_field(payload, "cid");
    if (!cid) return;
    // "<sender>.<counter>": senders of one room may share an account, and the server
    // deduplicates cids per room and account.
    const auto dot = cid->find('.');
    if (dot == std::string::npos) return;
    const std::uint64_t counter = parse_u64_at(cid->data() + dot + 1, cid->data() + cid->size());
    if (payload.find("\"duplicate\":true") != std::string_view::npos) ++s.dup_acks;
    if (s.acked.insert(s.gid, counter)) {
      ++s.acked_n;
      sh_.rooms[s.room].acked.fetch_add(1, std::memory_order_relaxed);
      if (s.in_flight) --s.in_flight;
      if (counter + kRing > s.next) ack_latency.record(now - s.sent_at[counter % kRing]);
    }
  } else if (payload.starts_with("{\"type\":\"error\"")) {
    ++s.errors;
    ++error_codes[json_string_field(payload, "code").value_or("?")];
    if (json_string_field(payload, "cid") && s.in_flight) --s.in_flight;
  }
}

int FanoutWorker::tick_senders() {
  const std::uint64_t t0 = sh_.t0.load(std::memory_order_acquire);
  const std::uint64_t now = mono_ns();
  const double rate = sh_.per_sender_rate;
  const auto window = static_cast<std::uint64_t>(sh_.o.window);
  std::uint64_t wait_ns = 50'000'000;
  for (Sender& s : senders) {
    if (!s.opened || s.ended) continue;
    const std::uint64_t start = t0 + s.gid * sh_.sender_spacing_ns;
    if (now < start) {
      wait_ns = std::min(wait_ns, start - now);
      continue;
    }
    const double elapsed = static_cast<double>(now - start);
    const std::uint64_t due = sh_.closed_loop ? UINT64_MAX : static_cast<std::uint64_t>(elapsed * rate / 1e9) + 1;
    while (s.next < due && s.in_flight < window) send_one(s);
    if (sh_.closed_loop) continue;
    if (s.next < due) {
      const double behind = elapsed - static_cast<double>(s.next) / rate * 1e9;
      s.max_behind_ns = std::max(s.max_behind_ns, static_cast<std::uint64_t>(std::max(0.0, behind)));
    } else {
      const double next_at = static_cast<double>(s.next) / rate * 1e9;
      wait_ns = std::min(wait_ns, static_cast<std::uint64_t>(std::max(0.0, next_at - elapsed)));
    }
  }
  return static_cast<int>((wait_ns + 999'999) / 1'000'000);
}

void FanoutWorker::send_one(Sender& s) {
  const std::uint64_t counter = ++s.next;
  const std::uint64_t at = mono_ns();
  frame_.assign("{\"type\":\"message\",\"content\":\"");
  frame_ += make_bench_content(s.gid, counter, at, static_cast<std::size_t>(sh_.o.pad));
  frame_ += "\",\"cid\":\"";
  frame_ += std::to_string(s.gid);
  frame_ += '.';
  frame_ += std::to_string(counter);
  frame_ += "\"}";
  s.sent_at[counter % kRing] = at;
  loop_.send_text(s.conn, frame_);
  ++s.in_flight;
  ++sent_;
}

void FanoutWorker::publish() {
  std::uint64_t acked = 0, in_flight = 0, errors = 0;
  for (const Sender& s : senders) {
    acked += s.acked_n;
    in_flight += s.in_flight;
    errors += s.errors;
  }
  pub.viewers_open.store(viewers_open_, std::memory_order_relaxed);
  pub.viewers_failed.store(viewers_failed_, std::memory_order_relaxed);
  pub.viewers_closed.store(viewers_closed_, std::memory_order_relaxed);
  pub.senders_open.store(senders_open_, std::memory_order_relaxed);
  pub.senders_failed.store(senders_failed_, std::memory_order_relaxed);
  pub.senders_closed.store(senders_closed_, std::memory_order_relaxed);
  pub.sent.store(sent_, std::memory_order_relaxed);
  pub.acked.store(acked, std::memory_order_relaxed);
  pub.in_flight.store(in_flight, std::memory_order_relaxed);
  pub.errors.store(errors, std::memory_order_relaxed);
  pub.deliveries.store(deliveries, std::memory_order_relaxed);
}

FanoutTotals sum(const std::vector<std::unique_ptr<FanoutWorker>>& workers) {
  FanoutTotals t;
  for (const auto& w : workers) {
    const auto& p = w->pub;
    t.viewers_open += p.viewers_open.load(std::memory_order_relaxed);
    t.viewers_failed += p.viewers_failed.load(std::memory_order_relaxed);
    t.viewers_closed += p.viewers_closed.load(std::memory_order_relaxed);
    t.senders_open += p.senders_open.load(std::memory_order_relaxed);
    t.senders_failed += p.senders_failed.load(std::memory_order_relaxed);
    t.senders_closed += p.senders_closed.load(std::memory_order_relaxed);
    t.sent += p.sent.load(std::memory_order_relaxed);
    t.acked += p.acked.load(std::memory_order_relaxed);
    t.in_flight += p.in_flight.load(std::memory_order_relaxed);
    t.errors += p.errors.load(std::memory_order_relaxed);
    t.deliveries += p.deliveries.load(std::memory_order_relaxed);
  }
  return t;
}

std::uint64_t missing_deliveries(const FanoutShared& sh) {
  std::uint64_t missing = 0;
  for (std::uint32_t i = 0; i < sh.room_count; ++i) {
    const RoomPub& rp = sh.rooms[i];
    const std::uint64_t want =
        rp.viewers_open.load(std::memory_order_relaxed) * rp.acked.load(std::memory_order_relaxed);
    const std::uint64_t have = rp.unique.load(std::memory_order_relaxed);
    missing += want - std::min(want, have);
  }
  return missing;
}

}  // namespace chatorbit::bench::detail
