#include "net/ws_frame.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "net/utf8.hpp"

// The Autobahn|Testsuite cannot run in this environment, so its case families are
// reproduced here against the codec directly; test names carry the Autobahn section.

namespace chatorbit::ws {
namespace {

using Kind = Event::Kind;

constexpr std::uint8_t kCont = 0x0, kText = 0x1, kBinary = 0x2, kClose = 0x8, kPing = 0x9, kPong = 0xA;

// ---------------------------------------------------------------------------------
// Test-side encoder for client frames: anything a client could put on the wire,
// including what a correct client never would.

enum class Len { minimal, len7, len16, len64 };

struct F {
  std::uint8_t op = kText;
  std::string_view payload = {};
  bool fin = true;
  std::uint8_t rsv = 0;  ///< the three RSV bits, 0..7 (RSV1 is 4)
  bool masked = true;
  Len len = Len::minimal;
  std::uint32_t key = 0x37FA213D;
  std::optional<std::uint64_t> declared = std::nullopt;  ///< length field, if not payload.size()
};

std::string frame(const F& f) {
  std::string out;
  out.push_back(static_cast<char>((f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.op & 0x0F)));
  const std::uint64_t n = f.declared.value_or(f.payload.size());
  Len form = f.len;
  if (form == Len::minimal) form = n <= 125 ? Len::len7 : n <= 0xFFFF ? Len::len16 : Len::len64;
  const char mask_bit = f.masked ? static_cast<char>(0x80) : 0;
  if (form == Len::len7) {
    out.push_back(static_cast<char>(mask_bit | static_cast<char>(n)));
  } else if (form == Len::len16) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(n >> (8 * i)));
  }
  const unsigned char key[4] = {static_cast<unsigned char>(f.key >> 24), static_cast<unsigned char>(f.key >> 16),
                                static_cast<unsigned char>(f.key >> 8), static_cast<unsigned char>(f.key)};
  if (f.masked) out.append(reinterpret_cast<const char*>(key), 4);
  for (std::size_t i = 0; i < f.payload.size(); ++i) {
    out.push_back(static_cast<char>(f.payload[i] ^ (f.masked ? key[i % 4] : 0)));
  }
  return out;
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

std::string close_payload(std::uint16_t code, std::string_view reason = {}) {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code));
  p.append(reason);
  return p;
}

// ---------------------------------------------------------------------------------
// Test-side decoder for server frames, to check the encoder independently.

struct ServerFrame {
  bool fin = false;
  int rsv = 0;
  int op = 0;
  bool masked = false;
  std::size_t header = 0;
  std::string payload;
};

// Reads one frame from the front of `in` and removes it; fails the test if the frame is
// truncated or its length is not in the shortest form.
ServerFrame read_server_frame(std::string_view& in) {
  ServerFrame f;
  if (in.size() < 2) {
    ADD_FAILURE() << "truncated header";
    return f;
  }
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(in[i]); };
  f.fin = (b(0) & 0x80) != 0;
  f.rsv = (b(0) >> 4) & 7;
  f.op = b(0) & 0x0F;
  f.masked = (b(1) & 0x80) != 0;
  std::uint64_t n = b(1) & 0x7F;
  f.header = 2;
  if (n == 126) {
    n = (std::uint64_t{b(2)} << 8) | b(3);
    f.header = 4;
    EXPECT_GE(n, 126u) << "16-bit form for a short payload";
  } else if (n == 127) {
    n = 0;
    for (std::size_t i = 0; i < 8; ++i) n = (n << 8) | b(2 + i);
    f.header = 10;
    EXPECT_GT(n, 0xFFFFu) << "64-bit form for a short payload";
  }
  if (f.masked) f.header += 4;
  if (in.size() < f.header + n) {
    ADD_FAILURE() << "truncated payload";
    in = {};
    return f;
  }
  f.payload = std::string(in.substr(f.header, n));
  in.remove_prefix(f.header + n);
  return f;
}

// ---------------------------------------------------------------------------------
// Running the reader.

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::need_more: return "need_more";
    case Kind::text: return "text";
    case Kind::binary: return "binary";
    case Kind::ping: return "ping";
    case Kind::pong: return "pong";
    case Kind::close: return "close";
    case Kind::error: return "error";
  }
  return "?";
}

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F) {
      out += c;
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

// A comparable, readable summary of an event; large payloads are summarized by a hash.
std::string describe(const Event& e, bool with_reason = false) {
  std::string s = kind_name(e.kind);
  if (e.kind == Kind::close || e.kind == Kind::error) s += " " + std::to_string(e.code);
  if (with_reason && e.kind == Kind::error) s += " (" + std::string(e.reason) + ")";
  if (e.kind != Kind::error && e.kind != Kind::need_more) {
    s += " [" + std::to_string(e.payload.size()) + "] ";
    if (e.payload.size() <= 40) {
      s += printable(e.payload);
    } else {
      s += printable(e.payload.substr(0, 16)) + "... #" + std::to_string(std::hash<std::string>{}(e.payload));
    }
  }
  return s;
}

std::string ev(Kind k, std::string_view payload = {}, std::uint16_t code = 0) {
  return describe(Event{k, std::string(payload), code, {}});
}
std::string text(std::string_view p) { return ev(Kind::text, p); }
std::string binary(std::string_view p) { return ev(Kind::binary, p); }
std::string ping(std::string_view p) { return ev(Kind::ping, p); }
std::string pong(std::string_view p) { return ev(Kind::pong, p); }
std::string closed(std::uint16_t code, std::string_view reason = {}) { return ev(Kind::close, reason, code); }
std::string error(std::uint16_t code) { return ev(Kind::error, {}, code); }

using Events = std::vector<std::string>;

// Calls next() until need_more or an error (which is included).
std::vector<Event> drain(FrameReader& r) {
  std::vector<Event> out;
  for (int guard = 0; guard < 10'000'000; ++guard) {
    Event e = r.next();
    if (e.kind == Kind::need_more) return out;
    const bool stop = e.kind == Kind::error;
    out.push_back(std::move(e));
    if (stop) return out;
  }
  ADD_FAILURE() << "next() never returned need_more";
  return out;
}

// Feeds `bytes` in chunks whose sizes come from `chunk`, draining after each chunk
// (or, if `lazy`, only now and then, so that unparsed input piles up in the reader).
std::vector<Event> run(std::string_view bytes, std::size_t max, const std::function<std::size_t()>& chunk,
                       bool lazy = false, std::mt19937* rng = nullptr) {
  FrameReader r(max);
  std::vector<Event> out;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const std::size_t n = std::min(bytes.size() - pos, std::max<std::size_t>(1, chunk()));
    r.feed(bytes.substr(pos, n));
    pos += n;
    if (lazy && rng != nullptr && (*rng)() % 4 != 0 && pos < bytes.size()) continue;
    for (auto& e : drain(r)) out.push_back(std::move(e));
    if (!out.empty() && out.back().kind == Kind::error) break;
  }
  if (out.empty() || out.back().kind != Kind::error) {
    for (auto& e : drain(r)) out.push_back(std::move(e));
  }
  return out;
}

