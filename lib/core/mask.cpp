// RFC 6455 §5.3 masking: out[i] = in[i] ^ key[(offset + i) % 4].
// Works on 64-byte blocks in vector registers (the widest this CPU has:
// simd.hpp), then 32- and 8-byte words, then bytes for the tail; memcpy keeps
// unaligned access legal. Each block is loaded whole before it is stored, so
// `in` may be `out` (masking in place).
#include <tether/frame.hpp>

#include "simd.hpp"

#include <algorithm>
#include <cstring>

namespace tether {
namespace {

// Vector registers from a few hundred bytes on; below that the call and the
// CPU check cost more than they save (callgrind: +90 instructions per
// 128-byte message when every frame took that path).
constexpr std::size_t vector_min = 256;

// Without vector registers: 32- and 8-byte words, then bytes. k is the key
// rotated to in[0], k64 the same as a word.
inline void mask_words(std::uint8_t* out, const std::uint8_t* in, std::size_t n, const std::array<std::uint8_t, 4>& k,
                       std::uint64_t k64) noexcept {
  while (n >= 32) {
    std::uint64_t w[4];
    std::memcpy(w, in, 32);
    for (auto& x : w)
      x ^= k64;
    std::memcpy(out, w, 32);
    in += 32;
    out += 32;
    n -= 32;
  }
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, in, 8);
    w ^= k64;
    std::memcpy(out, &w, 8);
    in += 8;
    out += 8;
    n -= 8;
  }
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<std::uint8_t>(in[i] ^ k[i & 3]);
}

// Out of line, so that small frames' path makes no call (and saves no
// registers for one). Whole 64-byte blocks keep the key's phase.
[[gnu::noinline]] void mask_large(std::uint8_t* out, const std::uint8_t* in, std::size_t n,
                                  const std::array<std::uint8_t, 4>& k, std::uint64_t k64) noexcept {
  const auto blocks = detail::mask_blocks(detail::best_simd_level(), out, in, n, k64);
  mask_words(out + blocks, in + blocks, n - blocks, k, k64);
}

void mask(std::uint8_t* out, const std::uint8_t* in, std::size_t n, std::array<std::uint8_t, 4> key,
          std::size_t offset) noexcept {
  // Rotate the key so that k[0] applies to in[0].
  std::array<std::uint8_t, 4> k{};
  for (std::size_t i = 0; i < 4; ++i)
    k[i] = key[(offset + i) & 3];

  std::uint32_t k32;
  std::memcpy(&k32, k.data(), 4);
  const std::uint64_t k64 = (std::uint64_t{k32} << 32) | k32;
  if (n >= vector_min)
    mask_large(out, in, n, k, k64);
  else
    mask_words(out, in, n, k, k64);
}

} // namespace

void apply_mask(std::span<std::uint8_t> data, std::array<std::uint8_t, 4> key, std::size_t offset) noexcept {
  mask(data.data(), data.data(), data.size(), key, offset);
}

void mask_copy(std::span<std::uint8_t> out, std::span<const std::uint8_t> in, std::array<std::uint8_t, 4> key,
               std::size_t offset) noexcept {
  mask(out.data(), in.data(), std::min(out.size(), in.size()), key, offset);
}

} // namespace tether
