// RFC 6455 §5.3 masking: out[i] = in[i] ^ key[(offset + i) % 4].
// Works on 64-byte blocks in vector registers (the widest this CPU has:
// simd.hpp), then 8-byte words, then bytes for the tail; memcpy keeps
// unaligned access legal. Each block is loaded whole before it is stored, so
// `in` may be `out` (masking in place).
#include <tether/frame.hpp>

#include "simd.hpp"

#include <algorithm>
#include <cstring>

namespace tether {
namespace {

void mask(std::uint8_t* out, const std::uint8_t* in, std::size_t n, std::array<std::uint8_t, 4> key,
          std::size_t offset) noexcept {
  // Rotate the key so that k[0] applies to in[0].
  std::array<std::uint8_t, 4> k{};
  for (std::size_t i = 0; i < 4; ++i)
    k[i] = key[(offset + i) & 3];

  std::uint32_t k32;
  std::memcpy(&k32, k.data(), 4);
  const std::uint64_t k64 = (std::uint64_t{k32} << 32) | k32;

  const auto blocks = n >= 64 ? detail::mask_blocks(detail::best_simd_level(), out, in, n, k64) : 0;
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