std::vector<std::string> describe_all(const std::vector<Event>& events, bool with_reason) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(describe(e, with_reason));
  return out;
}

// Decodes `bytes` three ways (all at once, one byte at a time, random chunks) and
// checks the events are identical, so every test below also tests chunking.
std::vector<Event> decode_events(std::string_view bytes, std::size_t max = FrameReader::kDefaultMaxMessageBytes) {
  const auto whole = run(bytes, max, [&] { return bytes.size(); });
  const auto expected = describe_all(whole, true);
  if (bytes.size() <= 200'000) {
    EXPECT_EQ(describe_all(run(bytes, max, [] { return std::size_t{1}; }), true), expected) << "1-byte chunks";
  }
  std::mt19937 rng(static_cast<std::uint32_t>(std::hash<std::string_view>{}(bytes)));
  const auto random_chunk = [&]() -> std::size_t { return rng() % 2 ? 1 + rng() % 16 : 1 + rng() % 5000; };
  EXPECT_EQ(describe_all(run(bytes, max, random_chunk), true), expected) << "random chunks";
  EXPECT_EQ(describe_all(run(bytes, max, random_chunk, true, &rng), true), expected) << "lazy random chunks";
  for (const auto& e : whole) {
    if (e.kind == Kind::error) {
      EXPECT_FALSE(e.reason.empty());
    }
  }
  return whole;
}

Events decode(std::string_view bytes, std::size_t max = FrameReader::kDefaultMaxMessageBytes) {
  return describe_all(decode_events(bytes, max), false);
}

std::string repeat(std::string_view unit, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += unit;
  return s;
}

std::string binary_pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) & 0xFF);
  return s;
}

const std::string kKosme = "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5";

// =================================================================================
// Encoding

TEST(WsEncode, LengthFormsRoundTrip) {
  for (const std::size_t n : {0, 1, 125, 126, 127, 65535, 65536, 70000}) {
    SCOPED_TRACE(n);
    const std::string payload = binary_pattern(n);
    for (const Opcode op : {Opcode::text, Opcode::binary}) {
      const std::string wire = make_frame(op, payload);
      EXPECT_EQ(wire.size(), frame_size(n));
      std::string_view in = wire;
      const ServerFrame f = read_server_frame(in);
      EXPECT_TRUE(in.empty());
      EXPECT_TRUE(f.fin);
      EXPECT_EQ(f.rsv, 0);
      EXPECT_FALSE(f.masked);
      EXPECT_EQ(f.op, static_cast<int>(op));
      EXPECT_EQ(f.header, n <= 125 ? 2u : n <= 65535 ? 4u : 10u);
      EXPECT_EQ(f.payload, payload);
    }
  }
}

