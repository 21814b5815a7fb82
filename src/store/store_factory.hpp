#pragma once
// The one place that knows which Store implementations exist and which one a
// configuration selects. Callers (App) ask make_store_factory() for a factory, then the
// factory for connections, and name no implementation.
//
// Selection, by presence of settings:
//   MONGO_URL -> the MongoDB store (store/mongo/)
//   otherwise -> SQLite, in <CHATORBIT_DATA_DIR>/chatorbit.db (the embedded default)
//
// MONGO_URL's scheme is checked here, so that a typo is reported as "malformed" before
// libmongoc parses the rest.
//
// A factory rather than a single Store: a StoreWorker owns one connection on its one
// thread (store.hpp); several workers (lanes) will each open() their own, and the
// factory is what they share.

#include <memory>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "store/store.hpp"

namespace chatorbit::store {

class StoreFactory {
 public:
  virtual ~StoreFactory() = default;

  /// Opens a new connection to the selected store; each call returns an independent
  /// Store for one owner thread (see store.hpp). Throws StoreError if the database cannot
  /// be opened (the message names where). Call from one thread at a time.
  virtual std::unique_ptr<Store> open() = 0;

  /// The implementation's name ("sqlite"), for logs.
  virtual std::string_view kind() const = 0;
  /// Where the store lives (a path, or a URL without credentials), for logs.
  virtual std::string location() const = 0;
};

/// Throws ConfigError("<setting>: malformed ...") unless `url` starts with mongodb:// or
/// mongodb+srv:// and has something after it.
void validate_mongo_url(std::string_view url, const std::string& setting);

/// The factory for the store `config` selects. Opens nothing yet. Throws ConfigError if
/// MONGO_URL is malformed (without echoing it: it may hold a password).
std::unique_ptr<StoreFactory> make_store_factory(const Config& config);

}  // namespace chatorbit::store
