#pragma once
// The seed for randomised tests: fixed by default so a failure reproduces,
// overridable with TETHER_TEST_SEED=N, and always printed.
#include <cstdint>

namespace tether::test {
std::uint64_t seed();
} // namespace tether::test
