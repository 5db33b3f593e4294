// Every vector version of masking and of the ASCII skip that this CPU can run
// (lib/core/simd.hpp), against byte-by-byte references: the library uses only
// the best one, so the others would otherwise go untested on this machine.
#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <random>
#include <vector>

#include "seed.hpp"
#include "simd.hpp"

using tether::detail::simd_level;

namespace {

std::vector<simd_level> runnable_levels() {
  std::vector<simd_level> out;
  for (auto l : {simd_level::portable, simd_level::sse2, simd_level::avx2, simd_level::avx512})
    if (l <= tether::detail::best_simd_level())
      out.push_back(l);
  return out;
}

} // namespace

TEST_CASE("x86-64 always has at least SSE2; the portable version is there everywhere") {
#if defined(__x86_64__)
  CHECK(tether::detail::best_simd_level() >= simd_level::sse2);
#endif
  CHECK(runnable_levels().front() == simd_level::portable);
}

TEST_CASE("each level masks whole 64-byte blocks as a byte-wise XOR, in place or not, and nothing past them") {
  std::mt19937_64 rng(tether::test::seed());
  std::vector<std::uint8_t> data(400);
  for (auto& b : data)
    b = static_cast<std::uint8_t>(rng());
  const std::array<std::uint8_t, 4> key{0x37, 0xfa, 0x21, 0x3d};
  std::uint64_t key8;
  std::memcpy(&key8, key.data(), 4);
  std::memcpy(reinterpret_cast<char*>(&key8) + 4, key.data(), 4);
  for (const auto level : runnable_levels()) {
    CAPTURE(static_cast<int>(level));
    for (std::size_t start = 0; start < 9; ++start) {
      for (std::size_t n = 0; n <= 300; ++n) {
        const std::size_t blocks = n / 64 * 64;
        std::vector<std::uint8_t> want(data.begin() + static_cast<std::ptrdiff_t>(start),
                                       data.begin() + static_cast<std::ptrdiff_t>(start + n));
        for (std::size_t i = 0; i < blocks; ++i)
          want[i] ^= key[i % 4];
        // Out of place, into an unaligned target with guard bytes after it.
        std::vector<std::uint8_t> out(n + 16, 0xEE);
        std::memcpy(out.data() + 3, data.data() + start, n);
        std::vector<std::uint8_t> target(n + 16, 0xEE);
        REQUIRE(tether::detail::mask_blocks(level, target.data() + 3, data.data() + start, n, key8) == blocks);
        REQUIRE(std::equal(want.begin(), want.begin() + static_cast<std::ptrdiff_t>(blocks), target.begin() + 3));
        for (std::size_t i = 3 + blocks; i < target.size(); ++i)
          REQUIRE(target[i] == 0xEE);
        // In place: the tail stays as it was.
        REQUIRE(tether::detail::mask_blocks(level, out.data() + 3, out.data() + 3, n, key8) == blocks);
        REQUIRE(std::equal(want.begin(), want.end(), out.begin() + 3));
      }
    }
  }
}

TEST_CASE("each level counts ASCII in whole blocks and stops at the block of the first high byte") {
  for (const auto level : runnable_levels()) {
    CAPTURE(static_cast<int>(level));
    for (std::size_t start = 0; start < 9; ++start) {
      for (std::size_t n = 0; n <= 300; ++n) {
        std::vector<unsigned char> text(start + n, 'a');
        CHECK(tether::detail::ascii_blocks(level, text.data() + start, n) == n / 64 * 64);
        for (std::size_t at = 0; at < n; ++at) {
          for (const unsigned char high : {0x80, 0xC3, 0xFF}) {
            text[start + at] = high;
            const auto got = tether::detail::ascii_blocks(level, text.data() + start, n);
            text[start + at] = 'a';
            const std::size_t whole = n / 64 * 64;
            REQUIRE(got == (at < whole ? at / 64 * 64 : whole));
          }
        }
      }
    }
  }
}
