#pragma once
// A real MongoDB-wire server for the unit tests (test support: included by *_test.cpp
// files only): FerretDB on SQLite, started by tools/test_servers.py with the Redis test
// servers (core/test_servers.hpp: under ctest the test_servers fixture starts them and
// the URL is in $CHATORBIT_TEST_SERVERS/mongo.url; run directly, the test process starts
// its own on first use).
//
// The server is shared by every test running at the same time (ctest -j): each test
// works in a database of its own (unique_database()) and drops only that one; a test
// that must kill, pause or restart the server needs one of its own
// (test_servers.py's FerretDB class).

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/test_servers.hpp"

namespace chatorbit::store::test_mongo {

/// The shared test server's URL, "mongodb://127.0.0.1:P/" (FerretDB, the MongoDB wire
/// protocol on SQLite). Starts the servers on first use when not under ctest.
/// Thread-safe; every call gives the same answer. Throws std::runtime_error saying what
/// to run if there is none.
inline std::string url() {
  static std::once_flag once;
  static std::string found, error;
  std::call_once(once, [] {
    try {
      found = test_servers::first_line("mongo.url");
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  if (!error.empty()) throw std::runtime_error(error);
  return found;
}

/// A database name that no other call returns, in this process or any other sharing the
/// server: "<prefix>_<pid>_<counter>_<8 random hex digits>". The prefix may hold ASCII
/// letters, digits and '_' and at most 32 characters, so that the name stays within
/// what MongoDB and FerretDB accept ([A-Za-z0-9_-], at most 63 bytes); other prefixes
/// throw std::invalid_argument. Thread-safe.
inline std::string unique_database(std::string_view prefix) {
  constexpr std::size_t max_prefix = 32;  // + "_" pid (<= 10) "_" counter (<= 10) "_" 8 hex = 63
  bool valid = !prefix.empty() && prefix.size() <= max_prefix;
  for (const char c : prefix) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    valid = valid && (alnum || c == '_');
  }
  if (!valid)
    throw std::invalid_argument("unique_database: the prefix must be 1 to 32 of [A-Za-z0-9_], got '" +
                                std::string(prefix) + "'");
  // The counter separates the calls of one process; the pid, processes running at the
  // same time; the random part, a process that reuses the pid of an earlier one (and
  // finds its databases still there, on a server that outlives test processes).
  static std::atomic<std::uint32_t> counter{0};
  const std::uint32_t n = counter.fetch_add(1, std::memory_order_relaxed);
  const std::uint32_t random = std::random_device{}();  // a device of its own: thread-safe
  static constexpr char hex[] = "0123456789abcdef";
  std::string suffix(8, '0');
  for (int i = 0; i < 8; ++i) suffix[static_cast<std::size_t>(i)] = hex[(random >> (28 - 4 * i)) & 0xF];
  return std::string(prefix) + "_" + std::to_string(getpid()) + "_" + std::to_string(n) + "_" + suffix;
}

}  // namespace chatorbit::store::test_mongo
