#pragma once
// Where token revocations live between nodes. The store keeps the durable record; the
// engine keeps the shared copy, each entry with a TTL until the tokens it covers have
// expired; each node's RevocationList is a cache of the engine's copy, kept current by
// the account events ('U' on the control channel) and refilled from the engine when
// events may have been missed: at start, and whenever the broker is back. An engine that
// came back empty (a Redis restarted without persistence) looks the same to a node as
// one that never had the entries, so each refill first puts the store's records back
// into the engine (idempotent), then reads the engine.
//
// A revocation is written store first (durable), then engine (shared), then announced
// (instant effect on open sessions).

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>

#include "auth/account_events.hpp"
#include "auth/revocations.hpp"
#include "core/clock.hpp"
#include "engine/engine.hpp"
#include "store/store.hpp"

namespace chatorbit::auth {

/// The engine TTL of an entry that matters until `expires_at_s`: the time left, rounded
/// up to whole seconds so the engine never drops it early; zero or less when it is over.
std::chrono::seconds revocation_ttl(std::int64_t expires_at_s, const Clock& clock);

/// Writes `revocation` (a jti, or the user's floor when jti is empty) to the engine's
/// shared copy. Throws engine::EngineUnavailable if the engine cannot be reached; an
/// entry that has already expired is not written.
boost::asio::awaitable<void> share_revocation(engine::Engine& engine, AccountEvents::Revocation revocation,
                                              const Clock& clock);

/// Adds what the engine holds to `cache`.
void add_to_cache(const engine::TokenRevocations& held, RevocationList& cache);

/// Puts every revocation and floor the store holds in force back into the engine, each
/// with its remaining TTL. Idempotent. Blocks until the engine has them (one call per
/// entry): run it on a store lane or at start-up, never on an event loop. Throws
/// store::StoreError or engine::EngineUnavailable.
void restore_revocations(store::Store& store, engine::Engine& engine, const Clock& clock);

/// A node's refill: restore_revocations(), then add_to_cache() with what the engine
/// holds now (which also has what other nodes wrote). Blocks like restore_revocations().
void refill_revocations(store::Store& store, engine::Engine& engine, RevocationList& cache, const Clock& clock);

}  // namespace chatorbit::auth
