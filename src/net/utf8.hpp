#pragma once
// UTF-8 validation for the WebSocket data path. RFC 6455 makes an endpoint fail the
// connection (1007) on a text message or close reason that is not valid UTF-8, and the
// check has to be incremental because a message arrives in fragments and each fragment
// arrives in TCP-sized pieces.
//
// "Valid" is RFC 3629: shortest form only (no overlongs), no UTF-16 surrogates
// (U+D800..U+DFFF), nothing above U+10FFFF. Noncharacters such as U+FFFE are valid.
//
// Everything here is pure computation: free functions are thread-safe; a Utf8Validator
// is a plain value with no sharing, owned by one connection.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace chatorbit::ws {

/// True if `s` is, in its entirety, valid UTF-8 (a sequence cut short at the end is
/// invalid). ASCII runs are checked eight bytes at a time.
bool is_valid_utf8(std::string_view s);

/// Number of code points in `valid`. Precondition: `valid` is valid UTF-8 (for other
/// input the result counts the bytes that are not continuation bytes, which is
/// meaningless but safe).
std::size_t utf8_length(std::string_view valid);

/// Validates a byte stream that arrives in pieces, e.g. the fragments of one text
/// message. Pieces may split a multi-byte sequence anywhere.
///
/// It fails fast: feed() returns false as soon as the bytes seen so far cannot be the
/// beginning of any valid UTF-8 string, so that a connection sending garbage is failed
/// on the first bad byte rather than at the end of a (possibly huge) message. Once it
/// has failed it stays failed until reset().
class Utf8Validator {
 public:
  /// Consumes `chunk`. False if the stream so far is not a prefix of valid UTF-8.
  bool feed(std::string_view chunk);
  /// True if the stream so far is complete valid UTF-8 (no sequence left half-read and
  /// no failure). Call at the end of the message.
  bool complete() const { return need_ == 0 && !failed_; }
  /// True once feed() has returned false.
  bool failed() const { return failed_; }
  /// Forgets everything, ready for the next message.
  void reset() {
    need_ = 0;
    lo_ = 0x80;
    hi_ = 0xBF;
    failed_ = false;
  }

 private:
  // A sequence is checked byte by byte against the range its next byte may take. The
  // lead bytes E0, ED, F0 and F4 narrow the range of the first continuation byte; that
  // alone rules out overlongs, surrogates and code points above U+10FFFF, without ever
  // assembling a code point, and is what lets feed() fail on the first impossible byte.
  std::uint8_t need_ = 0;
  std::uint8_t lo_ = 0x80;
  std::uint8_t hi_ = 0xBF;
  bool failed_ = false;
};

}  // namespace chatorbit::ws
