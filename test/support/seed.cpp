#include "seed.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace tether::test {

std::uint64_t seed() {
  static const std::uint64_t value = [] {
    std::uint64_t s = 20261126;
    if (const char* env = std::getenv("TETHER_TEST_SEED"))
      s = std::stoull(env);
    std::printf("random seed: %llu (set TETHER_TEST_SEED to override)\n", static_cast<unsigned long long>(s));
    return s;
  }();
  return value;
}

} // namespace tether::test
