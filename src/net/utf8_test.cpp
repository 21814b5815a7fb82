#include "net/utf8.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace chatorbit::ws {
namespace {

constexpr std::size_t npos = std::string::npos;

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

std::string encode(std::uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

// A model of RFC 3629 built differently from the implementation: it reasons about the
// range of code points a partial sequence can still become, instead of byte ranges.
// bad_at is the index of the first byte after which no continuation can be valid
// (npos if none); complete is true if the whole string is valid.
struct Reference {
  std::size_t bad_at = npos;
  bool complete = false;
};

Reference reference(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    int n;
    std::uint32_t cp;
    std::uint32_t min;
    if ((b & 0xE0) == 0xC0) {
      n = 2, cp = b & 0x1F, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      n = 3, cp = b & 0x0F, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      n = 4, cp = b & 0x07, min = 0x10000;
    } else {
      return {i, false};
    }
    const auto can_become_valid = [&](std::uint32_t prefix, int have) {
      const int rest = 6 * (n - have);
      const std::uint32_t lo = std::max(prefix << rest, min);
      const std::uint32_t hi = std::min((prefix << rest) | ((1u << rest) - 1), std::uint32_t{0x10FFFF});
      return lo <= hi && !(lo >= 0xD800 && hi <= 0xDFFF);
    };
    if (!can_become_valid(cp, 1)) return {i, false};
    for (int k = 1; k < n; ++k) {
      if (i + k >= s.size()) return {npos, false};
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return {i + k, false};
      cp = (cp << 6) | (c & 0x3F);
      if (!can_become_valid(cp, k + 1)) return {i + k, false};
    }
    i += n;
  }
  return {npos, true};
}

// Checks the implementation against the model: whole-string validity, and that a
// byte-at-a-time validator fails exactly on the first impossible byte.
void expect_matches_reference(std::string_view s) {
  const Reference ref = reference(s);
  EXPECT_EQ(is_valid_utf8(s), ref.complete);
  Utf8Validator v;
  std::size_t failed_at = npos;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!v.feed(s.substr(i, 1))) {
      failed_at = i;
      break;
    }
  }
  EXPECT_EQ(failed_at, ref.bad_at);
  if (failed_at == npos) {
    EXPECT_EQ(v.complete(), ref.complete);
  }
}

std::string hex(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    out += digits[b >> 4];
    out += digits[b & 15];
    out += ' ';
  }
  return out;
}

TEST(Utf8, EmptyAndAscii) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("Hello, world"));
  EXPECT_TRUE(is_valid_utf8(std::string_view("\0\x7f", 2)));
  EXPECT_TRUE(is_valid_utf8(std::string(1000, 'a')));
}

TEST(Utf8, ValidSequences) {
  const std::vector<std::string> valid = {
      "Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!",  // Autobahn 6.2.1
      "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5",                             // "kosme", 6.5.1
      encode(0x0),
      encode(0x7F),
      encode(0x80),
      encode(0x7FF),
      encode(0x800),
      encode(0xD7FF),
      encode(0xE000),
      encode(0xFFFD),
      encode(0xFFFE),
      encode(0xFFFF),
      encode(0x10000),
      encode(0x10FFFF),
      encode(0x1F600),
  };
  for (const auto& s : valid) {
    SCOPED_TRACE(hex(s));
    EXPECT_TRUE(is_valid_utf8(s));
    expect_matches_reference(s);
  }
}

