// RFC 6455 §5.3 masking: payload[i] ^= key[(offset + i) % 4].
// Works on 16-byte blocks through two 64-bit words (the compiler vectorises the
// loop at -O2), then bytes for the tail; memcpy keeps unaligned access legal.
#include <tether/frame.hpp>

#include <cstring>

namespace tether {

void apply_mask(std::span<std::uint8_t> data, std::array<std::uint8_t, 4> key, std::size_t offset) noexcept {
  std::uint8_t* p = data.data();
  std::size_t n = data.size();
  // Rotate the key so that key[0] applies to data[0].
  std::array<std::uint8_t, 4> k{};
  for (std::size_t i = 0; i < 4; ++i)
    k[i] = key[(offset + i) & 3];

  std::uint32_t k32;
  std::memcpy(&k32, k.data(), 4);
  const std::uint64_t k64 = (std::uint64_t{k32} << 32) | k32;

  while (n >= 32) {
    std::uint64_t w[4];
    std::memcpy(w, p, 32);
    w[0] ^= k64;
    w[1] ^= k64;
    w[2] ^= k64;
    w[3] ^= k64;
    std::memcpy(p, w, 32);
    p += 32;
    n -= 32;
  }
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    w ^= k64;
    std::memcpy(p, &w, 8);
    p += 8;
    n -= 8;
  }
  for (std::size_t i = 0; i < n; ++i)
    p[i] ^= k[i & 3];
}

} // namespace tether
