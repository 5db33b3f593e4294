// The handler's jitter draw (lib/handler/jitter.hpp): small, and spread evenly
// over [0, 1) whatever the seed, so reconnecting clients do not stay in step.
#include <doctest/doctest.h>

#include <array>
#include <cstdint>

#include "handler/jitter.hpp"
#include "seed.hpp"

using tether::detail::jitter_draw;
using tether::detail::jitter_engine;

TEST_CASE("jitter: the engine is small, and is Knuth's 64-bit LCG") {
  CHECK(sizeof(jitter_engine) <= 16);
  // x' = a x + c mod 2^64: pins the constants (a multiplier of 1 would still
  // spread its draws evenly) and what rng_seed reproduces.
  constexpr std::uint64_t a = 6364136223846793005ULL, c = 1442695040888963407ULL;
  jitter_engine e(7);
  std::uint64_t x = 7;
  for (int i = 0; i < 5; ++i) {
    x = a * x + c;
    CHECK(e() == x);
  }
}

TEST_CASE("jitter: draws in [0, 1), every tenth of it about as often, for small and random seeds") {
  for (const std::uint64_t seed : {std::uint64_t{1}, std::uint64_t{2}, tether::test::seed()}) {
    CAPTURE(seed);
    jitter_engine e(seed);
    std::array<int, 10> tenths{};
    constexpr int n = 20000;
    for (int i = 0; i < n; ++i) {
      const double d = jitter_draw(e);
      REQUIRE(d >= 0.0);
      REQUIRE(d < 1.0);
      ++tenths[static_cast<std::size_t>(d * 10)];
    }
    for (const int count : tenths) // 2,000 expected; a broken multiplier or increment piles them up
      CHECK((count > 1700 && count < 2300));
  }
}

TEST_CASE("jitter: seeds one apart give sequences that differ from the first draw") {
  jitter_engine a(1), b(2);
  int same = 0;
  for (int i = 0; i < 1000; ++i)
    same += jitter_draw(a) == jitter_draw(b);
  CHECK(same == 0);
  jitter_engine c(7), d(7); // rng_seed: reproducible
  for (int i = 0; i < 100; ++i)
    CHECK(jitter_draw(c) == jitter_draw(d));
}