TEST(Utf8, InvalidSequences) {
  const std::vector<std::string> invalid = {
      // Lone and stray continuation bytes.
      bytes({0x80}),
      bytes({0xBF}),
      bytes({0x80, 0xBF}),
      bytes({0x80, 0xBF, 0x80}),
      bytes({'a', 0x80, 'b'}),
      // Overlong encodings, including every form of '/' and of U+0000.
      bytes({0xC0, 0xAF}),
      bytes({0xE0, 0x80, 0xAF}),
      bytes({0xF0, 0x80, 0x80, 0xAF}),
      bytes({0xC1, 0xBF}),
      bytes({0xE0, 0x9F, 0xBF}),
      bytes({0xF0, 0x8F, 0xBF, 0xBF}),
      bytes({0xC0, 0x80}),
      bytes({0xE0, 0x80, 0x80}),
      bytes({0xF0, 0x80, 0x80, 0x80}),
      // Five- and six-byte forms (obsolete, RFC 2279).
      bytes({0xF8, 0x88, 0x80, 0x80, 0x80}),
      bytes({0xFC, 0x84, 0x80, 0x80, 0x80, 0x80}),
      bytes({0xF8, 0x80, 0x80, 0x80, 0xAF}),
      bytes({0xFC, 0x80, 0x80, 0x80, 0x80, 0xAF}),
      // UTF-16 surrogates, single and paired.
      bytes({0xED, 0xA0, 0x80}),
      bytes({0xED, 0xAD, 0xBF}),
      bytes({0xED, 0xAE, 0x80}),
      bytes({0xED, 0xAF, 0xBF}),
      bytes({0xED, 0xB0, 0x80}),
      bytes({0xED, 0xBE, 0x80}),
      bytes({0xED, 0xBF, 0xBF}),
      bytes({0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80}),
      bytes({0xED, 0xAF, 0xBF, 0xED, 0xBF, 0xBF}),
      // Above U+10FFFF.
      bytes({0xF4, 0x90, 0x80, 0x80}),
      bytes({0xF7, 0xBF, 0xBF, 0xBF}),
      bytes({0xF5, 0x80, 0x80, 0x80}),
      // Never valid anywhere.
      bytes({0xFE}),
      bytes({0xFF}),
      bytes({0xFE, 0xFE, 0xFF, 0xFF}),
      // Truncated sequences, alone and followed by more text.
      bytes({0xC2}),
      bytes({0xE0, 0xA0}),
      bytes({0xF0, 0x90, 0x80}),
      bytes({0xC2, 'a'}),
      bytes({0xE1, 0x80, 'a'}),
      bytes({0xF1, 0x80, 0x80, 'a'}),
      bytes({0xDF}),
      bytes({0xEF, 0xBF}),
      bytes({0xF7, 0xBF, 0xBF}),
      // Autobahn 6.3.1: valid text with a surrogate in the middle.
      "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80\x65\x64\x69\x74\x65\x64",
  };
  for (const auto& s : invalid) {
    SCOPED_TRACE(hex(s));
    EXPECT_FALSE(is_valid_utf8(s));
    expect_matches_reference(s);
  }
}

TEST(Utf8, ExhaustiveOneAndTwoBytes) {
  for (int a = 0; a < 256; ++a) {
    expect_matches_reference(bytes({a}));
    for (int b = 0; b < 256; ++b) expect_matches_reference(bytes({a, b}));
  }
}

TEST(Utf8, ThreeAndFourBytesOverBoundaryValues) {
  // Every byte value where a decision changes, plus neighbours.
  const std::vector<int> interesting = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0,
                                        0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0,
                                        0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFB, 0xFC, 0xFE, 0xFF};
  for (int a : interesting) {
    for (int b : interesting) {
      for (int c : interesting) {
        expect_matches_reference(bytes({a, b, c}));
        for (int d : interesting) {
          const std::string s = bytes({a, b, c, d});
          const Reference ref = reference(s);
          ASSERT_EQ(is_valid_utf8(s), ref.complete) << hex(s);
        }
      }
    }
  }
}

TEST(Utf8, AllCodePointsRoundTrip) {
  for (std::uint32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x11000 ? 1 : 0x3F)) {
    const std::string s = encode(cp);
    const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    ASSERT_EQ(is_valid_utf8(s), !surrogate) << std::hex << cp;
  }
}

// The word-at-a-time path must not skip over a non-ASCII byte, wherever it falls
// relative to an 8-byte step, and must hand partial sequences to the byte path intact.
TEST(Utf8, FastPathEveryOffset) {
  for (std::size_t len = 1; len <= 40; ++len) {
    for (std::size_t at = 0; at < len; ++at) {
      std::string s(len, 'x');
      s[at] = static_cast<char>(0x80);
      ASSERT_FALSE(is_valid_utf8(s)) << len << " " << at;
      s[at] = static_cast<char>(0xFF);
      ASSERT_FALSE(is_valid_utf8(s)) << len << " " << at;
      for (const std::uint32_t cp : {0xE9u, 0x20ACu, 0x1F600u}) {
        const std::string mb = encode(cp);
        std::string t(len, 'x');
        t.insert(at, mb);
        ASSERT_TRUE(is_valid_utf8(t)) << len << " " << at;
        ASSERT_EQ(utf8_length(t), len + 1);
        // Cut short at the end: truncated.
        ASSERT_FALSE(is_valid_utf8(std::string_view(t).substr(0, at + mb.size() - 1)));
      }
    }
  }
}

