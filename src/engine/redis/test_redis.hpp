#pragma once
// Real Redis servers for the unit tests (test support: included by *_test.cpp files only).
//
// Under ctest, the test_servers fixture (CMakeLists.txt) has started one standalone
// redis-server and one 3-master Redis Cluster before the first test, and every test
// process finds their addresses in $CHATORBIT_TEST_SERVERS/redis.addr and
// redis-cluster.addr. Run directly (./build/unit_tests, no CHATORBIT_TEST_SERVERS), the
// process starts its own pair with tools/test_servers.py in a fresh temporary directory
// on first use, and stops them when it exits (or, should it crash, a watcher does).
// core/test_servers.hpp does the finding and starting, for the MongoDB tests as well.
//
// The servers are shared by every test running at the same time (ctest -j): use keys of
// your own (unique names), and do not FLUSHALL, kill or reconfigure them; a test that
// must do that needs a server of its own.

#include <chrono>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/test_servers.hpp"

namespace chatorbit::engine::test_redis {

namespace detail {

// Running a process, for tests that start servers of their own.
using test_servers::detail::join;
using test_servers::detail::ProcessResult;
using test_servers::detail::run_process;
using test_servers::detail::test_servers_script;

struct Servers {
  std::string standalone, cluster;
  std::string error;  ///< why there are none; empty when there are
};

// Finds (or starts) the servers once per process; every later call gives the same answer.
inline const Servers& servers() {
  static std::once_flag once;
  static Servers found;
  std::call_once(once, [] {
    try {
      found.standalone = test_servers::first_line("redis.addr");
      found.cluster = test_servers::first_line("redis-cluster.addr");
    } catch (const std::exception& e) {
      found.error = e.what();
    }
  });
  if (!found.error.empty()) throw std::runtime_error(found.error);
  return found;
}

}  // namespace detail

/// The standalone test server: "127.0.0.1:P". Starts the servers on first use when not
/// under ctest. Thread-safe. Throws std::runtime_error saying what to run if there are none.
inline const std::string& standalone_addr() { return detail::servers().standalone; }

/// The test cluster's three masters: "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3" (the form
/// CHATORBIT_REDIS_CLUSTER takes). Same contract as standalone_addr().
inline const std::string& cluster_seeds() { return detail::servers().cluster; }

/// Runs `redis-cli -e -h host -p port args...` against addr ("host:port") and returns its
/// stdout (redis-cli's raw form: one line per reply element). Blocking, at most 10 s.
/// Throws std::runtime_error if redis-cli exits non-zero: with -e, an error reply does
/// that, as does an unreachable server.
inline std::string redis_cli(const std::string& addr, const std::vector<std::string>& args) {
  const auto colon = addr.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("redis_cli: expected host:port, got '" + addr + "'");
  std::vector<std::string> argv{"redis-cli", "-e", "-h", addr.substr(0, colon), "-p", addr.substr(colon + 1)};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto done = detail::run_process(argv, std::chrono::seconds(10));
  if (!done.ok()) throw std::runtime_error(detail::join(argv) + " failed: " + done.err + done.out);
  return done.out;
}

}  // namespace chatorbit::engine::test_redis
