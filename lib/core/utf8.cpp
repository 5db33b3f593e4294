// Björn Höhrmann's DFA decoder ("Flexible and Economical UTF-8 Decoder"), reduced
// to validation. It rejects overlongs, surrogates and code points over U+10FFFF at
// the first byte that makes them so, which RFC 6455 §8.1 "fail fast" asks for.
#include "utf8.hpp"

#include "simd.hpp"

#include <algorithm>
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

// One DFA step; the reference for everything below.
inline std::uint32_t step(std::uint32_t s, unsigned char c) noexcept { return table[256 + s + table[c]]; }

// Eight bytes from p, any alignment.
inline std::uint64_t load8(const unsigned char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

constexpr std::uint64_t high_bits = 0x8080808080808080ull;

// Bytes left from which an ASCII run goes on in vector registers (simd.hpp):
// below it the call costs more than it saves.
constexpr std::size_t vector_min = 256;

// True if the 32 bytes at p are ASCII.
inline bool ascii32(const unsigned char* p) noexcept {
  return !((load8(p) | load8(p + 8) | load8(p + 16) | load8(p + 24)) & high_bits);
}

inline bool continuation(unsigned char c) noexcept { return (c & 0xC0) == 0x80; }

} // namespace

std::size_t utf8_valid_prefix_dfa(std::uint32_t& state, std::string_view bytes) noexcept {
  std::uint32_t s = state;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto next = step(s, static_cast<unsigned char>(bytes[i]));
    if (next == utf8_reject) {
      state = utf8_reject;
      return i;
    }
    s = next;
  }
  state = s;
  return bytes.size();
}

namespace {

// The validator's loop. With `vector`, ASCII runs longer than 32 bytes go on
// through the vector loop (simd.hpp); without, the function makes no call, so
// short texts (most messages) do not pay for saving registers around one.
template <bool vector>
[[gnu::always_inline]] inline std::size_t validate(std::uint32_t& state, const unsigned char* p,
                                                   std::size_t n) noexcept {
  std::size_t i = 0;
  std::uint32_t s = state;
  for (; s != utf8_accept && i < n; ++i) {
    const auto next = step(s, p[i]);
    if (next == utf8_reject) {
      state = utf8_reject;
      return i;
    }
    s = next;
  }
  while (i < n) {
    // A run that outlasts 32 bytes (mixed text has short ones) with a few
    // hundred bytes left goes on in vector registers.
    while (n - i >= 32 && ascii32(p + i)) {
      i += 32;
      if (vector && n - i >= vector_min)
        i += ascii_blocks(best_simd_level(), p + i, n - i);
    }
    while (n - i >= 8 && !(load8(p + i) & high_bits))
      i += 8;
    // Up to the next aligned word: bytes one by one.
    const std::size_t stop = std::min(n, i + 8);
    while (i < stop) {
      const unsigned char c = p[i];
      if (c < 0x80) {
        ++i;
        continue;
      }
      const std::size_t len = c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
      if (len == 0) {
        state = utf8_reject;
        return i; // a continuation byte, an overlong lead (C0, C1) or F5..FF
      }
      if (n - i < len) {
        // The sequence runs past this chunk: the DFA keeps its state.
        for (; i < n; ++i) {
          const auto next = step(s, p[i]);
          if (next == utf8_reject) {
            state = utf8_reject;
            return i;
          }
          s = next;
        }
        state = s;
        return n;
      }
      // The second byte's range depends on the lead (no overlongs, surrogates
      // or code points over U+10FFFF); later bytes are plain continuations.
      const unsigned char b = p[i + 1];
      const bool second_ok = len == 2   ? continuation(b)
                             : c == 0xE0 ? (b >= 0xA0 && b <= 0xBF)
                             : c == 0xED ? (b >= 0x80 && b <= 0x9F)
                             : c == 0xF0 ? (b >= 0x90 && b <= 0xBF)
                             : c == 0xF4 ? (b >= 0x80 && b <= 0x8F)
                                         : continuation(b);
      if (!second_ok) {
        state = utf8_reject;
        return i + 1;
      }
      for (std::size_t k = 2; k < len; ++k) {
        if (!continuation(p[i + k])) {
          state = utf8_reject;
          return i + k;
        }
      }
      i += len;
    }
  }
  state = s; // utf8_accept unless the input ended inside the first loop
  return n;
}

[[gnu::noinline]] std::size_t validate_long(std::uint32_t& state, const unsigned char* p, std::size_t n) noexcept {
  return validate<true>(state, p, n);
}

} // namespace

// ASCII runs are skipped 32 bytes at a time (long ones in vector registers),
// then 8; a multi-byte sequence is checked with the ranges of Unicode's table
// 3-7, rejecting at the same byte the DFA would (fail fast). The DFA finishes
// a sequence begun in an earlier chunk and checks one that runs past the end
// of this one.
std::size_t utf8_valid_prefix(std::uint32_t& state, std::string_view bytes) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() >= 32 + vector_min)
    return validate_long(state, p, bytes.size());
  return validate<false>(state, p, bytes.size()); // inline: the JSON scanner checks many short strings
}

bool utf8_feed(std::uint32_t& state, std::string_view bytes) noexcept {
  return utf8_valid_prefix(state, bytes) == bytes.size();
}

} // namespace tether::detail
