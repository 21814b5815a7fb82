// Fuzz target: the broker publication codec (chat/publication.hpp), as a node receives
// whatever another node (or anything else with access to the broker) published.
//
// Input: the payload.
//
// Oracles, beyond the sanitizers: a decoded publication's JSON is the payload after its
// first newline; a message has a seq of at least 1; a version is 1..kPublicationVersion;
// encoding what was decoded gives a payload that decodes to the same kind, seq and JSON;
// the event parsers never throw and an account event always names a user.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "chat/publication.hpp"
#include "fuzz_check.hpp"

namespace {

namespace chat = chatorbit::chat;

void check(bool ok, const char* what) { chatorbit::fuzz::check(ok, "publication_fuzz", what); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  const auto d = chat::decode_publication(payload);
  if (!d.publication) return 0;
  const auto& p = *d.publication;
  check(p.json == payload.substr(payload.find('\n') + 1), "json is what follows the header line");
  check(p.version >= 1 && p.version <= chat::kPublicationVersion, "version in range");
  if (p.kind == chat::PublicationKind::message) {
    check(p.seq >= 1, "a message has a seq");
    const auto wire = chat::encode_message(p.seq, p.json);  // the decoded json views it: keep it
    const auto again = chat::decode_publication(wire);
    check(again.publication && again.publication->seq == p.seq && again.publication->json == p.json,
          "a message re-encodes to itself");
  }
  if (const auto e = chat::parse_account_event(p.json)) check(!e->user_id.empty(), "an account event names a user");
  (void)chat::parse_moderation_event(p.json);
  return 0;
}
