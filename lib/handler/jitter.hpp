#pragma once
// The random draw behind the backoff's jitter (backoff_delay takes it as a
// double in [0, 1)). Jitter needs spread, not a long period or secrecy:
// Knuth's 64-bit LCG is 8 bytes, where mt19937_64's 2,504 bytes were half of
// an idle handler's object. std::generate_canonical reads all 64 bits, and an
// LCG's high bits are its well-mixed ones.
#include <cstdint>
#include <random>

namespace tether::detail {

using jitter_engine =
    std::linear_congruential_engine<std::uint64_t, 6364136223846793005ULL, 1442695040888963407ULL, 0>;

/// A draw in [0, 1) for backoff_delay.
inline double jitter_draw(jitter_engine& e) { return std::generate_canonical<double, 53>(e); }

} // namespace tether::detail
