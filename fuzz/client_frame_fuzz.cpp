// Fuzz target: the JSON frames a chat client sends (chat/client_frame.hpp).
//
// Input: the frame's text, as the WebSocket codec hands it over (it has checked UTF-8;
// invalid UTF-8 is fed too, since the parser must not rely on it for memory safety).
//
// Oracles, beyond the sanitizers: exactly one of frame and error; a parsed history
// request has limit 1..kMaxHistoryLimit and before >= 1; a frame's cid is never longer
// than kMaxCidBytes and is the one reported; parsing is a function (the same text gives
// the same answer).

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chat/client_frame.hpp"
#include "fuzz_check.hpp"

namespace {

namespace chat = chatorbit::chat;

void check(bool ok, const char* what) { chatorbit::fuzz::check(ok, "client_frame_fuzz", what); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto p = chat::parse_client_frame(text);
  check(p.frame.has_value() == p.error.empty(), "exactly one of frame and error");
  check(p.cid.size() <= chat::kMaxCidBytes || !p.frame, "a frame's cid is bounded");
  if (p.frame) {
    const auto& f = *p.frame;
    check(f.cid == p.cid, "the frame's cid is the reported one");
    check(f.cid.size() <= chat::kMaxCidBytes, "cid at most kMaxCidBytes");
    if (f.type == chat::ClientFrame::Type::history) {
      check(f.limit >= 1 && f.limit <= chat::kMaxHistoryLimit, "history limit in range");
      check(!f.before || *f.before >= 1, "history before at least 1");
    }
  }
  const auto again = chat::parse_client_frame(text);
  check(again.error == p.error && again.cid == p.cid && again.frame.has_value() == p.frame.has_value(),
        "parsing is deterministic");
  return 0;
}