TEST(WsEncode, ExactHeaderBytes) {
  EXPECT_EQ(make_frame(Opcode::text, ""), std::string("\x81\x00", 2));
  EXPECT_EQ(make_frame(Opcode::binary, "ab"), bytes({0x82, 0x02, 'a', 'b'}));
  EXPECT_EQ(make_frame(Opcode::text, std::string(126, 'x')).substr(0, 4), std::string("\x81\x7E\x00\x7E", 4));
  EXPECT_EQ(make_frame(Opcode::text, std::string(65536, 'x')).substr(0, 10),
            std::string("\x81\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10));
  EXPECT_EQ(make_frame(Opcode::ping, "p"), std::string("\x89\x01p", 3));
  EXPECT_EQ(make_frame(Opcode::pong, ""), std::string("\x8A\x00", 2));
}

TEST(WsEncode, ControlFramePayloadLimit) {
  EXPECT_NO_THROW(make_frame(Opcode::ping, std::string(125, 'x')));
  EXPECT_THROW(make_frame(Opcode::ping, std::string(126, 'x')), std::invalid_argument);
  EXPECT_THROW(make_frame(Opcode::pong, std::string(126, 'x')), std::invalid_argument);
  EXPECT_THROW(make_frame(Opcode::close, std::string(126, 'x')), std::invalid_argument);
  EXPECT_THROW(make_frame(Opcode::continuation, "x"), std::invalid_argument);
}

TEST(WsEncode, CoalescedFramesReadBackInOrder) {
  std::string out;
  for (int i = 0; i < 50; ++i)
    append_frame(out, Opcode::text, std::string(static_cast<std::size_t>(i * 7), 'a' + i % 26));
  append_frame(out, Opcode::ping, "hb");
  append_close_frame(out, close_code::going_away, "restart");
  std::string_view in = out;
  for (int i = 0; i < 50; ++i) {
    const ServerFrame f = read_server_frame(in);
    EXPECT_EQ(f.op, kText);
    EXPECT_EQ(f.payload, std::string(static_cast<std::size_t>(i * 7), 'a' + i % 26));
  }
  EXPECT_EQ(read_server_frame(in).payload, "hb");
  const ServerFrame c = read_server_frame(in);
  EXPECT_EQ(c.op, kClose);
  EXPECT_EQ(c.payload, close_payload(1001, "restart"));
  EXPECT_TRUE(in.empty());
}

TEST(WsEncode, CloseFrame) {
  EXPECT_EQ(make_close_frame(close_code::normal), std::string("\x88\x02\x03\xE8", 4));
  EXPECT_EQ(make_close_frame(close_code::banned, "banned"), bytes({0x88, 0x08, 0x0F, 0xA3}) + "banned");
  EXPECT_EQ(make_close_frame(close_code::slow_consumer).substr(2), close_payload(4008));
  EXPECT_EQ(make_close_frame(close_code::no_status, "ignored"), std::string("\x88\x00", 2));
  for (const std::uint16_t bad : {0, 999, 1004, 1006, 1015, 2000, 5000}) {
    EXPECT_THROW(make_close_frame(bad), std::invalid_argument) << bad;
  }
  // Registered after RFC 6455: a draining node's "service restart", "try again
  // later", "bad gateway".
  for (const std::uint16_t later : {1012, 1013, 1014}) {
    EXPECT_EQ(make_close_frame(later).substr(2), close_payload(later)) << later;
  }
}

// Every close frame we produce must be accepted by a conforming peer: checked by
// masking it as a client would and running it through FrameReader.
std::string decode_own_close(const std::string& wire, std::uint16_t* code) {
  std::string_view in = wire;
  const ServerFrame f = read_server_frame(in);
  EXPECT_EQ(f.op, kClose);
  EXPECT_LE(f.payload.size(), 125u);
  FrameReader r;
  r.feed(frame({.op = kClose, .payload = f.payload}));
  const Event e = r.next();
  EXPECT_EQ(e.kind, Kind::close) << describe(e, true);
  *code = e.code;
  return e.payload;
}

TEST(WsEncode, CloseReasonTruncatedAtCodePointBoundary) {
  const std::string euro = "\xE2\x82\xAC", e_acute = "\xC3\xA9", grin = "\xF0\x9F\x98\x80";
  struct Case {
    std::string reason;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {std::string(123, 'a'), std::string(123, 'a')},
      {std::string(200, 'a'), std::string(123, 'a')},
      {std::string(122, 'a') + e_acute, std::string(122, 'a')},
      {std::string(121, 'a') + e_acute, std::string(121, 'a') + e_acute},
      {std::string(121, 'a') + euro, std::string(121, 'a')},
      {std::string(120, 'a') + euro + "b", std::string(120, 'a') + euro},
      {std::string(120, 'a') + grin, std::string(120, 'a')},
      {std::string(119, 'a') + grin + grin, std::string(119, 'a') + grin},
      {repeat(euro, 60), repeat(euro, 41)},
      {repeat(grin, 40), repeat(grin, 30)},
      {"bad \xFF utf8", ""},
      {std::string(10, 'a') + "\xC3", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.reason.size());
    std::uint16_t code = 0;
    const std::string reason = decode_own_close(make_close_frame(close_code::policy, c.reason), &code);
    EXPECT_EQ(code, close_code::policy);
    EXPECT_EQ(reason, c.expected);
    EXPECT_TRUE(is_valid_utf8(reason));
  }
}

// =================================================================================
// Decoding: basics

TEST(WsDecode, SimpleTextAndBinary) {
  EXPECT_EQ(decode(frame({.op = kText, .payload = "Hello"})), Events{text("Hello")});
  EXPECT_EQ(decode(frame({.op = kBinary, .payload = std::string_view("\x00\xFF", 2)})),
            Events{binary(std::string_view("\x00\xFF", 2))});
}

TEST(WsDecode, NothingFedMeansNeedMore) {
  FrameReader r;
  EXPECT_EQ(r.next().kind, Kind::need_more);
  r.feed("");
  EXPECT_EQ(r.next().kind, Kind::need_more);
  r.feed(std::string_view("\x81", 1));
  EXPECT_EQ(r.next().kind, Kind::need_more);
  EXPECT_FALSE(r.failed());
  EXPECT_FALSE(r.closed());
}

TEST(WsDecode, UnmaskedClientFrameIsProtocolError) {
  EXPECT_EQ(decode(frame({.op = kText, .payload = "Hello", .masked = false})), Events{error(1002)});
  EXPECT_EQ(decode(make_frame(Opcode::ping, "")), Events{error(1002)});
  EXPECT_EQ(decode(frame({.op = kText, .payload = "ok"}) + frame({.op = kText, .payload = "x", .masked = false})),
            (Events{text("ok"), error(1002)}));
}

TEST(WsDecode, ManyFramesInOneChunk) {
  std::string wire;
  Events expected;
  for (int i = 0; i < 1000; ++i) {
    const std::string p = "message " + std::to_string(i);
    wire += frame({.op = kText, .payload = p, .key = static_cast<std::uint32_t>(i * 2654435761u)});
    expected.push_back(text(p));
  }
  EXPECT_EQ(decode(wire), expected);
}

TEST(WsDecode, UnmaskingEveryLengthKeyAndSplit) {
  std::mt19937 rng(7);
  for (std::size_t n = 0; n <= 80; ++n) {
    const std::string payload = binary_pattern(n);
    const std::uint32_t key = rng();
    const std::string wire = frame({.op = kBinary, .payload = payload, .key = key});
    // Split the payload at every point, so unmasking resumes at every key phase.
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
      FrameReader r;
      r.feed(std::string_view(wire).substr(0, cut));
      auto first = drain(r);
      r.feed(std::string_view(wire).substr(cut));
      auto second = drain(r);
      ASSERT_EQ(first.size() + second.size(), 1u);
      const Event& e = first.empty() ? second[0] : first[0];
      ASSERT_EQ(e.kind, Kind::binary);
      ASSERT_EQ(e.payload, payload) << n << " " << cut;
    }
  }
  EXPECT_EQ(decode(frame({.op = kText, .payload = "zero key", .key = 0})), Events{text("zero key")});
  EXPECT_EQ(decode(frame({.op = kText, .payload = "ones", .key = 0xFFFFFFFF})), Events{text("ones")});
}

TEST(WsDecode, NonMinimalLengthFormsAccepted) {
  for (const Len len : {Len::len16, Len::len64}) {
    EXPECT_EQ(decode(frame({.op = kText, .payload = "short", .len = len})), Events{text("short")});
    EXPECT_EQ(decode(frame({.op = kText, .payload = "", .len = len})), Events{text("")});
    EXPECT_EQ(decode(frame({.op = kPing, .payload = "p", .len = len})), Events{ping("p")});
  }
  const std::string mid(300, 'm');
  EXPECT_EQ(decode(frame({.op = kBinary, .payload = mid, .len = Len::len64})), Events{binary(mid)});
}

TEST(WsDecode, ErrorIsSticky) {
  FrameReader r;
  r.feed(frame({.op = kText, .payload = "a", .rsv = 4}));
  const Event e = r.next();
  EXPECT_EQ(e.kind, Kind::error);
  EXPECT_EQ(e.code, 1002);
  EXPECT_TRUE(r.failed());
  r.feed(frame({.op = kText, .payload = "ignored"}));
  for (int i = 0; i < 3; ++i) {
    const Event again = r.next();
    EXPECT_EQ(again.kind, Kind::error);
    EXPECT_EQ(again.code, 1002);
    EXPECT_EQ(again.reason, e.reason);
  }
}

TEST(WsDecode, CloseIsTerminal) {
  FrameReader r;
  r.feed(frame({.op = kText, .payload = "a"}) + frame({.op = kClose, .payload = close_payload(1000)}) +
         frame({.op = kText, .payload = "after close"}));
  EXPECT_EQ(r.next().kind, Kind::text);
  const Event c = r.next();
  EXPECT_EQ(c.kind, Kind::close);
  EXPECT_EQ(c.code, 1000);
  EXPECT_TRUE(r.closed());
  EXPECT_EQ(r.next().kind, Kind::need_more);
  r.feed(frame({.op = kText, .payload = "later"}));
  EXPECT_EQ(r.next().kind, Kind::need_more);
  // Garbage after the close is not even looked at.
  EXPECT_EQ(decode(frame({.op = kClose}) + "\xFF\xFF\xFF"), Events{closed(1005)});
}

// Input piles up when the caller feeds without draining, and is drained one event per
// feed afterwards: the buffer must be compacted correctly (and without re-copying the
// whole backlog on every feed).
TEST(WsDecode, InterleavedFeedAndNext) {
  std::string backlog;
  for (int i = 0; i < 20000; ++i) backlog += frame({.op = kPing, .payload = "p"});
  const std::string tail = frame({.op = kText, .payload = std::string(5000, 't')});
  FrameReader r;
  r.feed(backlog);
  std::size_t fed = 0, pings = 0;
  for (;;) {
    const Event e = r.next();
    if (e.kind == Kind::need_more) {
      if (fed == tail.size()) break;
      r.feed(std::string_view(tail).substr(fed++, 1));
      continue;
    }
    if (e.kind == Kind::ping) {
      ++pings;
      if (fed < tail.size()) r.feed(std::string_view(tail).substr(fed++, 1));
      continue;
    }
    ASSERT_EQ(e.kind, Kind::text);
    EXPECT_EQ(e.payload, std::string(5000, 't'));
    break;
  }
  EXPECT_EQ(pings, 20000u);
}

TEST(WsDecode, OneByteFeedsOfALargeMessage) {
  const std::string payload = binary_pattern(512 * 1024);
  const std::string wire = frame({.op = kBinary, .payload = payload});
  FrameReader r(1 << 20);
  std::vector<Event> got;
  for (char c : wire) {
    r.feed(std::string_view(&c, 1));
    for (auto& e : drain(r)) got.push_back(std::move(e));
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, payload);
}

// =================================================================================
// Autobahn 1.x: framing of text and binary messages.

TEST(Autobahn1, TextAndBinaryOfEverySizeBoundary) {
  for (const std::size_t n : {0, 125, 126, 127, 65535, 65536}) {
    SCOPED_TRACE(n);
    const std::string t(n, '*');
    const auto te = decode_events(frame({.op = kText, .payload = t}));
    ASSERT_EQ(te.size(), 1u);
    EXPECT_EQ(te[0].kind, Kind::text);
    EXPECT_EQ(te[0].payload, t);

    const std::string b = binary_pattern(n);
    const auto be = decode_events(frame({.op = kBinary, .payload = b}));
    ASSERT_EQ(be.size(), 1u);
    EXPECT_EQ(be[0].kind, Kind::binary);
    EXPECT_EQ(be[0].payload, b);
  }
}

TEST(Autobahn1, SizesInEveryLengthForm) {
  for (const std::size_t n : {0, 125}) {
    for (const Len len : {Len::len7, Len::len16, Len::len64}) {
      EXPECT_EQ(decode(frame({.op = kBinary, .payload = std::string(n, 'b'), .len = len})),
                Events{binary(std::string(n, 'b'))});
    }
  }
  for (const std::size_t n : {126, 65535}) {
    for (const Len len : {Len::len16, Len::len64}) {
      EXPECT_EQ(decode(frame({.op = kBinary, .payload = std::string(n, 'b'), .len = len})),
                Events{binary(std::string(n, 'b'))});
    }
  }
}

// =================================================================================
// Autobahn 2.x: ping and pong.

TEST(Autobahn2, PingsAndPongs) {
  EXPECT_EQ(decode(frame({.op = kPing})), Events{ping("")});                                           // 2.1
  EXPECT_EQ(decode(frame({.op = kPing, .payload = "Hello, world!"})), Events{ping("Hello, world!")});  // 2.2
  const std::string bin("\x00\xFF\xFE\xFD\xFC\xFB\x00\xFF", 8);
  EXPECT_EQ(decode(frame({.op = kPing, .payload = bin})), Events{ping(bin)});  // 2.3
  const std::string p125(125, '\xFE');
  EXPECT_EQ(decode(frame({.op = kPing, .payload = p125})), Events{ping(p125)});                    // 2.4 and 2.6
  EXPECT_EQ(decode(frame({.op = kPong})), Events{pong("")});                                       // 2.7
  EXPECT_EQ(decode(frame({.op = kPong, .payload = "unsolicited"})), Events{pong("unsolicited")});  // 2.8
  EXPECT_EQ(decode(frame({.op = kPong, .payload = "a"}) + frame({.op = kPing, .payload = "b"})),
            (Events{pong("a"), ping("b")}));  // 2.9
  std::string ten;
  Events ten_expected;
  for (int i = 0; i < 10; ++i) {
    ten += frame({.op = kPing, .payload = "payload-" + std::to_string(i)});
    ten_expected.push_back(ping("payload-" + std::to_string(i)));
  }
  EXPECT_EQ(decode(ten), ten_expected);  // 2.10 and 2.11
}

TEST(Autobahn2, PingOver125BytesRejected) {
  EXPECT_EQ(decode(frame({.op = kPing, .payload = std::string(126, 'x')})), Events{error(1002)});  // 2.5
  EXPECT_EQ(decode(frame({.op = kPong, .payload = std::string(126, 'x')})), Events{error(1002)});
  EXPECT_EQ(decode(frame({.op = kClose, .payload = close_payload(1000, std::string(124, 'r'))})), Events{error(1002)});
  // Decided from the header: no payload needs to arrive.
  const std::string hdr = frame({.op = kPing, .payload = std::string(126, 'x')}).substr(0, 4);
  EXPECT_EQ(decode(hdr), Events{error(1002)});
  const std::string huge = frame({.op = kPing, .len = Len::len64, .declared = std::uint64_t{1} << 40});
  EXPECT_EQ(decode(huge), Events{error(1002)});
}

// =================================================================================
// Autobahn 3.x: reserved bits, with nothing negotiated, must all be zero.

TEST(Autobahn3, ReservedBitsFailTheConnection) {
  for (std::uint8_t rsv = 1; rsv <= 7; ++rsv) {
    SCOPED_TRACE(static_cast<int>(rsv));
    for (const std::uint8_t op : {kText, kBinary, kPing, kPong, kClose}) {
      EXPECT_EQ(decode(frame({.op = op, .payload = "x", .rsv = rsv})), Events{error(1002)});
    }
    // 3.2: the frame before is delivered; nothing after is.
    EXPECT_EQ(decode(frame({.op = kText, .payload = "Hello"}) + frame({.op = kText, .payload = "Hello", .rsv = rsv}) +
                     frame({.op = kPing})),
              (Events{text("Hello"), error(1002)}));
    // On a continuation frame too.
    EXPECT_EQ(
        decode(frame({.op = kText, .payload = "a", .fin = false}) + frame({.op = kCont, .payload = "b", .rsv = rsv})),
        Events{error(1002)});
  }
}

// =================================================================================
// Autobahn 4.x: reserved opcodes.

TEST(Autobahn4, ReservedOpcodesFailTheConnection) {
  for (const std::uint8_t op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    SCOPED_TRACE(static_cast<int>(op));
    EXPECT_EQ(decode(frame({.op = op})), Events{error(1002)});
    EXPECT_EQ(decode(frame({.op = op, .payload = "reserved"})), Events{error(1002)});
    EXPECT_EQ(
        decode(frame({.op = kText, .payload = "Hello"}) + frame({.op = op, .payload = "x"}) + frame({.op = kPing})),
        (Events{text("Hello"), error(1002)}));
  }
}

// =================================================================================
// Autobahn 5.x: fragmentation.

TEST(Autobahn5, FragmentedControlFramesRejected) {
  for (const std::uint8_t op : {kPing, kPong, kClose}) {
    EXPECT_EQ(
        decode(frame({.op = op, .payload = "fragment1", .fin = false}) + frame({.op = kCont, .payload = "fragment2"})),
        Events{error(1002)});  // 5.1, 5.2
  }
}

TEST(Autobahn5, FragmentedTextReassembled) {
  const std::string two =
      frame({.op = kText, .payload = "fragment1", .fin = false}) + frame({.op = kCont, .payload = "fragment2"});
  EXPECT_EQ(decode(two), Events{text("fragment1fragment2")});  // 5.3-5.5
  EXPECT_EQ(decode(frame({.op = kBinary, .payload = "a", .fin = false}) +
                   frame({.op = kCont, .payload = "b", .fin = false}) + frame({.op = kCont, .payload = "c"})),
            Events{binary("abc")});
  // Empty fragments, including an empty first and last one.
  EXPECT_EQ(decode(frame({.op = kText, .fin = false}) + frame({.op = kCont, .fin = false}) + frame({.op = kCont})),
            Events{text("")});
  EXPECT_EQ(decode(frame({.op = kText, .fin = false}) + frame({.op = kCont, .payload = "x", .fin = false}) +
                   frame({.op = kCont})),
            Events{text("x")});
}

TEST(Autobahn5, ControlFramesBetweenFragmentsDeliveredImmediately) {
  // 5.6-5.8
  EXPECT_EQ(decode(frame({.op = kText, .payload = "fragment1", .fin = false}) +
                   frame({.op = kPing, .payload = "ping"}) + frame({.op = kCont, .payload = "fragment2"})),
            (Events{ping("ping"), text("fragment1fragment2")}));
  // The ping is returned before the message's final fragment even exists.
  FrameReader r;
  r.feed(frame({.op = kText, .payload = "fragment1", .fin = false}) + frame({.op = kPing, .payload = "now"}));
  const Event e = r.next();
  EXPECT_EQ(e.kind, Kind::ping);
  EXPECT_EQ(e.payload, "now");
  EXPECT_EQ(r.next().kind, Kind::need_more);
  // 5.19, 5.20: many fragments with pings and pongs between them.
  std::string wire = frame({.op = kText, .payload = "fragment1", .fin = false});
  wire += frame({.op = kCont, .payload = "fragment2", .fin = false});
  wire += frame({.op = kPing, .payload = "pongme 1!"});
  wire += frame({.op = kCont, .payload = "fragment3", .fin = false});
  wire += frame({.op = kPong, .payload = "pong"});
  wire += frame({.op = kCont, .payload = "fragment4", .fin = false});
  wire += frame({.op = kPing, .payload = "pongme 2!"});
  wire += frame({.op = kCont, .payload = "fragment5"});
  EXPECT_EQ(decode(wire), (Events{ping("pongme 1!"), pong("pong"), ping("pongme 2!"),
                                  text("fragment1fragment2fragment3fragment4fragment5")}));
}

TEST(Autobahn5, ContinuationWithoutMessageRejected) {
  EXPECT_EQ(decode(frame({.op = kCont, .payload = "non-continuation payload"}) +
                   frame({.op = kText, .payload = "Hello, world!"})),
            Events{error(1002)});  // 5.9-5.11
  EXPECT_EQ(decode(frame({.op = kCont, .payload = "x", .fin = false}) + frame({.op = kCont, .payload = "y"})),
            Events{error(1002)});  // 5.12-5.14
  // 5.15: a finished message, then a continuation that starts nothing.
  EXPECT_EQ(
      decode(frame({.op = kText, .payload = "fragment1", .fin = false}) + frame({.op = kCont, .payload = "fragment2"}) +
             frame({.op = kCont, .payload = "fragment3", .fin = false}) + frame({.op = kText, .payload = "fragment4"})),
      (Events{text("fragment1fragment2"), error(1002)}));
  // 5.16, 5.17
  const std::string bad = frame({.op = kCont, .payload = "fragment1", .fin = false}) +
                          frame({.op = kText, .payload = "fragment2", .fin = false}) +
                          frame({.op = kCont, .payload = "fragment3"});
  EXPECT_EQ(decode(bad + bad), Events{error(1002)});
}

TEST(Autobahn5, NewMessageInsideFragmentedMessageRejected) {
  // 5.18
  EXPECT_EQ(
      decode(frame({.op = kText, .payload = "fragment1", .fin = false}) + frame({.op = kText, .payload = "fragment2"})),
      Events{error(1002)});
  EXPECT_EQ(decode(frame({.op = kText, .payload = "a", .fin = false}) + frame({.op = kBinary, .payload = "b"})),
            Events{error(1002)});
  EXPECT_EQ(
      decode(frame({.op = kBinary, .payload = "a", .fin = false}) + frame({.op = kText, .payload = "b", .fin = false})),
      Events{error(1002)});
}

TEST(Autobahn5, ManyTinyFragments) {
  std::string wire = frame({.op = kBinary, .payload = "0", .fin = false});
  std::string expected = "0";
  for (int i = 1; i < 1000; ++i) {
    const std::string p(1, static_cast<char>('0' + i % 10));
    wire += frame({.op = kCont, .payload = p, .fin = i == 999});
    expected += p;
  }
  EXPECT_EQ(decode(wire), Events{binary(expected)});
}

// =================================================================================
// Autobahn 6.x: UTF-8 handling.

std::string fragmented(std::uint8_t op, std::string_view payload, std::size_t piece) {
  std::string wire;
  std::size_t pos = 0;
  bool first = true;
  do {
    const std::size_t n = std::min(piece, payload.size() - pos);
    wire += frame({.op = first ? op : kCont, .payload = payload.substr(pos, n), .fin = pos + n == payload.size()});
    pos += n;
    first = false;
  } while (pos < payload.size());
  return wire;
}

const std::vector<std::string> kValidTexts = {
    "",
    "Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!",  // 6.2
    kKosme,                                                                     // 6.5.1
    std::string("\x00", 1),
    "\xC2\x80",
    "\xE0\xA0\x80",
    "\xF0\x90\x80\x80",  // 6.6-6.7: first of each length
    "\x7F",
    "\xDF\xBF",
    "\xEF\xBF\xBF",
    "\xF4\x8F\xBF\xBF",  // 6.8: last of each length
    "\xED\x9F\xBF",
    "\xEE\x80\x80",
    "\xEF\xBF\xBD",  // 6.9: around the surrogates
    "\xEF\xBF\xBE",  // noncharacters are valid
};

const std::vector<std::string> kInvalidTexts = {
    "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80\x65\x64\x69\x74\x65\x64",  // 6.3
    "\xF8\x88\x80\x80\x80",
    "\xFC\x84\x80\x80\x80\x80",  // 6.6: 5- and 6-byte
    "\xF4\x90\x80\x80",
    "\xF7\xBF\xBF\xBF",  // above U+10FFFF
    "\x80",
    "\xBF",
    "\x80\xBF\x80\xBF",  // 6.10: continuations
    "\xC0 ",
    "\xE0 ",
    "\xF0 ",
    "\xF8 ",
    "\xFC ",  // 6.12: lone leads
    "\xC0",
    "\xE0\x80",
    "\xF0\x80\x80",
    "\xDF",
    "\xEF\xBF",
    "\xF7\xBF\xBF",  // 6.13-6.14: truncated
    "\xFE",
    "\xFF",
    "\xFE\xFE\xFF\xFF",  // 6.16
    "\xC0\xAF",
    "\xE0\x80\xAF",
    "\xF0\x80\x80\xAF",  // 6.17: overlong '/'
    "\xC1\xBF",
    "\xE0\x9F\xBF",
    "\xF0\x8F\xBF\xBF",  // 6.18: max overlongs
    "\xC0\x80",
    "\xE0\x80\x80",
    "\xF0\x80\x80\x80",  // 6.19: overlong NUL
    "\xED\xA0\x80",
    "\xED\xAD\xBF",
    "\xED\xAE\x80",
    "\xED\xAF\xBF",  // 6.20: surrogates
    "\xED\xB0\x80",
    "\xED\xBE\x80",
    "\xED\xBF\xBF",  //
    "\xED\xA0\x80\xED\xB0\x80",
    "\xED\xAF\xBF\xED\xBF\xBF",  // 6.21: pairs
};

TEST(Autobahn6, ValidTextInAnyFragmentation) {
  for (const auto& t : kValidTexts) {
    SCOPED_TRACE(printable(t));
    EXPECT_EQ(decode(frame({.op = kText, .payload = t})), Events{text(t)});
    // 6.2.3, 6.2.4: one byte per fragment, so every code point is split across frames.
    for (std::size_t piece = 1; piece <= 3; ++piece) EXPECT_EQ(decode(fragmented(kText, t, piece)), Events{text(t)});
  }
}

TEST(Autobahn6, InvalidTextRejectedBinaryAccepted) {
  for (const auto& t : kInvalidTexts) {
    SCOPED_TRACE(printable(t));
    EXPECT_EQ(decode(frame({.op = kText, .payload = t})), Events{error(1007)});
    EXPECT_EQ(decode(fragmented(kText, t, 1)), Events{error(1007)});
    EXPECT_EQ(decode(frame({.op = kText, .payload = "ok"}) + frame({.op = kText, .payload = t})),
              (Events{text("ok"), error(1007)}));
    EXPECT_EQ(decode(frame({.op = kBinary, .payload = t})), Events{binary(t)});
  }
}

// 6.4.1, 6.4.2: the bad fragment fails the message though its last fragment never comes.
TEST(Autobahn6, FailFastOnInvalidFragment) {
  FrameReader r;
  r.feed(frame({.op = kText, .payload = kKosme, .fin = false}));
  EXPECT_EQ(r.next().kind, Kind::need_more);
  r.feed(frame({.op = kCont, .payload = "\xF4\x90\x80\x80", .fin = false}));
  const Event e = r.next();
  EXPECT_EQ(e.kind, Kind::error);
  EXPECT_EQ(e.code, 1007);
}

// 6.4.3, 6.4.4: the bad bytes fail the frame though the rest of the frame never comes.
TEST(Autobahn6, FailFastInsideAFrame) {
  const std::string payload = kKosme + "\xF4\x90\x80\x80" + std::string(1000, 'x');
  const std::string wire = frame({.op = kText, .payload = payload});
  const std::size_t header = wire.size() - payload.size();
  FrameReader r;
  r.feed(std::string_view(wire).substr(0, header + kKosme.size()));
  EXPECT_EQ(r.next().kind, Kind::need_more);
  r.feed(std::string_view(wire).substr(header + kKosme.size(), 2));  // F4 90: can only be > U+10FFFF
  const Event e = r.next();
  EXPECT_EQ(e.kind, Kind::error);
  EXPECT_EQ(e.code, 1007);
}

TEST(Autobahn6, SequenceOpenAtEndOfMessage) {
  // Cut inside a code point at a fragment boundary: fine while the message goes on...
  EXPECT_EQ(decode(frame({.op = kText, .payload = "\xCE", .fin = false}) + frame({.op = kCont, .payload = "\xBA"})),
            Events{text("\xCE\xBA")});
  // ...but not at its end.
  EXPECT_EQ(decode(frame({.op = kText, .payload = "a\xE2\x82"})), Events{error(1007)});
  EXPECT_EQ(decode(frame({.op = kText, .payload = "a\xE2", .fin = false}) + frame({.op = kCont, .payload = "\x82"})),
            Events{error(1007)});
  // Binary messages are not UTF-8.
  EXPECT_EQ(decode(frame({.op = kBinary, .payload = "a\xE2\x82"})), Events{binary("a\xE2\x82")});
}

TEST(Autobahn6, ValidatorResetsBetweenMessages) {
  // A sequence left open by a (rejected) message never leaks into the next: each text
  // message is validated from scratch.
  EXPECT_EQ(decode(frame({.op = kBinary, .payload = "\xE2\x82"}) + frame({.op = kText, .payload = "\xAC"})),
            (Events{binary("\xE2\x82"), error(1007)}));
  EXPECT_EQ(decode(frame({.op = kText, .payload = "\xE2\x82\xAC"}) + frame({.op = kText, .payload = "ok"})),
            (Events{text("\xE2\x82\xAC"), text("ok")}));
}

// =================================================================================
// Autobahn 7.x: the close handshake.

TEST(Autobahn7, CloseAfterAndBeforeData) {
  EXPECT_EQ(decode(frame({.op = kText, .payload = "Hello"}) + frame({.op = kClose, .payload = close_payload(1000)})),
            (Events{text("Hello"), closed(1000)}));  // 7.1.1
  EXPECT_EQ(decode(frame({.op = kClose, .payload = close_payload(1000)}) +
                   frame({.op = kClose, .payload = close_payload(1000)})),
            Events{closed(1000)});  // 7.1.2
  EXPECT_EQ(decode(frame({.op = kClose, .payload = close_payload(1000)}) + frame({.op = kPing})),
            Events{closed(1000)});  // 7.1.3
  EXPECT_EQ(decode(frame({.op = kClose, .payload = close_payload(1000)}) + frame({.op = kText, .payload = "late"})),
            Events{closed(1000)});  // 7.1.4
  // 7.1.5: a close between fragments ends everything; the message is never delivered.
  EXPECT_EQ(
      decode(frame({.op = kText, .payload = "fragment1", .fin = false}) +
             frame({.op = kClose, .payload = close_payload(1000)}) + frame({.op = kCont, .payload = "fragment2"})),
      Events{closed(1000)});
}

TEST(Autobahn7, ClosePayloads) {
  EXPECT_EQ(decode(frame({.op = kClose})), Events{closed(1005)});                                  // 7.3.1
  EXPECT_EQ(decode(frame({.op = kClose, .payload = "a"})), Events{error(1002)});                   // 7.3.2
  EXPECT_EQ(decode(frame({.op = kClose, .payload = close_payload(1000)})), Events{closed(1000)});  // 7.3.3
  EXPECT_EQ(decode(frame({.op = kClose, .payload = close_payload(1000, "Hello World!")})),
            Events{closed(1000, "Hello World!")});  // 7.3.4
  const std::string r123(123, '*');
  EXPECT_EQ(decode(frame({.op = kClose, .payload = close_payload(1000, r123)})), Events{closed(1000, r123)});  // 7.3.5
  EXPECT_EQ(decode(frame({.op = kClose, .payload = close_payload(1000, r123 + "*")})), Events{error(1002)});   // 7.3.6
  EXPECT_EQ(decode(frame({.op = kClose, .payload = close_payload(1000, kKosme)})), Events{closed(1000, kKosme)});
  EXPECT_EQ(decode(frame({.op = kClose, .payload = close_payload(1000, "\xCE\xBA\xED\xA0\x80")})),
            Events{error(1007)});  // 7.5.1
  EXPECT_EQ(decode(frame({.op = kClose, .payload = close_payload(1000, "\xCE")})), Events{error(1007)});
}

TEST(Autobahn7, ValidCloseCodes) {
  // 7.7.x, and the codes IANA registered since (1012-1014), which 7.9.x still lists as
  // invalid.
  for (const std::uint16_t code :
       {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4003, 4008, 4999}) {
    EXPECT_EQ(decode(frame({.op = kClose, .payload = close_payload(code)})), Events{closed(code)}) << code;
    EXPECT_TRUE(is_valid_close_code(code)) << code;
  }
}

TEST(Autobahn7, InvalidCloseCodes) {
  // 7.9.x and 7.13.x
  for (const std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    EXPECT_EQ(decode(frame({.op = kClose, .payload = close_payload(code)})), Events{error(1002)}) << code;
    EXPECT_EQ(decode(frame({.op = kClose, .payload = close_payload(code, "reason")})), Events{error(1002)}) << code;
    EXPECT_FALSE(is_valid_close_code(code)) << code;
  }
}

TEST(Autobahn7, CloseCodeTable) {
  int valid = 0;
  for (std::uint32_t c = 0; c <= 0xFFFF; ++c) {
    const auto code = static_cast<std::uint16_t>(c);
    const bool expected = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
    ASSERT_EQ(is_valid_close_code(code), expected) << c;
    valid += expected ? 1 : 0;
  }
  EXPECT_EQ(valid, 4 + 8 + 2000);
}

// =================================================================================
// Autobahn 9.x-style limits and volume.

TEST(Limits, OversizedFrameRefusedFromHeaderAlone) {
  const std::string at_limit(1000, 'a');
  EXPECT_EQ(decode(frame({.op = kText, .payload = at_limit}), 1000), Events{text(at_limit)});
  // Only the header of the 1001-byte frame is fed: the error needs no payload.
  const std::string over = frame({.op = kText, .payload = std::string(1001, 'a')});
  EXPECT_EQ(decode(std::string_view(over).substr(0, 4), 1000), Events{error(1009)});
  // Nor does it need the mask key.
  EXPECT_EQ(decode(std::string_view(over).substr(0, 4), 1000), decode(std::string_view(over).substr(0, 8), 1000));
  // A declared length far beyond memory is refused the same way.
  EXPECT_EQ(decode(frame({.op = kBinary, .len = Len::len64, .declared = std::uint64_t{1} << 62})), Events{error(1009)});
  EXPECT_EQ(decode(frame({.op = kBinary, .len = Len::len64, .declared = ~std::uint64_t{0} >> 1})), Events{error(1009)});
}

TEST(Limits, SixtyFourBitLengthWithTopBitSet) {
  EXPECT_EQ(decode(frame({.op = kBinary, .len = Len::len64, .declared = std::uint64_t{1} << 63})), Events{error(1002)});
  EXPECT_EQ(decode(frame({.op = kBinary, .len = Len::len64, .declared = ~std::uint64_t{0}})), Events{error(1002)});
}

TEST(Limits, FragmentedMessageCountsAllFragments) {
  const std::string first = frame({.op = kText, .payload = std::string(600, 'a'), .fin = false});
  EXPECT_EQ(decode(first + frame({.op = kCont, .payload = std::string(400, 'b')}), 1000),
            Events{text(std::string(600, 'a') + std::string(400, 'b'))});
  const std::string over = frame({.op = kCont, .payload = std::string(401, 'b')});
  EXPECT_EQ(decode(first + over.substr(0, 4), 1000), Events{error(1009)});
  // Many small fragments add up too.
  std::string many = frame({.op = kBinary, .payload = std::string(10, 'x'), .fin = false});
  for (int i = 0; i < 200; ++i) many += frame({.op = kCont, .payload = std::string(10, 'x'), .fin = false});
  EXPECT_EQ(decode(many, 1000), Events{error(1009)});
}

TEST(Limits, DefaultLimitIs64KiBInclusive) {
  FrameReader r;
  EXPECT_EQ(r.max_message_bytes(), 65536u);
  EXPECT_EQ(decode(frame({.op = kBinary, .payload = std::string(65536, 'x')})).size(), 1u);
  EXPECT_EQ(decode(frame({.op = kBinary, .payload = std::string(65537, 'x')})), Events{error(1009)});
  EXPECT_EQ(decode(frame({.op = kText, .payload = std::string(65536, 'x'), .fin = false}) +
                   frame({.op = kCont, .payload = "y"})),
            Events{error(1009)});
}

TEST(Limits, ControlFramesDoNotCountTowardTheMessage) {
  EXPECT_EQ(decode(frame({.op = kText, .payload = std::string(10, 'a'), .fin = false}) +
                       frame({.op = kPing, .payload = std::string(125, 'p')}) + frame({.op = kCont}),
                   10),
            (Events{ping(std::string(125, 'p')), text(std::string(10, 'a'))}));
}

TEST(Limits, ZeroLimit) {
  EXPECT_EQ(decode(frame({.op = kText}), 0), Events{text("")});
  EXPECT_EQ(decode(frame({.op = kPing, .payload = "p"}), 0), Events{ping("p")});
  EXPECT_EQ(decode(frame({.op = kText, .payload = "a"}), 0), Events{error(1009)});
}

TEST(Limits, LargeMessagesInLargeChunks) {
  // 9.1.x / 9.2.x: 1 MiB messages, with a limit raised to allow them.
  std::string t;
  while (t.size() < (1u << 20)) t += "chat message \xE2\x82\xAC ";
  t.resize(1u << 20);
  while (!is_valid_utf8(t)) t.pop_back();
  const auto te = decode_events(frame({.op = kText, .payload = t}), 2u << 20);
  ASSERT_EQ(te.size(), 1u);
  EXPECT_EQ(te[0].payload, t);
  const std::string b = binary_pattern(1u << 20);
  const auto be = decode_events(fragmented(kBinary, b, 65536), 2u << 20);
  ASSERT_EQ(be.size(), 1u);
  EXPECT_EQ(be[0].payload, b);
}

// =================================================================================
// Properties.

// Streams of valid frames: random messages, random fragmentation (fragments may split
// code points), control frames between fragments, random keys and length forms, maybe
// a close (followed by junk that must be ignored).
struct Stream {
  std::string bytes;
  Events expected;
};

Stream random_valid_stream(std::mt19937& rng) {
  static const std::vector<std::string> units = {"a",       "hello ", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
                                                 "\xCE\xBA"};
  // Mostly the shortest length form, sometimes a longer one (which receivers accept).
  const auto form = [&](std::size_t n) {
    if (rng() % 3 != 0) return Len::minimal;
    const Len l = static_cast<Len>(1 + rng() % 3);
    if (n > 0xFFFF) return Len::len64;
    if (n > 125 && l == Len::len7) return Len::len16;
    return l;
  };
  const auto random_bytes = [&](std::size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
  };
  Stream s;
  const auto add = [&](std::uint8_t op, std::string_view payload, bool fin) {
    s.bytes += frame({.op = op,
                      .payload = payload,
                      .fin = fin,
                      .len = form(payload.size()),
                      .key = static_cast<std::uint32_t>(rng())});
  };
  const auto maybe_control = [&] {
    if (rng() % 4 != 0) return;
    const std::string p = random_bytes(rng() % 3 == 0 ? 125 : rng() % 10);
    const bool is_ping = rng() % 2 == 0;
    add(is_ping ? kPing : kPong, p, true);
    s.expected.push_back(is_ping ? ping(p) : pong(p));
  };
  const int messages = static_cast<int>(rng() % 8);
  for (int m = 0; m < messages; ++m) {
    maybe_control();
    const bool is_text = rng() % 2 == 0;
    std::size_t size = rng() % 4 == 0 ? rng() % 3000 : rng() % 200;
    if (rng() % 50 == 0) size = 70000;
    std::string payload;
    if (is_text) {
      while (payload.size() < size) payload += units[rng() % units.size()];
    } else {
      payload = random_bytes(size);
    }
    const std::size_t pieces = rng() % 3 == 0 ? 1 + rng() % 6 : 1;
    std::size_t pos = 0;
    for (std::size_t i = 0; i < pieces; ++i) {
      const std::size_t n = i + 1 == pieces ? payload.size() - pos : rng() % (payload.size() - pos + 1);
      add(i == 0 ? (is_text ? kText : kBinary) : kCont, std::string_view(payload).substr(pos, n), i + 1 == pieces);
      pos += n;
      if (i + 1 < pieces) maybe_control();
    }
    s.expected.push_back(is_text ? text(payload) : binary(payload));
  }
  if (rng() % 3 == 0) {
    const std::uint16_t codes[] = {1000, 1001, 1008, 3000, 4003, 4999};
    const std::uint16_t code = codes[rng() % 6];
    const std::string reason = rng() % 2 ? "bye \xE2\x82\xAC" : "";
    add(kClose, close_payload(code, reason), true);
    s.expected.push_back(closed(code, reason));
    s.bytes += random_bytes(rng() % 20);
  }
  return s;
}

TEST(Property, ValidStreamsDecodeTheSameHoweverChunked) {
  std::mt19937 rng(0xC0FFEE);
  const std::size_t max = 1 << 20;
  for (int iter = 0; iter < 300; ++iter) {
    const Stream s = random_valid_stream(rng);
    SCOPED_TRACE(iter);
    ASSERT_EQ(describe_all(run(s.bytes, max, [&] { return s.bytes.size(); }), false), s.expected);
    if (iter % 10 == 0) {
      ASSERT_EQ(describe_all(run(s.bytes, max, [] { return std::size_t{1}; }), false), s.expected);
    }
    const auto small = [&]() -> std::size_t { return 1 + rng() % 7; };
    ASSERT_EQ(describe_all(run(s.bytes, max, small), false), s.expected);
    const auto mixed = [&]() -> std::size_t { return rng() % 2 ? 1 : 1 + rng() % 3000; };
    ASSERT_EQ(describe_all(run(s.bytes, max, mixed, true, &rng), false), s.expected);
  }
}

// Arbitrary input never crashes or hangs, and is still decoded the same however it is
// chunked (errors included). Half the inputs are mutated valid streams, to get past the
// first header.
TEST(Property, GarbageIsHandledAndChunkingInvariant) {
  std::mt19937 rng(0xBADF00D);
  for (int iter = 0; iter < 2000; ++iter) {
    std::string bytes;
    if (iter % 2 == 0) {
      bytes.resize(rng() % 300);
      for (auto& c : bytes) c = static_cast<char>(rng());
      if (!bytes.empty() && rng() % 2) bytes[0] = static_cast<char>(bytes[0] & 0x8F);    // no RSV bits
      if (bytes.size() > 1 && rng() % 2) bytes[1] = static_cast<char>(bytes[1] | 0x80);  // masked
    } else {
      bytes = random_valid_stream(rng).bytes;
      if (bytes.empty()) continue;
      const int flips = 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < flips; ++i) bytes[rng() % bytes.size()] ^= static_cast<char>(1 << (rng() % 8));
      if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
    }
    const std::size_t max = rng() % 2 ? 1024 : 1 << 20;
    const auto whole = describe_all(run(bytes, max, [&] { return bytes.size(); }), true);
    const auto chunk = [&]() -> std::size_t { return 1 + rng() % 13; };
    ASSERT_EQ(describe_all(run(bytes, max, chunk), true), whole) << iter;
    ASSERT_EQ(describe_all(run(bytes, max, chunk, true, &rng), true), whole) << iter;
  }
}

}  // namespace
}  // namespace chatorbit::ws
