// chatorbit: parses the configuration, builds the App, serves until a signal.
// `chatorbit migrate [settings]`: numbers the original service's messages, then exits
// (store/mongo/mongo_migrate.hpp).
#include <signal.h>

#include <iostream>

#include "app/app.hpp"
#include "core/log.hpp"
#include "engine/engine.hpp"
#include "store/mongo/mongo_migrate.hpp"
#include "store/store.hpp"

int main(int argc, char** argv) {
  using namespace chatorbit;
  // Block the shutdown signals in every thread (threads inherit the mask) so that only
  // App::run_until_signal receives them, synchronously.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    const bool migrate = !args.empty() && args.front() == "migrate";
    if (migrate) args.erase(args.begin());
    auto parsed = parse_config(environment_map(), args);
    if (migrate && !parsed.help) {
      const auto report = store::migrate_original_messages(parsed.config, std::cerr);
      return report.rooms_skipped > 0 ? 3 : 0;
    }
    if (parsed.help) {
      std::cout << config_help();
      return 0;
    }
    App app(std::move(parsed.config));
    app.start();
    app.run_until_signal();
    return 0;
  } catch (const ConfigError& e) {
    log::error("config_error", {{"what", e.what()}});
    std::cerr << "chatorbit: " << e.what() << "\n";
    return 2;
  } catch (const store::StoreError& e) {
    log::error("store_error", {{"what", e.what()}});
    std::cerr << "chatorbit: cannot open the store: " << e.what() << "\n";
    return 1;
  } catch (const engine::EngineUnavailable& e) {
    log::error("engine_unavailable", {{"what", e.what()}});
    std::cerr << "chatorbit: cannot reach the engine's backend at start-up: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    log::error("fatal", {{"what", e.what()}});
    return 1;
  }
}
