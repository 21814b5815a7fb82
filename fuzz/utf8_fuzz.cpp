// Fuzz target: the UTF-8 validator (net/utf8.hpp): is_valid_utf8, utf8_length and the
// incremental Utf8Validator.
//
// Input: byte 0 seeds how the rest is cut into pieces; bytes 1.. are the text.
//
// Oracle: a reference built by brute force rather than by reasoning about byte ranges.
// At start-up every Unicode scalar value (U+0000..U+10FFFF less the surrogates) is
// encoded with the textbook shortest-form encoder, and every encoding and every proper
// prefix of one is put in a set. Against that set:
//  - is_valid_utf8(s) iff s splits into whole encodings;
//  - the first impossible byte is the first one at which the bytes of the current
//    sequence stop being a prefix of any encoding; Utf8Validator promises to fail fast,
//    so fed one byte at a time it must fail at exactly that byte, and fed in pieces, at
//    the piece that holds it; complete() must agree at the end;
//  - utf8_length of valid text equals the number of encodings it split into.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

#include "fuzz_check.hpp"
#include "net/utf8.hpp"

namespace {

void check(bool ok, const char* what) { chatorbit::fuzz::check(ok, "utf8_fuzz", what); }

std::string encode(std::uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

struct Tables {
  std::unordered_set<std::string> whole;    ///< every valid encoding
  std::unordered_set<std::string> partial;  ///< every proper, non-empty prefix of one
  Tables() {
    for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      const std::string e = encode(cp);
      whole.insert(e);
      for (std::size_t k = 1; k < e.size(); ++k) partial.insert(e.substr(0, k));
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

struct Reference {
  std::size_t good = 0;       ///< bytes before the first impossible one (size if none)
  bool complete = false;      ///< the whole input is valid UTF-8
  std::size_t sequences = 0;  ///< whole encodings in the valid part
};

Reference reference(std::string_view s) {
  const Tables& t = tables();
  Reference r;
  std::string seq;  // the bytes of the sequence being read
  for (std::size_t j = 0; j < s.size(); ++j) {
    seq += s[j];
    if (t.whole.count(seq) != 0) {
      ++r.sequences;
      seq.clear();
    } else if (t.partial.count(seq) == 0) {
      r.good = j;
      return r;
    }
  }
  r.good = s.size();
  r.complete = seq.empty();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::uint32_t seed = data[0];
  const std::string_view s(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Reference ref = reference(s);

  check(chatorbit::ws::is_valid_utf8(s) == ref.complete, "is_valid_utf8 disagrees with the reference");
  if (ref.complete) check(chatorbit::ws::utf8_length(s) == ref.sequences, "utf8_length miscounts");
  // Any input: safe, and never more than the bytes.
  check(chatorbit::ws::utf8_length(s) <= s.size(), "utf8_length over the byte count");

  // One byte at a time: fails at exactly the first impossible byte.
  chatorbit::ws::Utf8Validator v1;
  for (std::size_t j = 0; j < s.size(); ++j) {
    const bool ok = v1.feed(s.substr(j, 1));
    check(ok == (j < ref.good), "byte-wise Utf8Validator fails at the wrong byte");
    if (!ok) {
      check(v1.failed() && !v1.complete(), "failed validator does not say so");
      check(!v1.feed("a"), "failed validator recovered without reset()");
      break;
    }
  }
  check(v1.complete() == ref.complete, "byte-wise complete() disagrees");

  // In seeded pieces (including empty ones): fails at the piece holding that byte.
  chatorbit::ws::Utf8Validator v2;
  std::size_t pos = 0;
  bool failed = false;
  while (pos < s.size() && !failed) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t n = std::min<std::size_t>((seed >> 16) % 12, s.size() - pos);
    const bool ok = v2.feed(s.substr(pos, n));
    const bool holds_bad = ref.good < pos + n;
    check(ok == !holds_bad, "piece-wise Utf8Validator fails at the wrong piece");
    failed = !ok;
    pos += n;
  }
  check(v2.complete() == ref.complete, "piece-wise complete() disagrees");

  // reset() forgets a failure or a half-read sequence.
  v2.reset();
  check(v2.complete() && v2.feed("ok") && v2.complete(), "reset() did not reset");
  return 0;
}
