// Björn Höhrmann's DFA decoder ("Flexible and Economical UTF-8 Decoder"), reduced
// to validation. It rejects overlongs, surrogates and code points over U+10FFFF at
// the first byte that makes them so, which RFC 6455 §8.1 "fail fast" asks for.
#include "utf8.hpp"

#include <cstring>

namespace tether::detail {
namespace {

// Byte classes 0..11, then the transition table indexed by state + class.
constexpr std::uint8_t table[] = {
    // clang-format off
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,
  7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,
  8,8,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
  10,3,3,3,3,3,3,3,3,3,3,3,3,4,3,3, 11,6,6,6,5,8,8,8,8,8,8,8,8,8,8,8,

  0,12,24,36,60,96,84,12,12,12,48,72, 12,12,12,12,12,12,12,12,12,12,12,12,
  12, 0,12,12,12,12,12, 0,12, 0,12,12, 12,24,12,12,12,12,12,24,12,24,12,12,
  12,12,12,12,12,12,12,24,12,12,12,12, 12,24,12,12,12,12,12,12,12,24,12,12,
  12,12,12,12,12,12,12,36,12,36,12,12, 12,36,12,12,12,12,12,36,12,36,12,12,
  12,36,12,12,12,12,12,12,12,12,12,12,
    // clang-format on
};

} // namespace

bool utf8_feed(std::uint32_t& state, std::string_view bytes) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const auto* end = p + bytes.size();
  std::uint32_t s = state;
  while (p != end) {
    // Fast path: eight ASCII bytes at a time while between characters.
    if (s == utf8_accept) {
      while (end - p >= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        if (w & 0x8080808080808080ull)
          break;
        p += 8;
      }
      if (p == end)
        break;
    }
    s = table[256 + s + table[*p++]];
    if (s == utf8_reject) {
      state = s;
      return false;
    }
  }
  state = s;
  return true;
}

std::size_t utf8_valid_prefix(std::uint32_t& state, std::string_view bytes) noexcept {
  std::uint32_t s = state;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto next = table[256 + s + table[static_cast<unsigned char>(bytes[i])]];
    if (next == utf8_reject) {
      state = utf8_reject;
      return i;
    }
    s = next;
  }
  state = s;
  return bytes.size();
}

} // namespace tether::detail