TEST(Utf8, Length) {
  EXPECT_EQ(utf8_length(""), 0u);
  EXPECT_EQ(utf8_length("abc"), 3u);
  EXPECT_EQ(utf8_length("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"), 5u);
  EXPECT_EQ(utf8_length(encode(0x1F600)), 1u);
  EXPECT_EQ(utf8_length("caf\xC3\xA9 \xE2\x82\xAC" + encode(0x10FFFF)), 7u);
}

TEST(Utf8Validator, StartsComplete) {
  Utf8Validator v;
  EXPECT_TRUE(v.complete());
  EXPECT_FALSE(v.failed());
  EXPECT_TRUE(v.feed(""));
  EXPECT_TRUE(v.complete());
}

TEST(Utf8Validator, SequenceSplitAcrossChunks) {
  const std::string s = "a" + encode(0x20AC) + encode(0x1F600) + "z";
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    for (std::size_t cut2 = cut; cut2 <= s.size(); ++cut2) {
      Utf8Validator v;
      ASSERT_TRUE(v.feed(std::string_view(s).substr(0, cut)));
      ASSERT_TRUE(v.feed(std::string_view(s).substr(cut, cut2 - cut)));
      const bool at_boundary = cut2 == 0 || cut2 == 1 || cut2 == 4 || cut2 == 8 || cut2 == 9;
      ASSERT_EQ(v.complete(), at_boundary) << cut << " " << cut2;
      ASSERT_TRUE(v.feed(std::string_view(s).substr(cut2)));
      ASSERT_TRUE(v.complete());
    }
  }
}

TEST(Utf8Validator, FailsFastOnFirstImpossibleByte) {
  Utf8Validator v;
  EXPECT_TRUE(v.feed("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"));
  EXPECT_TRUE(v.feed("\xED"));  // could still be U+D000..U+D7FF
  EXPECT_FALSE(v.complete());
  EXPECT_FALSE(v.feed("\xA0"));  // now it can only be a surrogate
  EXPECT_TRUE(v.failed());
  EXPECT_FALSE(v.complete());
}

TEST(Utf8Validator, FailureIsStickyUntilReset) {
  Utf8Validator v;
  EXPECT_FALSE(v.feed("\xFF"));
  EXPECT_FALSE(v.feed("abc"));
  EXPECT_FALSE(v.complete());
  v.reset();
  EXPECT_TRUE(v.complete());
  EXPECT_TRUE(v.feed("abc"));
  EXPECT_TRUE(v.feed("\xC3"));
  v.reset();  // drops the half-read sequence
  EXPECT_TRUE(v.complete());
  EXPECT_TRUE(v.feed("abc"));
}

TEST(Utf8Validator, RandomStringsInRandomChunks) {
  std::mt19937 rng(20240601);
  const std::vector<std::uint32_t> cps = {0x24, 0xA2, 0x939, 0x20AC, 0xD55C, 0x10348, 0xD7FF, 0xE000, 0x10FFFF};
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s;
    const int parts = static_cast<int>(rng() % 12);
    for (int p = 0; p < parts; ++p) {
      switch (rng() % 4) {
        case 0: s += static_cast<char>(rng() % 256); break;  // often invalid
        case 1: s += std::string(rng() % 20, 'a'); break;    // ASCII runs for the fast path
        default: s += encode(cps[rng() % cps.size()]); break;
      }
    }
    const Reference ref = reference(s);
    ASSERT_EQ(is_valid_utf8(s), ref.complete) << hex(s);

    // Random chunks: feed() must fail in exactly the chunk holding the first bad byte.
    Utf8Validator v;
    std::size_t pos = 0;
    bool ok = true;
    while (pos < s.size()) {
      const std::size_t n = std::min<std::size_t>(s.size() - pos, 1 + rng() % 10);
      const bool fed = v.feed(std::string_view(s).substr(pos, n));
      const bool bad_in_chunk = ref.bad_at != npos && ref.bad_at >= pos && ref.bad_at < pos + n;
      ASSERT_EQ(fed, !bad_in_chunk) << hex(s) << " chunk at " << pos;
      pos += n;
      if (!fed) {
        ok = false;
        break;
      }
    }
    if (ok) {
      ASSERT_EQ(v.complete(), ref.complete) << hex(s);
    }
  }
}

}  // namespace
}  // namespace chatorbit::ws
