// RFC 6455 §5.3 masking: out[i] = in[i] ^ key[(offset + i) % 4].
// Works on 64-byte blocks through eight 64-bit words (vectorised for the CPU at
// hand: cpu_dispatch.hpp), then 8-byte words, then bytes for the tail; memcpy
// keeps unaligned access legal. Each block is loaded whole before it is
// stored, so `in` may be `out` (masking in place).
#include <tether/frame.hpp>

#include "cpu_dispatch.hpp"

#include <algorithm>
#include <cstring>

namespace tether {
namespace {

// The whole 64-byte blocks of `in`; returns how many bytes it masked.
TETHER_CPU_CLONES std::size_t mask_blocks(std::uint8_t* out, const std::uint8_t* in, std::size_t n,
                                          std::uint64_t k64) noexcept {
  std::size_t done = 0;
  for (; n - done >= 64; done += 64) {
    std::uint64_t w[8];
    std::memcpy(w, in + done, 64);
    for (auto& x : w)
      x ^= k64;
    std::memcpy(out + done, w, 64);
  }
  return done;
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

  const auto blocks = n >= 64 ? mask_blocks(out, in, n, k64) : 0; // small frames skip the indirect call
  in += blocks;
  out += blocks;
  n -= blocks;
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

} // namespace

void apply_mask(std::span<std::uint8_t> data, std::array<std::uint8_t, 4> key, std::size_t offset) noexcept {
  mask(data.data(), data.data(), data.size(), key, offset);
}

void mask_copy(std::span<std::uint8_t> out, std::span<const std::uint8_t> in, std::array<std::uint8_t, 4> key,
               std::size_t offset) noexcept {
  mask(out.data(), in.data(), std::min(out.size(), in.size()), key, offset);
}

} // namespace tether
