#pragma once
// The Store conformance suite: behaviour every Store implementation must share, written
// once (store_conformance_test.cpp) and run against each backend unchanged.
//
// A backend's test file instantiates it with one or more factories:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformance,
//                            ::testing::Values(StoreFactory{"Memory", [] { return make_store(); }}),
//                            store_factory_name);
//
// Only behaviour store.hpp promises is tested here; choices it leaves to the backend
// (e.g. whether a failed batch leaves a prefix behind, rather than that it leaves exactly
// the one its PartialAppend reports) belong in the backend's own tests.

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "store/store.hpp"

namespace chatorbit::store {

/// Makes Store instances for the suite. Every call must return a new, empty store that
/// shares no data with any other (a fresh file, a fresh database name, ...); the suite
/// destroys it at the end of each test.
struct StoreFactory {
  std::string name;  ///< appears in test names: letters, digits and '_' only
  std::function<std::unique_ptr<Store>()> make;
};

/// Lets GoogleTest print a factory by name in failure messages.
inline void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

/// The name generator for INSTANTIATE_TEST_SUITE_P: "Suite/Test/<factory name>".
inline std::string store_factory_name(const ::testing::TestParamInfo<StoreFactory>& info) { return info.param.name; }

/// The fixture: each test gets a fresh store from the factory.
class StoreConformance : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    ASSERT_NE(store_, nullptr) << "factory " << GetParam().name << " returned no store";
  }
  void TearDown() override { store_.reset(); }

  Store& store() { return *store_; }

 private:
  std::unique_ptr<Store> store_;
};

}  // namespace chatorbit::store
