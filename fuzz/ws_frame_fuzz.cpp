// Fuzz target: ws::FrameReader, the decoder of everything a WebSocket client sends.
//
// Input: byte 0 picks the message limit (low 2 bits) and how the rest is cut into
// chunks (high 6 bits, a seed); bytes 1.. are the client's byte stream.
//
// Oracles, beyond the sanitizers:
//  - differential: the stream fed in one piece and fed in seeded chunks of 1..N bytes
//    must yield the same events (FrameReader promises the outcome does not depend on
//    how the input was cut);
//  - the header's contract on each event: text is valid UTF-8, a message is within the
//    limit, control payloads are at most 125 bytes, close codes are valid or 1005, an
//    error carries 1002, 1007 or 1009 and is terminal, nothing follows a close.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "net/utf8.hpp"
#include "net/ws_frame.hpp"

namespace {

using chatorbit::ws::Event;
using chatorbit::ws::FrameReader;
using Kind = Event::Kind;

void check(bool ok, const char* what) { chatorbit::fuzz::check(ok, "ws_frame_fuzz", what); }

struct Recorded {
  Kind kind;
  std::string payload;
  std::uint16_t code;
};

// Drains `r` until need_more, checking each event against the contract.
void drain(FrameReader& r, std::vector<Recorded>& out) {
  for (int guard = 0;; ++guard) {
    check(guard < 1'000'000, "next() never returns need_more");
    Event ev = r.next();
    if (ev.kind == Kind::need_more) return;
    switch (ev.kind) {
      case Kind::text:
        check(chatorbit::ws::is_valid_utf8(ev.payload), "text message is not valid UTF-8");
        [[fallthrough]];
      case Kind::binary: check(ev.payload.size() <= r.max_message_bytes(), "message over the limit"); break;
      case Kind::ping:
      case Kind::pong: check(ev.payload.size() <= chatorbit::ws::kMaxControlPayload, "control payload over 125"); break;
      case Kind::close:
        check(r.closed(), "close event but not closed()");
        check(ev.code == chatorbit::ws::close_code::no_status || chatorbit::ws::is_valid_close_code(ev.code),
              "close event with an invalid code");
        check(ev.payload.size() <= chatorbit::ws::kMaxCloseReason, "close reason over 123 bytes");
        check(chatorbit::ws::is_valid_utf8(ev.payload), "close reason is not UTF-8");
        break;
      case Kind::error: {
        check(r.failed(), "error event but not failed()");
        check(ev.code == 1002 || ev.code == 1007 || ev.code == 1009, "error with an unexpected close code");
        check(!ev.reason.empty(), "error without a reason");
        // Terminal: the same error again, whatever comes next.
        Event again = r.next();
        check(again.kind == Kind::error && again.code == ev.code, "error is not repeated");
        break;
      }
      case Kind::need_more: break;
    }
    out.push_back(Recorded{ev.kind, std::move(ev.payload), ev.code});
    if (ev.kind == Kind::error || ev.kind == Kind::close) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static constexpr std::size_t kLimits[] = {FrameReader::kDefaultMaxMessageBytes, 16, 125, 1024};
  const std::size_t limit = kLimits[data[0] & 3];
  std::uint32_t seed = data[0] >> 2;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  FrameReader whole(limit);
  std::vector<Recorded> a;
  whole.feed(stream);
  drain(whole, a);

  FrameReader chunked(limit);
  std::vector<Recorded> b;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    // A small LCG: chunks of 1..17 bytes, so headers and masks are split everywhere.
    seed = seed * 1103515245u + 12345u;
    const std::size_t n = std::min<std::size_t>(1 + (seed >> 16) % 17, stream.size() - pos);
    chunked.feed(stream.substr(pos, n));
    pos += n;
    drain(chunked, b);
    // After a terminal event, feeding more must change nothing.
    if (chunked.failed() || chunked.closed()) {
      chunked.feed(stream.substr(pos));
      const Event after = chunked.next();
      if (chunked.failed()) {
        check(after.kind == Kind::error && after.code == b.back().code, "a failed reader forgot its error");
      } else {
        check(after.kind == Kind::need_more, "a closed reader produced an event");
      }
      break;
    }
  }

  check(a.size() == b.size(), "event count depends on chunking");
  for (std::size_t i = 0; i < a.size(); ++i) {
    check(a[i].kind == b[i].kind, "event kind depends on chunking");
    check(a[i].payload == b[i].payload, "event payload depends on chunking");
    check(a[i].code == b[i].code, "event code depends on chunking");
  }
  check(whole.failed() == chunked.failed() && whole.closed() == chunked.closed(), "final state depends on chunking");
  return 0;
}
